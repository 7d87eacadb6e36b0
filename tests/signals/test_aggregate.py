"""The stored usage aggregate: incremental refreshes equal a rebuild, and a crash leaves the previous state."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from account_health.config import CONFIG_FILE, Workspace, load_workspace
from account_health.signals import compute_signals
from account_health.signals.aggregate import refresh_usage_aggregate, stored_user_days
from account_health.sources.ingest import ingest
from account_health.store.analytical import open_analytical_store

SOURCES = """\
[workspace]
analytical_store = "analytical.duckdb"

[signals]
internal_user_patterns = ["bot-*"]

[sources.accounts]
table = "accounts"
files = ["accounts.csv"]

[sources.events]
table = "usage_events"
files = ["events.csv"]
loaded_at = "loaded_at"
"""
ZONES = {"A1": "UTC", "A2": "America/New_York", "A3": "Asia/Kolkata"}
START = datetime(2024, 1, 1)


def _workspace(folder: Path) -> Workspace:
    (folder / CONFIG_FILE).write_text(SOURCES, encoding="utf-8")
    _write_accounts(folder, ZONES)
    return load_workspace(folder)


def _write_accounts(folder: Path, zones: dict[str, str]) -> None:
    lines = ["account_id,timezone", *(f"{account},{zone}" for account, zone in zones.items())]
    (folder / "accounts.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _write_events(folder: Path, rows: list[tuple[str, str, str, datetime, datetime | None]]) -> None:
    lines = ["event_id,account_id,user_id,occurred_at,loaded_at"]
    for event_id, account, user, occurred, loaded in rows:
        loaded_text = "" if loaded is None else loaded.isoformat()
        lines.append(f"{event_id},{account},{user},{occurred.isoformat()},{loaded_text}")
    (folder / "events.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _load_events(rng: np.random.Generator, load: int, first_day: int, days: int, earlier: list[str]) -> list:
    """One load: events over `days` days, some late, some reusing an earlier event id or one of this load."""
    rows: list[tuple[str, str, str, datetime, datetime | None]] = []
    for number in range(int(rng.integers(150, 250))):
        account = f"A{int(rng.integers(1, 4))}"
        user = f"{account}-u{int(rng.integers(0, 6))}" if rng.random() > 0.05 else "bot-1"
        occurred = START + timedelta(days=first_day + float(rng.uniform(0, days)))
        loaded = None
        if rng.random() < 0.1:  # late: loaded days after it happened
            loaded = occurred + timedelta(days=float(rng.uniform(1, 20)))
        event_id = f"L{load}-{number}"
        if earlier and rng.random() < 0.05:
            event_id = str(rng.choice(earlier))  # a new version of an event from an earlier load
        elif rows and rng.random() < 0.03:
            event_id = rows[int(rng.integers(0, len(rows)))][0]  # repeated within this load
        rows.append((event_id, account, user, occurred, loaded))
    return rows


def _user_days(store_path: Path) -> pd.DataFrame:
    with open_analytical_store(store_path) as store:
        frame = store.connection.execute("SELECT * FROM usage_user_days").df()
    return frame.sort_values(["account_id", "user_id", "day"]).reset_index(drop=True)


def _rebuilt_copy(workspace: Workspace, folder: Path) -> pd.DataFrame:
    copy = folder / "rebuilt.duckdb"
    shutil.copy(workspace.analytical_store_path, copy)
    with open_analytical_store(copy) as store:
        assert refresh_usage_aggregate(workspace, store, rebuild=True).mode == "rebuild"
    return _user_days(copy)


def _ingest_loads(workspace: Workspace, loads: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    earlier: list[str] = []
    for load in range(loads):
        rows = _load_events(rng, load, first_day=load * 10, days=14, earlier=earlier)
        earlier += [row[0] for row in rows]
        _write_events(workspace.root, rows)
        with open_analytical_store(workspace.analytical_store_path) as store:
            ingest(workspace, store, backfill=load == 2)
            report = refresh_usage_aggregate(workspace, store)
        assert report.mode == ("rebuild" if load == 0 else "incremental")


def test_incremental_after_several_loads_equals_rebuild(tmp_path: Path) -> None:
    workspace = _workspace(tmp_path)

    _ingest_loads(workspace, loads=5, seed=3)

    incremental = _user_days(workspace.analytical_store_path)
    rebuilt = _rebuilt_copy(workspace, tmp_path)
    assert len(incremental) > 100
    pd.testing.assert_frame_equal(incremental, rebuilt)
    with open_analytical_store(workspace.analytical_store_path) as store:
        superseded = store.connection.execute("SELECT count(*) FROM usage_superseded").fetchall()[0][0]
    assert superseded > 0, "the generated loads should contain repeated event ids"


def test_signals_from_the_aggregate_equal_signals_from_events(tmp_path: Path) -> None:
    workspace = _workspace(tmp_path)
    _ingest_loads(workspace, loads=4, seed=5)
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
    workspace = _workspace(tmp_path)
    _ingest_loads(workspace, loads=2, seed=7)
    _write_accounts(tmp_path, {**ZONES, "A1": "Pacific/Auckland"})

    with open_analytical_store(workspace.analytical_store_path) as store:
        ingest(workspace, store, sources=["accounts"])
        assert stored_user_days(store, "UTC") is None, "a zone change makes the stored days stale"
        report = refresh_usage_aggregate(workspace, store)
        assert stored_user_days(store, "UTC") is not None

    assert report.recomputed_accounts == 1
    pd.testing.assert_frame_equal(
        _user_days(workspace.analytical_store_path), _rebuilt_copy(workspace, tmp_path)
    )


def test_rebuild_recomputes_what_was_lost(tmp_path: Path) -> None:
    workspace = _workspace(tmp_path)
    _ingest_loads(workspace, loads=2, seed=11)
    expected = _user_days(workspace.analytical_store_path)

    with open_analytical_store(workspace.analytical_store_path) as store:
        store.connection.execute("DELETE FROM usage_user_days WHERE account_id = 'A2'")
        assert refresh_usage_aggregate(workspace, store).mode == "current"
        assert refresh_usage_aggregate(workspace, store, rebuild=True).mode == "rebuild"

    pd.testing.assert_frame_equal(_user_days(workspace.analytical_store_path), expected)


CHILD = """\
import sys
from account_health.config import load_workspace
from account_health.signals.aggregate import refresh_usage_aggregate
from account_health.store.analytical import open_analytical_store

workspace = load_workspace(sys.argv[1])
with open_analytical_store(workspace.analytical_store_path) as store:
    print("refreshing", flush=True)
    refresh_usage_aggregate(workspace, store)
    print("done", flush=True)
"""


def test_killed_refresh_leaves_the_previous_state(tmp_path: Path) -> None:
    workspace = _workspace(tmp_path)
    _ingest_loads(workspace, loads=2, seed=13)
    before = _user_days(workspace.analytical_store_path)
    rng = np.random.default_rng(17)
    rows = [row for load in range(2, 40) for row in _load_events(rng, load, load * 3, 10, [])]
    _write_events(tmp_path, rows)
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

    after = _user_days(workspace.analytical_store_path)
    with open_analytical_store(workspace.analytical_store_path) as store:
        current = stored_user_days(store, "UTC") is not None
        if not current:
            pd.testing.assert_frame_equal(after, before)
        refresh_usage_aggregate(workspace, store)
    pd.testing.assert_frame_equal(
        _user_days(workspace.analytical_store_path), _rebuilt_copy(workspace, tmp_path)
    )
