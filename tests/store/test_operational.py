from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import datetime

import pytest
import sqlalchemy as sa

from account_health.store import operational


def _postgres_url() -> str:
    url = os.environ.get("ACCOUNT_HEALTH_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("set ACCOUNT_HEALTH_TEST_POSTGRES_URL to run against PostgreSQL")
    return url


@pytest.fixture
def postgresql_engine() -> Iterator[sa.Engine]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    admin = sa.create_engine(_postgres_url(), isolation_level="AUTOCOMMIT")
    name = f"account_health_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine = operational.connect(admin.url.set(database=name).render_as_string(hide_password=False))
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def sqlite_engine(tmp_path) -> Iterator[sa.Engine]:
    engine = operational.connect(f"sqlite:///{tmp_path / 'operational.sqlite'}")
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request) -> sa.Engine:
    return request.getfixturevalue(f"{request.param}_engine")


def _score(account: str, as_of: datetime, run_id: int, probability: float) -> dict:
    return {
        "account_id": account,
        "as_of": as_of,
        "model_version": "m1",
        "probability": probability,
        "tier": "Green",
        "contributions": "{}",
        "signals": "{}",
        "validated": True,
        "run_id": run_id,
    }


def test_migrations_create_the_tables(engine):
    operational.upgrade(engine)
    operational.upgrade(engine)
    tables = set(sa.inspect(engine).get_table_names())
    assert {"runs", "models", "scores", "alembic_version"} <= tables


def test_replace_scores_swaps_a_date_atomically(engine):
    operational.upgrade(engine)
    as_of = datetime(2025, 1, 1)
    first = operational.start_run(engine, "score", as_of)
    operational.replace_scores(
        engine, as_of, "m1", [_score("a", as_of, first, 0.1), _score("b", as_of, first, 0.2)]
    )
    second = operational.start_run(engine, "score", as_of)
    operational.replace_scores(engine, as_of, "m1", [_score("a", as_of, second, 0.3)])
    rows = operational.read_scores(engine)
    assert [(row["account_id"], row["probability"], row["run_id"]) for row in rows] == [("a", 0.3, second)]


def test_failed_replace_keeps_previous_scores(engine):
    operational.upgrade(engine)
    as_of = datetime(2025, 1, 1)
    run = operational.start_run(engine, "score", as_of)
    operational.replace_scores(engine, as_of, "m1", [_score("a", as_of, run, 0.1)])
    duplicate = [_score("b", as_of, run, 0.2), _score("b", as_of, run, 0.3)]
    with pytest.raises(sa.exc.IntegrityError):
        operational.replace_scores(engine, as_of, "m1", duplicate)
    assert [row["account_id"] for row in operational.read_scores(engine)] == ["a"]


def test_sqlite_store_uses_write_ahead_logging(sqlite_engine):
    with sqlite_engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
