"""A small scored company served by the API: one model, three scoring dates, some Red accounts."""

from __future__ import annotations

import json
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
from company import write_company
from scored import SCORING_DATES, TIERS, latest_scores


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
def nightly_tables(engine) -> dict[str, sa.Table]:
    """Create account_actions, watch_list and tasks as the nightly run's migration is expected to."""
    metadata = sa.MetaData()
    actions = sa.Table(
        "account_actions",
        metadata,
        sa.Column("account_id", sa.String(255), primary_key=True),
        sa.Column("as_of", sa.DateTime, primary_key=True),
        sa.Column("run_id", sa.Integer),
        sa.Column("name", sa.String(255)),
        sa.Column("owner", sa.String(255)),
        sa.Column("arr", sa.Float),
        sa.Column("tier", sa.String(16)),
        sa.Column("renewal_stage", sa.String(32)),
        sa.Column("pltv_decile", sa.Integer),
        sa.Column("champion_strength", sa.String(32)),
        sa.Column("motion", sa.Text),
        sa.Column("due_date", sa.DateTime),
        sa.Column("expansion", sa.String(32)),
        sa.Column("expansion_allowed", sa.Boolean),
        sa.Column("prompt_key", sa.String(64)),
        sa.Column("persona_key", sa.String(64)),
        sa.Column("watch_reason", sa.Text),
        sa.Column("replacement_candidates", sa.Text),
    )
    watch_list = sa.Table(
        "watch_list",
        metadata,
        sa.Column("watch_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("account_id", sa.String(255), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("expires_at", sa.DateTime),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("created_by", sa.String(255)),
    )
    tasks = sa.Table(
        "tasks",
        metadata,
        sa.Column("task_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("account_id", sa.String(255), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("due_date", sa.DateTime),
        sa.Column("created_at", sa.DateTime),
    )
    metadata.create_all(engine)
    rows = latest_scores(engine)
    with engine.begin() as connection:
        connection.execute(
            actions.insert(),
            [
                {
                    "account_id": row["account_id"],
                    "as_of": row["as_of"],
                    "name": f"Company {row['account_id']}",
                    "owner": "Ana" if index % 2 else "Ben",
                    "arr": 1000.0 * (index + 1),
                    "tier": row["tier"],
                    "renewal_stage": "Window-Open" if index % 3 == 0 else "Renewal-Far",
                    "expansion": "suppressed",
                    "expansion_allowed": False,
                    "prompt_key": "talk-to-your-csm",
                    "persona_key": "executive-escalation",
                    "replacement_candidates": json.dumps([{"contact_id": "C1", "rank": 1}]),
                }
                for index, row in enumerate(rows)
            ],
        )
        connection.execute(
            tasks.insert().values(
                account_id=rows[0]["account_id"],
                title="Exec-sponsor outreach today",
                due_date=rows[0]["as_of"],
            )
        )
    return {"account_actions": actions, "watch_list": watch_list, "tasks": tasks}
