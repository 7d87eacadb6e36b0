"""Workspaces served by the API in tests.

A small company scored on three dates by `account-health score` alone (no nightly run), and a copy of
the nightly tests' company after a real `run_nightly`, whose account actions, tasks and watch list
the API reads.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from account_health.api.app import create_app
from account_health.config import Workspace, load_workspace
from account_health.scoring.score import score
from account_health.sources.ingest import ingest
from account_health.store import operational
from account_health.store.tokens import create_token
from account_health.training.train import train
from account_health.workspace import open_stores
from action_company import copy_workspace
from company import write_company
from notify.standins import SLACK_CHANNEL, SLACK_TOKEN, SlackStandIn
from scored import SCORING_DATES, TIERS


@pytest.fixture(scope="session")
def scored_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return a workspace folder with ingested data, one model and scores on three dates."""
    folder = write_company(tmp_path_factory.mktemp("api-company"))
    with (folder / "account-health.toml").open("a", encoding="utf-8") as config:
        config.write(TIERS)
    workspace = load_workspace(folder)
    with open_stores(workspace) as (store, engine):
        ingest(workspace, store)
        train(workspace, store, engine)
        for as_of in SCORING_DATES:
            score(workspace, store, engine, as_of)
    return folder


@pytest.fixture
def workspace(scored_folder: Path, tmp_path: Path) -> Workspace:
    """Return a private copy of the scored workspace, so a test may change its operational store."""
    folder = tmp_path / "workspace"
    shutil.copytree(scored_folder, folder, ignore=shutil.ignore_patterns("*.sqlite-wal", "*.sqlite-shm"))
    return load_workspace(folder)


@pytest.fixture
def engine(workspace: Workspace) -> Iterator[sa.Engine]:
    engine = operational.open_operational_store(workspace.operational_store_url)
    yield engine
    engine.dispose()


@pytest.fixture
def client(engine: sa.Engine, workspace: Workspace) -> Iterator[TestClient]:
    with TestClient(create_app(engine, workspace.config)) as client:
        yield client


@pytest.fixture
def read_token(engine: sa.Engine) -> str:
    return create_token(engine, "read")[1]


@pytest.fixture
def write_token(engine: sa.Engine) -> str:
    return create_token(engine, "write")[1]


@pytest.fixture
def nightly_workspace(template: Path, tmp_path: Path) -> Workspace:
    """A copy of a trained company whose real nightly run of FIRST is done (SQLite), see nightly_fixtures."""
    return copy_workspace(template, tmp_path / "nightly")


@pytest.fixture
def nightly_engine(nightly_workspace: Workspace) -> Iterator[sa.Engine]:
    engine = operational.open_operational_store(nightly_workspace.operational_store_url)
    yield engine
    engine.dispose()


@pytest.fixture
def nightly_client(nightly_engine: sa.Engine, nightly_workspace: Workspace) -> Iterator[TestClient]:
    with TestClient(create_app(nightly_engine, nightly_workspace.config)) as client:
        yield client


@pytest.fixture
def slack(monkeypatch: pytest.MonkeyPatch) -> Iterator[SlackStandIn]:
    """A Slack stand-in on 127.0.0.1, with the token and channel in the environment."""
    stand_in = SlackStandIn()
    monkeypatch.setenv("ACCOUNT_HEALTH_SLACK_TOKEN", SLACK_TOKEN)
    monkeypatch.setenv("ACCOUNT_HEALTH_SLACK_CHANNEL", SLACK_CHANNEL)
    yield stand_in
    stand_in.release.set()
    stand_in.close()
