"""The daily backfill reproduces compute_signals at every instant, late rows and timezones included."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from account_health.config import load_workspace
from account_health.signals import DETAILS, FEATURES, compute_signals
from account_health.signals.aggregate import refresh_usage_aggregate
from account_health.signals.backfill import _daily_activity, backfill_signals
from account_health.signals.usage import MAU_DAYS, active_and_trailing
from account_health.sources.ingest import ingest
from account_health.store.analytical import open_analytical_store
from usage_loads import START, ZONES, ingest_loads, usage_workspace, write_events


def test_backfill_equals_compute_signals_at_every_day(tmp_path: Path) -> None:
    _assert_backfill_equals_compute_signals(tmp_path, [START + timedelta(days=day) for day in range(0, 70)])


def test_backfill_equals_compute_signals_at_uneven_hours(tmp_path: Path) -> None:
    # Instants at varying hours give each account uneven gaps between an end day and its as_of, some
    # local days with two instants and some with none, which the dirty pairs' bounds must allow for.
    as_of = [START + timedelta(days=day, hours=(day * 7) % 24, minutes=day % 3 * 20) for day in range(0, 70)]
    _assert_backfill_equals_compute_signals(tmp_path, as_of)


@pytest.mark.parametrize("lag_hours", [0, 6])
def test_backfill_late_days_at_cut_off(tmp_path: Path, lag_hours: int) -> None:
    # The cut-off of the local midnight that ends a user-day is that midnight plus the lag. A user-day
    # first known 30 minutes after it is invisible at the instant of that midnight, the closest a late
    # day can come to its first as_of. One known 30 minutes before the cut-off is visible.
    workspace = usage_workspace(tmp_path, knowledge_lag_hours=lag_hours)
    rows: list[tuple[str, str, str, datetime, datetime | None]] = []
    for account, zone in ZONES.items():
        for day in range(40):
            rows.append(
                (f"{account}-d{day}", account, f"{account}-u1", START + timedelta(days=day, hours=12), None)
            )
        for day, minutes in ((10, 30), (20, -30), (30, 30)):
            occurred = START + timedelta(days=day, hours=20)
            local_day = occurred.replace(tzinfo=ZoneInfo("UTC")).astimezone(ZoneInfo(zone)).date()
            next_midnight = datetime.combine(
                local_day + timedelta(days=1), datetime.min.time(), ZoneInfo(zone)
            )
            known = next_midnight.astimezone(ZoneInfo("UTC")).replace(tzinfo=None) + timedelta(
                hours=lag_hours, minutes=minutes
            )
            rows.append((f"{account}-late{day}", account, f"{account}-u2", occurred, known))
    write_events(workspace.root, rows)
    with open_analytical_store(workspace.analytical_store_path) as store:
        ingest(workspace, store, backfill=True)
        refresh_usage_aggregate(workspace, store)

    as_of = [START + timedelta(days=day, hours=hours) for day in range(45) for hours in (0, 5.5)]
    _assert_backfill_equals_compute_signals(tmp_path, as_of, ingested=True)


def _assert_backfill_equals_compute_signals(
    tmp_path: Path, as_of: list[datetime], ingested: bool = False
) -> None:
    """Compare the backfill with compute_signals, on the workspace in `tmp_path` when `ingested`, else on
    four generated loads."""
    if ingested:
        workspace = load_workspace(tmp_path)
    else:
        workspace = usage_workspace(tmp_path)
        ingest_loads(workspace, loads=4, seed=19)

    with open_analytical_store(workspace.analytical_store_path) as store:
        report = backfill_signals(workspace, store, as_of, block_instants=25)
        backfilled = store.connection.execute("SELECT * FROM signal_backfill").df()
        expected = compute_signals(workspace, store, as_of)

    assert report.dirty_pairs > 0, "the loads should hold user-days that arrived late"
    backfilled = backfilled.sort_values(["as_of", "account_id"]).reset_index(drop=True)
    assert len(backfilled) == len(expected) == 3 * len(as_of)
    assert expected["usage_trend"].abs().sum() > 0
    for column in ("account_id", "as_of", "usage_measure"):
        assert backfilled[column].astype(str).tolist() == expected[column].astype(str).tolist(), column
    for column in (*FEATURES, *DETAILS):
        if column == "usage_measure":
            continue
        np.testing.assert_allclose(
            backfilled[column].to_numpy(float),
            expected[column].to_numpy(float),
            rtol=1e-9,
            atol=1e-12,
            err_msg=column,
        )


def test_backfill_replaces_the_table(tmp_path: Path) -> None:
    workspace = usage_workspace(tmp_path)
    ingest_loads(workspace, loads=1, seed=23)
    with open_analytical_store(workspace.analytical_store_path) as store:
        backfill_signals(workspace, store, [START + timedelta(days=day) for day in range(10)])
        backfill_signals(workspace, store, [START + timedelta(days=day) for day in range(4)])
        frame = store.connection.execute("SELECT count(*) AS n FROM signal_backfill").df()
    assert pd.Series(frame["n"]).iloc[0] == 3 * 4


def test_daily_activity_equals_islands(tmp_path: Path) -> None:
    # Gaps of 26 to 29 days around the 28-day MAU window, days on both sides of 32-day chunk edges,
    # a chunk with no activity between two active ones, and an account of one user-day.
    base = date(2023, 12, 30)
    offsets = {
        ("a", "u1"): [0, 27, 28, 56, 85, 31, 32, 63, 64, 95, 96, 200],
        ("a", "u2"): [3, 29, 30, 31, 58, 87, 115, 116, 140, 141, 142, 143, 171],
        ("a", "u3"): [100, 126, 127],
        ("b", "u1"): [5, 40, 41, 300],
        ("b", "u4"): [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 36, 37, 38, 39],
        ("c", "u5"): [62],
    }
    frame = pd.DataFrame(
        [
            (account, user, base + timedelta(days=offset))
            for (account, user), days in offsets.items()
            for offset in days
        ],
        columns=["account_id", "user_id", "day"],
    )
    with open_analytical_store(tmp_path / "store.duckdb") as store:
        store.connection.register("_frame", frame)
        store.connection.execute(
            "CREATE TABLE user_days AS SELECT account_id, user_id, CAST(day AS DATE) AS day FROM _frame"
        )
        user_days = store.table("user_days")
        _daily_activity(store, user_days)
        actual = store.connection.execute("SELECT account_id, day, dau, mau FROM _daily ORDER BY 1, 2").df()
        islands = active_and_trailing(user_days, ["account_id"], MAU_DAYS)
        expected = (
            islands.select("account_id", "day", "dau", "mau").order_by(["account_id", "day"]).to_pandas()
        )

    assert len(actual) == frame[["account_id", "day"]].drop_duplicates().shape[0]
    assert actual["account_id"].tolist() == expected["account_id"].tolist()
    assert [str(day)[:10] for day in actual["day"]] == [str(day)[:10] for day in expected["day"]]
    assert actual["dau"].astype(int).tolist() == expected["dau"].astype(int).tolist()
    assert actual["mau"].astype(int).tolist() == expected["mau"].astype(int).tolist()
