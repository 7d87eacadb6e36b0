"""Create a workspace and open both of its stores."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

from sqlalchemy.engine import Engine

from account_health.config import CONFIG_FILE, Workspace, load_workspace
from account_health.errors import ConfigError
from account_health.store.analytical import AnalyticalStore, open_analytical_store
from account_health.store.operational import open_operational_store


def template_text() -> str:
    return resources.files("account_health").joinpath("workspace_template.toml").read_text(encoding="utf-8")


def init_workspace(folder: Path, config_text: str | None = None, overwrite: bool = False) -> Workspace:
    """Write a commented account-health.toml in `folder` and create both stores."""
    if folder.exists() and not folder.is_dir():
        raise ConfigError(
            f"{folder} is a file, not a folder; give a new or existing folder for the workspace"
        )
    path = folder / CONFIG_FILE
    if path.exists() and not overwrite:
        raise ConfigError(f"{path} already exists; edit it, or choose another folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        path.write_text(config_text or template_text(), encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"cannot create the workspace {folder}: {exc.strerror or exc}; give a folder you can write to"
        ) from None
    workspace = load_workspace(folder)
    with open_stores(workspace):
        pass
    return workspace


@contextmanager
def open_stores(
    workspace: Workspace, read_only: bool = False, create: bool = True
) -> Iterator[tuple[AnalyticalStore, Engine]]:
    """Open the analytical store and the (migrated) operational store; close both afterwards.

    With `create=False` a store file that does not exist yet is an error instead of a new empty
    store, so a mistyped path cannot pass for a workspace without data.
    """
    if not create:
        _require_existing(workspace)
    settings = workspace.config.workspace
    store = open_analytical_store(
        workspace.analytical_store_path,
        read_only=read_only,
        threads=settings.analytical_threads,
        memory_limit=settings.analytical_memory_limit,
    )
    engine = open_operational_store(workspace.operational_store_url)
    try:
        yield store, engine
    finally:
        store.close()
        engine.dispose()


def _require_existing(workspace: Workspace) -> None:
    analytical = workspace.analytical_store_path
    if not analytical.exists():
        raise ConfigError(
            f"no analytical store at {analytical}; run `account-health ingest` first, or fix "
            "[workspace] analytical_store or ACCOUNT_HEALTH_ANALYTICAL_STORE"
        )
    url = workspace.operational_store_url
    if (
        url.startswith("sqlite:///")
        and url != "sqlite:///:memory:"
        and not Path(url[len("sqlite:///") :]).exists()
    ):
        raise ConfigError(
            f"no operational store at {url[len('sqlite:///') :]}; run `account-health init` or "
            "`account-health ingest` first, or fix [workspace] operational_store or ACCOUNT_HEALTH_OPERATIONAL_STORE"
        )
