from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest
import sqlalchemy as sa

from account_health.errors import ConfigError
from account_health.store import operational
from account_health.store.operational import open_operational_store
from postgres import fresh_database


@pytest.fixture
def postgresql_engine() -> Iterator[sa.Engine]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    with fresh_database() as url:
        engine = operational.connect(url)
        try:
            yield engine
        finally:
            engine.dispose()


@pytest.fixture
def sqlite_engine(tmp_path) -> Iterator[sa.Engine]:
    engine = operational.connect(f"sqlite:///{tmp_path / 'operational.sqlite'}")
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request) -> sa.Engine:
    return request.getfixturevalue(f"{request.param}_engine")


def _score(
    account: str,
    as_of: datetime,
    run_id: int,
    probability: float,
    tier: str = "Green",
    model_version: str = "m1",
) -> dict:
    return {
        "account_id": account,
        "as_of": as_of,
        "model_version": model_version,
        "probability": probability,
        "tier": tier,
        "raw_tier": tier,
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


# The runs and scores columns of revision 0001, for writing rows as an older release did.
_RUNS_0001 = sa.table(
    "runs",
    sa.column("run_id", sa.Integer),
    sa.column("kind", sa.String),
    sa.column("status", sa.String),
    sa.column("started_at", sa.DateTime),
)
_SCORES_0001 = sa.table(
    "scores",
    *(
        sa.column(name, kind)
        for name, kind in [
            ("account_id", sa.String),
            ("as_of", sa.DateTime),
            ("model_version", sa.String),
            ("probability", sa.Float),
            ("tier", sa.String),
            ("contributions", sa.Text),
            ("signals", sa.Text),
            ("validated", sa.Boolean),
            ("run_id", sa.Integer),
        ]
    ),
)


def _insert_0001_score(connection: sa.Connection, account: str, as_of: datetime, tier: str) -> None:
    run_id = connection.execute(
        _RUNS_0001.insert()
        .values(kind="score", status="succeeded", started_at=as_of)
        .returning(_RUNS_0001.c.run_id)
    ).scalar_one()
    connection.execute(
        _SCORES_0001.insert().values(
            account_id=account,
            as_of=as_of,
            model_version="m0",
            probability=0.5,
            tier=tier,
            contributions="{}",
            signals="{}",
            validated=True,
            run_id=run_id,
        )
    )


def test_migration_0002_upgrades_a_0001_store_with_rows(engine):
    operational.upgrade(engine, "0001")
    with engine.begin() as connection:
        _insert_0001_score(connection, "a", datetime(2025, 1, 1), "Red")
        _insert_0001_score(connection, "b", datetime(2025, 1, 1), "Dark-Green")

    operational.upgrade(engine, "0002")

    with engine.connect() as connection:
        version = connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one()
    assert version == "0002"
    columns = {column["name"]: column for column in sa.inspect(engine).get_columns("scores")}
    assert columns["raw_tier"]["nullable"] is False
    assert columns["probability_points"]["nullable"] is True
    rows = {row["account_id"]: row for row in operational.read_scores(engine)}
    assert rows["a"]["tier"] == rows["a"]["raw_tier"] == "Red"
    assert rows["b"]["tier"] == rows["b"]["raw_tier"] == "Dark-Green"
    assert rows["a"]["probability_points"] is None
    indexes = {index["name"] for index in sa.inspect(engine).get_indexes("scores")}
    assert "ix_scores_as_of" in indexes


def test_previous_tiers_reads_strictly_earlier_dates(engine):
    operational.upgrade(engine)
    january, february, march = datetime(2025, 1, 1), datetime(2025, 2, 1), datetime(2025, 3, 1)
    run = operational.start_run(engine, "score")
    operational.replace_scores(engine, january, "m1", [_score("a", january, run, 0.1, "Green")])
    operational.replace_scores(
        engine,
        february,
        "m1",
        [_score("a", february, run, 0.5, "Orange"), _score("b", february, run, 0.7, "Red")],
    )
    later = operational.start_run(engine, "score")
    operational.replace_scores(engine, february, "m2", [_score("a", february, later, 0.3, "Yellow", "m2")])
    operational.replace_scores(engine, march, "m2", [_score("a", march, later, 0.9, "Red", "m2")])

    assert operational.previous_tiers(engine, january) == {}
    assert operational.previous_tiers(engine, february) == {"a": "Green"}
    # February contains scores of two models for account a, and the later run's score counts.
    assert operational.previous_tiers(engine, march) == {"a": "Yellow", "b": "Red"}
    assert operational.previous_tiers(engine, datetime(2025, 2, 15)) == {"a": "Yellow", "b": "Red"}


def test_latest_score_on_or_before_includes_the_date(engine):
    operational.upgrade(engine)
    january, february = datetime(2025, 1, 1), datetime(2025, 2, 1)
    run = operational.start_run(engine, "score")
    operational.replace_scores(engine, january, "m1", [_score("a", january, run, 0.1)])
    operational.replace_scores(engine, february, "m1", [_score("a", february, run, 0.2)])

    on_date = operational.latest_score_on_or_before(engine, "a", february)
    between = operational.latest_score_on_or_before(engine, "a", datetime(2025, 1, 20))
    assert on_date is not None and on_date["as_of"] == february
    assert between is not None and between["as_of"] == january
    assert operational.latest_score_on_or_before(engine, "a", datetime(2024, 12, 31)) is None
    assert operational.account_score_dates(engine, "a") == [january, february]


def test_migration_0005_creates_the_token_table(engine):
    operational.upgrade(engine)
    columns = {column["name"] for column in sa.inspect(engine).get_columns("api_tokens")}
    assert columns == {"token_id", "token_hash", "scope", "name", "created_at", "revoked_at"}


def test_missing_driver_says_which_extra_to_install():
    with pytest.raises(ConfigError, match=r"the driver 'pg8000' is not installed; .*\[postgres\]"):
        open_operational_store("postgresql+pg8000://someone@127.0.0.1:1/nowhere")
