"""`account-health serve` and `account-health token create`: option parsing only."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from account_health.config import Workspace, load_workspace

token_app = typer.Typer(help="Create, list and revoke API tokens.", no_args_is_help=True)


# Seconds a worker may take to answer uvicorn's health check before it is restarted.
_WORKER_HEALTHCHECK_SECONDS = 30


def serve(
    context: typer.Context,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port to listen on.")] = 8080,
    workers: Annotated[
        int,
        typer.Option(min=1, max=64, help="Server processes; each opens its own connections to the store."),
    ] = 1,
    access_log: Annotated[
        bool, typer.Option("--access-log", help="Log one line per request to stderr (off by default).")
    ] = False,
) -> None:
    """Serve the HTTP API under /v1 and the dashboard under /dashboard, with uvicorn."""
    import uvicorn

    from account_health.api.app import ENV_WORKSPACE, app_for_workspace

    workspace = _workspace(context)
    # Migrate and check the store once here, so a bad workspace fails before any worker starts.
    application = app_for_workspace(workspace)
    typer.echo(
        f"serving the API on http://{host}:{port}/v1 and the dashboard on http://{host}:{port}/dashboard"
    )
    if workers == 1:
        uvicorn.run(application, host=host, port=port, access_log=access_log, log_level="info")
        return
    # Several processes need an import string; each worker builds its app from the workspace folder.
    os.environ[ENV_WORKSPACE] = str(workspace.root)
    uvicorn.run(
        "account_health.api.app:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=access_log,
        log_level="info",
        # A worker answers uvicorn's health check only after importing the product, which takes more
        # than uvicorn's default of 5 s on a busy machine, so the default killed and restarted workers
        # that were still starting.
        timeout_worker_healthcheck=_WORKER_HEALTHCHECK_SECONDS,
    )


@token_app.command("create")
def create(
    context: typer.Context,
    scope: Annotated[
        str,
        typer.Option(
            help="read: every GET endpoint and the dashboard; write: also the watch-list endpoints."
        ),
    ] = "read",
    name: Annotated[
        str | None, typer.Option(help="A label to recognise the token by, e.g. who uses it.")
    ] = None,
) -> None:
    """Create an API token and print it once; only its SHA-256 hash is stored."""
    from account_health.store.operational import open_operational_store
    from account_health.store.tokens import SCOPES, create_token

    if scope not in SCOPES:
        raise typer.BadParameter(f"--scope {scope!r} is not one of {', '.join(SCOPES)}")
    engine = open_operational_store(_workspace(context).operational_store_url)
    try:
        token_id, token = create_token(engine, scope, name)  # type: ignore[arg-type]
    finally:
        engine.dispose()
    typer.echo(token)
    typer.echo(f"token {token_id} ({scope}) created; it is shown only this once", err=True)


@token_app.command("list")
def list_command(context: typer.Context) -> None:
    """List the API tokens: id, scope, name, when created and when revoked. Tokens themselves are not stored."""
    from account_health.store.operational import open_operational_store
    from account_health.store.tokens import list_tokens

    engine = open_operational_store(_workspace(context).operational_store_url)
    try:
        rows = list_tokens(engine)
    finally:
        engine.dispose()
    if not rows:
        typer.echo("no API tokens; create one with account-health token create")
    for row in rows:
        revoked = f"revoked {row['revoked_at']:%Y-%m-%d %H:%M}" if row["revoked_at"] else "active"
        typer.echo(
            f"{row['token_id']}\t{row['scope']}\t{row['created_at']:%Y-%m-%d %H:%M}\t{revoked}\t{row['name'] or ''}"
        )


@token_app.command("revoke")
def revoke(
    context: typer.Context,
    token_id: Annotated[int, typer.Argument(metavar="TOKEN_ID", help="The id that token list shows.")],
) -> None:
    """Revoke an API token; servers stop accepting it within 10 seconds."""
    from account_health.store.operational import open_operational_store
    from account_health.store.tokens import revoke_token

    engine = open_operational_store(_workspace(context).operational_store_url)
    try:
        revoked = revoke_token(engine, token_id)
    finally:
        engine.dispose()
    if not revoked:
        typer.echo(f"no active token with id {token_id}; see account-health token list", err=True)
        raise typer.Exit(1)
    typer.echo(f"token {token_id} revoked")


def _workspace(context: typer.Context) -> Workspace:
    # The root command's --workspace option, read from the context so this module needs no CLI state.
    return load_workspace(Path(context.find_root().params.get("workspace") or "."))
