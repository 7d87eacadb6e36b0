"""Fixtures of the nightly-run tests: a trained company with one run done, copied per test and backend."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from account_health.config import ENV_OPERATIONAL_STORE, Workspace, load_workspace
from account_health.nightly import run_nightly
from account_health.workspace import open_stores
from action_company import copy_workspace, snapshot, trained_action_company
from postgres import fresh_database

FIRST = datetime(2025, 11, 1)
SECOND = datetime(2025, 12, 1)


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trained company whose nightly run of FIRST is done (SQLite operational store)."""
    folder = tmp_path_factory.mktemp("template") / "company"
    workspace = trained_action_company(folder)
    with open_stores(workspace) as (store, engine):
        run_nightly(workspace, store, engine, FIRST)
    return folder


@pytest.fixture(scope="session")
def reference(template: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The snapshot and summary of an undisturbed run of SECOND on a copy of the template."""
    workspace = copy_workspace(template, tmp_path_factory.mktemp("reference") / "company")
    with open_stores(workspace) as (store, engine):
        result = run_nightly(workspace, store, engine, SECOND)
        return {"snapshot": snapshot(engine, SECOND), "summary": result.summary(), "run_id": result.run_id}


@pytest.fixture
def postgresql_url() -> Iterator[str]:
    """The URL of a fresh, empty PostgreSQL database, dropped after the test."""
    with fresh_database() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh(
    request: pytest.FixtureRequest, template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Workspace:
    """A copy of the template on SQLite, or with its operational store copied into a fresh PostgreSQL database.

    For PostgreSQL, ACCOUNT_HEALTH_OPERATIONAL_STORE points the workspace (and child processes) there.
    """
    if request.param == "sqlite":
        return copy_workspace(template, tmp_path / "company")
    url = request.getfixturevalue("postgresql_url")
    copy_workspace(template, tmp_path / "company", operational_url=url)
    monkeypatch.setenv(ENV_OPERATIONAL_STORE, url)
    return load_workspace(tmp_path / "company")
