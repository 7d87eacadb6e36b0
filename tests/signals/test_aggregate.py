"""The stored usage aggregate: incremental refreshes equal a rebuild, and a crash leaves the previous state."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from account_health.signals import compute_signals
from account_health.signals.aggregate import refresh_usage_aggregate, stored_user_days
from account_health.signals.backfill import backfill_signals
from account_health.signals.user_days import superseded_versions
from account_health.sources.ingest import ingest
from account_health.store.analytical import open_analytical_store
from account_health.store.operational import open_operational_store
from console import run_cli
from usage_loads import (
    START,
    ZONES,
    ingest_loads,
    load_events,
    rebuilt_copy,
    stored_days,
    usage_workspace,
    write_accounts,
    write_events,
)


def test_incremental_after_several_loads_equals_rebuild(tmp_path: Path) -> None:
    workspace = usage_workspace(tmp_path)

    ingest_loads(workspace, loads=5, seed=3)

    incremental = stored_days(workspace.analytical_store_path)
    rebuilt = rebuilt_copy(workspace, tmp_path)
    assert len(incremental) > 100
    pd.testing.assert_frame_equal(incremental, rebuilt)
    with open_analytical_store(workspace.analytical_store_path) as store:
        superseded = store.connection.execute("SELECT count(*) FROM usage_superseded").fetchall()[0][0]
    assert superseded > 0, "the generated loads should contain repeated event ids"


def test_rebuild_finds_every_superseded_version(tmp_path: Path) -> None:
    workspace = usage_workspace(tmp_path)
    ingest_loads(workspace, loads=4, seed=7)

    with open_analytical_store(workspace.analytical_store_path) as store:
        refresh_usage_aggregate(workspace, store, rebuild=True)
        query = "SELECT * FROM usage_superseded ORDER BY ALL"
        rebuilt = store.connection.execute(query).fetchall()
        every_id = superseded_versions(store.table("usage_events"))
        expected = store.connection.execute(
            f"SELECT * FROM ({store.ibis.compile(every_id)}) ORDER BY ALL"
        ).fetchall()

    assert len(expected) > 0, "the generated loads should contain repeated event ids"
    assert rebuilt == expected


def test_signals_from_the_aggregate_equal_signals_from_events(tmp_path: Path) -> None:
    workspace = usage_workspace(tmp_path)
    ingest_loads(workspace, loads=4, seed=5)
    as_of = [START + timedelta(days=day) for day in (12, 25, 33, 41, 60)]

    with open_analytical_store(workspace.analytical_store_path) as store:
        assert stored_user_days(store, "UTC") is not None
        from_aggregate = compute_signals(workspace, store, as_of)
        store.connection.execute("DROP TABLE aggregate_state")
        assert stored_user_days(store, "UTC") is None
        from_events = compute_signals(workspace, store, as_of)

    assert from_aggregate["usage_trend"].abs().sum() > 0
    pd.testing.assert_frame_equal(from_aggregate, from_events)


def test_timezone_change_recomputes_that_account(tmp_path: Path) -> None:
    workspace = usage_workspace(tmp_path)
    ingest_loads(workspace, loads=2, seed=7)
    write_accounts(tmp_path, {**ZONES, "A1": "Pacific/Auckland"})

    with open_analytical_store(workspace.analytical_store_path) as store:
        ingest(workspace, store, sources=["accounts"])
        assert stored_user_days(store, "UTC") is None, "a zone change makes the stored days stale"
        report = refresh_usage_aggregate(workspace, store)
        assert stored_user_days(store, "UTC") is not None

    assert report.recomputed_accounts == 1
    pd.testing.assert_frame_equal(
        stored_days(workspace.analytical_store_path), rebuilt_copy(workspace, tmp_path)
    )


def test_old_snapshots_keep_the_zone_they_knew(tmp_path: Path) -> None:
    """Recomputing an old snapshot after a timezone change gives the values it had before the change."""
    workspace = usage_workspace(tmp_path)
    ingest_loads(workspace, loads=3, seed=11)
    as_of = [START + timedelta(days=day) for day in (20, 33, 47)]
    with open_analytical_store(workspace.analytical_store_path) as store:
        before = compute_signals(workspace, store, as_of)

    write_accounts(tmp_path, {**ZONES, "A1": "Pacific/Kiritimati"})
    with open_analytical_store(workspace.analytical_store_path) as store:
        ingest(workspace, store, sources=["accounts"])
        refresh_usage_aggregate(workspace, store)
        assert stored_user_days(store, "UTC") is not None
        from_aggregate = compute_signals(workspace, store, as_of)
        backfill_signals(workspace, store, as_of, table="after_change")
        backfilled = store.connection.execute("SELECT * FROM after_change ORDER BY as_of, account_id").df()
        store.connection.execute("DROP TABLE aggregate_state")
        from_events = compute_signals(workspace, store, as_of)
        # The stored days of A1 are cut in the new zone (UTC+14), so without the zone at as_of the
        # usage values of A1 would change.
        moved = store.connection.execute(
            "SELECT count(*) FROM usage_zones WHERE account_id = 'A1' AND zone = 'Pacific/Kiritimati'"
        ).fetchall()[0][0]

    assert moved == 1
    assert before.loc[before["account_id"] == "A1", "usage_level"].sum() > 0
    pd.testing.assert_frame_equal(from_aggregate, before)
    pd.testing.assert_frame_equal(from_events, before)
    backfilled["as_of"] = pd.to_datetime(backfilled["as_of"]).astype("datetime64[us]")
    columns = ["usage_trend", "usage_level", "usage_start", "usage_end"]
    pd.testing.assert_frame_equal(
        backfilled[["account_id", "as_of", *columns]].reset_index(drop=True),
        before[["account_id", "as_of", *columns]].reset_index(drop=True),
        check_dtype=False,
        atol=1e-12,
    )


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(
            ["DROP TABLE usage_event_hashes", "DROP TABLE usage_event_hash_check"], id="store-before-hashes"
        ),
        pytest.param(
            ["DELETE FROM usage_event_hashes", "UPDATE usage_event_hash_check SET probe = probe + 1"],
            id="other-hash-function",
        ),
    ],
)
def test_refresh_recomputes_unusable_event_hashes(tmp_path: Path, damage: list[str]) -> None:
    workspace = usage_workspace(tmp_path)
    ingest_loads(workspace, loads=2, seed=19)
    with open_analytical_store(workspace.analytical_store_path) as store:
        earlier = [row[0] for row in store.connection.execute("SELECT event_id FROM usage_events").fetchall()]
        for statement in damage:
            store.connection.execute(statement)
    write_events(tmp_path, load_events(np.random.default_rng(23), 2, 20, 10, earlier))

    with open_analytical_store(workspace.analytical_store_path) as store:
        ingest(workspace, store)
        report = refresh_usage_aggregate(workspace, store)
        hashed = store.connection.execute("SELECT count(*) FROM usage_event_hashes").fetchall()[0][0]
        events = store.connection.execute("SELECT count(*) FROM usage_events").fetchall()[0][0]

    assert report.recomputed_ids > 0, "the new load should repeat event ids of the earlier ones"
    assert hashed == events
    pd.testing.assert_frame_equal(
        stored_days(workspace.analytical_store_path), rebuilt_copy(workspace, tmp_path)
    )


def test_rebuild_recomputes_what_was_lost(tmp_path: Path) -> None:
    workspace = usage_workspace(tmp_path)
    ingest_loads(workspace, loads=2, seed=11)
    expected = stored_days(workspace.analytical_store_path)

    with open_analytical_store(workspace.analytical_store_path) as store:
        store.connection.execute("DELETE FROM usage_user_days WHERE account_id = 'A2'")
        assert refresh_usage_aggregate(workspace, store).mode == "current"
        assert refresh_usage_aggregate(workspace, store, rebuild=True).mode == "rebuild"

    pd.testing.assert_frame_equal(stored_days(workspace.analytical_store_path), expected)


CHILD = """\
import sys
from account_health.config import load_workspace
from account_health.signals.aggregate import refresh_usage_aggregate
from account_health.store.analytical import open_analytical_store
from account_health.store.operational import open_operational_store

workspace = load_workspace(sys.argv[1])
with open_analytical_store(workspace.analytical_store_path) as store:
    print("refreshing", flush=True)
    refresh_usage_aggregate(workspace, store)
    print("done", flush=True)
"""


def test_killed_refresh_leaves_the_previous_state(tmp_path: Path) -> None:
    workspace = usage_workspace(tmp_path)
    ingest_loads(workspace, loads=2, seed=13)
    before = stored_days(workspace.analytical_store_path)
    rng = np.random.default_rng(17)
    rows = [row for load in range(2, 40) for row in load_events(rng, load, load * 3, 10, [])]
    write_events(tmp_path, rows)
    with open_analytical_store(workspace.analytical_store_path) as store:
        ingest(workspace, store)
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(CHILD), encoding="utf-8")

    child = subprocess.Popen([sys.executable, str(script), str(tmp_path)], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "refreshing"
    time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()

    after = stored_days(workspace.analytical_store_path)
    with open_analytical_store(workspace.analytical_store_path) as store:
        current = stored_user_days(store, "UTC") is not None
        if not current:
            pd.testing.assert_frame_equal(after, before)
        refresh_usage_aggregate(workspace, store)
    pd.testing.assert_frame_equal(
        stored_days(workspace.analytical_store_path), rebuilt_copy(workspace, tmp_path)
    )


def test_signals_command_refreshes_and_rebuilds(tmp_path: Path) -> None:
    workspace = usage_workspace(tmp_path)
    ingest_loads(workspace, loads=2, seed=29)
    rng = np.random.default_rng(31)
    write_events(tmp_path, load_events(rng, 2, 20, 10, []))
    with open_analytical_store(workspace.analytical_store_path) as store:
        ingest(workspace, store)
        assert stored_user_days(store, "UTC") is None
    open_operational_store(workspace.operational_store_url).dispose()

    refreshed = run_cli("-w", str(tmp_path), "signals", "--as-of", "2024-02-10", "--format", "csv")
    with open_analytical_store(workspace.analytical_store_path) as store:
        assert stored_user_days(store, "UTC") is not None
    rebuilt = run_cli("-w", str(tmp_path), "signals", "--as-of", "2024-02-10", "--format", "csv", "--rebuild")

    assert refreshed.returncode == 0, refreshed.stderr
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert refreshed.stdout == rebuilt.stdout
    assert "A3" in refreshed.stdout
