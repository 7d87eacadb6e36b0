from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta

import pytest
import sqlalchemy as sa

from account_health.store import actions, operational


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path) -> Iterator[sa.Engine]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'operational.sqlite'}"
    else:
        url = request.getfixturevalue("postgresql_url")
    engine = operational.open_operational_store(url)
    yield engine
    engine.dispose()


def _task(run_id: int, account: str, as_of: datetime, motion: str = "m", **values) -> dict:
    row = {
        "account_id": account,
        "as_of": as_of,
        "motion": motion,
        "run_id": run_id,
        "owner": "ana",
        "tier": "Orange",
        "description": "",
        "due_date": as_of.date(),
        "probability": 0.5,
        "arr": None,
        "arr_at_risk": 0.0,
        "rank": 1,
        "status": "open",
        "expires_at": as_of + timedelta(days=14),
        "workshop": True,
        "watch_reason": None,
        "validated": True,
    }
    row.update(values)
    return row


def test_migration_0003_adds_the_nightly_tables(engine):
    tables = set(sa.inspect(engine).get_table_names())
    assert {"tier_changes", "tasks", "watch_list", "account_actions"} <= tables
    columns = {column["name"] for column in sa.inspect(engine).get_columns("account_actions")}
    for name in (
        "account_id",
        "as_of",
        "run_id",
        "name",
        "owner",
        "arr",
        "tier",
        "renewal_stage",
        "pltv_decile",
        "champion_strength",
        "motion",
        "due_date",
        "expansion",
        "expansion_allowed",
        "prompt_key",
        "persona_key",
        "watch_reason",
        "replacement_candidates",
    ):
        assert name in columns, name
    with engine.connect() as connection:
        # Later migrations build on 0003, so the store is at 0003 or after.
        assert connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one() >= "0003"


def test_migration_0003_downgrades_to_0002(engine):
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(operational._MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0002")
    assert "tasks" not in sa.inspect(engine).get_table_names()
    operational.upgrade(engine)
    assert "tasks" in sa.inspect(engine).get_table_names()


def test_sync_tasks_keeps_ids_and_completion(engine):
    as_of = datetime(2025, 12, 1)
    run = operational.start_run(engine, "nightly", as_of)
    with engine.begin() as connection:
        actions.sync_tasks(connection, as_of, [_task(run, "a", as_of), _task(run, "b", as_of)])
    first = {row["account_id"]: row["task_id"] for row in actions.read_tasks(engine, as_of)}
    actions.complete_task(engine, first["a"], datetime(2025, 12, 2))

    again = operational.start_run(engine, "nightly", as_of)
    with engine.begin() as connection:
        actions.sync_tasks(connection, as_of, [_task(again, "a", as_of, rank=2), _task(again, "c", as_of)])
    rows = {row["account_id"]: row for row in actions.read_tasks(engine, as_of)}

    assert set(rows) == {"a", "c"}
    assert rows["a"]["task_id"] == first["a"]
    assert rows["a"]["completed_at"] == datetime(2025, 12, 2)
    assert rows["a"]["rank"] == 2
    assert rows["a"]["run_id"] == again


def test_completed_workshop_counts_only_before_the_date(engine):
    as_of = datetime(2025, 12, 1)
    run = operational.start_run(engine, "nightly", as_of)
    with engine.begin() as connection:
        actions.sync_tasks(
            connection, as_of, [_task(run, "a", as_of), _task(run, "b", as_of, workshop=False)]
        )
    for row in actions.read_tasks(engine, as_of):
        actions.complete_task(engine, row["task_id"], datetime(2025, 12, 3))
    assert actions.accounts_with_completed_workshop(engine, datetime(2025, 12, 3)) == set()
    assert actions.accounts_with_completed_workshop(engine, datetime(2025, 12, 4)) == {"a"}
    assert actions.complete_task(engine, 999_999) is None


def test_watch_entries_expire_and_can_be_removed(engine):
    actions.add_watch(engine, "a", "exec sponsor left", datetime(2025, 12, 31))
    actions.add_watch(engine, "b", "pricing dispute", datetime(2026, 1, 31))

    assert set(actions.active_watches(engine, datetime(2025, 12, 31))) == {"a", "b"}
    assert set(actions.active_watches(engine, datetime(2026, 1, 1))) == {"b"}
    assert actions.remove_watch(engine, "b") == 1
    assert "b" not in actions.active_watches(engine, datetime(2025, 12, 1))
    everything = actions.list_watches(engine, include_inactive=True)
    assert [row["account_id"] for row in everything] == ["a", "b"]
    assert everything[1]["removed_at"] is not None


def test_due_dates_round_trip_as_dates(engine):
    as_of = datetime(2025, 12, 1)
    run = operational.start_run(engine, "nightly", as_of)
    with engine.begin() as connection:
        actions.sync_tasks(connection, as_of, [_task(run, "a", as_of, due_date=date(2026, 1, 2))])
    assert actions.read_tasks(engine, as_of)[0]["due_date"] == date(2026, 1, 2)


def test_migrations_match_the_table_definitions(engine):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    ours = {"tier_changes", "tasks", "watch_list", "account_actions"}
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), operational.metadata)

    def table_of(difference) -> str | None:
        for item in difference if isinstance(difference, list) else [difference]:
            for part in item[1:] if isinstance(item, tuple) else []:
                name = getattr(part, "name", None) if not isinstance(part, str) else part
                table = getattr(part, "table", None)
                if table is not None and getattr(table, "name", None) in ours:
                    return table.name
                if name in ours:
                    return name
        return None

    assert [difference for difference in differences if table_of(difference) in ours] == []
