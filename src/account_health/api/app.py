"""The FastAPI application: the /v1 API, its OpenAPI document and the dashboard."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from datetime import datetime
from importlib import resources
from importlib.metadata import version

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.engine import Engine

from account_health.api.auth import TokenBeforeBody
from account_health.api.dashboard import router as dashboard_router
from account_health.api.errors import install_handlers
from account_health.api.queries import StoreReader
from account_health.api.routes import router as api_router
from account_health.config import Config, Workspace
from account_health.errors import ConfigError
from account_health.store.operational import now, open_operational_store
from account_health.store.tokens import TokenCache

log = logging.getLogger(__name__)

# The workspace folder of `account-health serve --workers N`, read by each worker process.
ENV_WORKSPACE = "ACCOUNT_HEALTH_SERVE_WORKSPACE"

DESCRIPTION = """Churn-risk health of each account: tier, probability, reasons, in-app experience, model card.

Every endpoint except `/v1/status` needs `Authorization: Bearer TOKEN`, with a token from
`account-health token create --scope read|write`. Missing values are `null`."""


def create_app(engine: Engine, config: Config, clock: Callable[[], datetime] = now) -> FastAPI:
    """Build the application over an operational store that is already migrated.

    `clock` returns the current instant as naive UTC; it stamps the job changes the API receives,
    and so dates their re-scores. Tests pass a fixed one to replay a webhook at a past instant.
    """
    app = FastAPI(
        title="account-health",
        version=version("account-health"),
        description=DESCRIPTION,
        openapi_url="/v1/openapi.json",
        # The interactive docs pages load their scripts from a CDN, so they are off; the OpenAPI
        # document above is served from here.
        docs_url=None,
        redoc_url=None,
    )
    app.state.engine = engine
    app.state.reader = StoreReader(engine)
    app.state.tokens = TokenCache(engine)
    app.state.config = config
    app.state.clock = clock
    install_handlers(app)
    app.add_middleware(TokenBeforeBody, tokens=app.state.tokens)
    app.include_router(api_router)
    app.include_router(dashboard_router)
    static = resources.files("account_health.api").joinpath("static")
    app.mount("/static", StaticFiles(directory=str(static)), name="static")

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/dashboard", status_code=303)

    return app


def app_for_workspace(workspace: Workspace) -> FastAPI:
    """Open the workspace's operational store (migrating it) and build the application over it."""
    url = workspace.operational_store_url
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        from pathlib import Path

        if not Path(url[len("sqlite:///") :]).exists():
            raise ConfigError(
                f"no operational store at {url[len('sqlite:///') :]}; run `account-health init` and score "
                "first, or fix [workspace] operational_store or ACCOUNT_HEALTH_OPERATIONAL_STORE"
            )
    return create_app(open_operational_store(url), workspace.config)


def app_from_environment() -> FastAPI:
    """Build the application for the workspace folder in ACCOUNT_HEALTH_SERVE_WORKSPACE (server workers)."""
    from account_health.config import load_workspace

    return app_for_workspace(load_workspace(os.environ.get(ENV_WORKSPACE, ".")))
