"""Local days cut by a join on day boundaries equal local days from converting each timestamp."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import ibis
import numpy as np
import pandas as pd

from account_health.signals.user_days import day_boundaries, user_day_rows

# Daylight-saving switches, a half-hour switch, a 5:45 offset, a sub-minute historical offset and a
# zone that skipped a whole local day (Pacific/Apia, 30 December 2011).
CASES = {
    "A-NY": ("America/New_York", datetime(2024, 3, 8)),
    "A-BER": ("Europe/Berlin", datetime(2024, 10, 25)),
    "A-LHW": ("Australia/Lord_Howe", datetime(2024, 4, 4)),
    "A-KTM": ("Asia/Kathmandu", datetime(2024, 4, 4)),
    "A-APIA": ("Pacific/Apia", datetime(2011, 12, 27)),
    "A-MON": ("Africa/Monrovia", datetime(1972, 4, 28)),
    "A-SCL": ("America/Santiago", datetime(2024, 4, 4)),  # switches at local midnight
    "A-UTC": ("UTC", datetime(2024, 3, 8)),
}


def _events() -> pd.DataFrame:
    rows = []
    rng = np.random.default_rng(11)
    for account, (_zone, start) in CASES.items():
        # Every 7 minutes over six days, plus random instants, so each local midnight is straddled.
        instants = [start + timedelta(minutes=7 * step) for step in range(6 * 24 * 60 // 7)]
        instants += [start + timedelta(seconds=int(s)) for s in rng.integers(0, 6 * 86_400, 500)]
        for number, instant in enumerate(instants):
            rows.append((f"{account}-{number}", account, f"u{number % 5}", instant))
    frame = pd.DataFrame(rows, columns=["event_id", "account_id", "user_id", "occurred_at"])
    frame["occurred_at"] = frame["occurred_at"].astype("datetime64[us]")
    frame["_available_at"] = frame["occurred_at"]
    frame["_load_id"] = 1
    frame["_row_number"] = np.arange(len(frame))
    return frame


def test_day_boundaries_give_the_same_local_days() -> None:
    connection = ibis.duckdb.connect()
    events = connection.create_table("events", _events())
    zones = connection.create_table(
        "zones", pd.DataFrame({"account_id": list(CASES), "zone": [zone for zone, _ in CASES.values()]})
    )
    superseded = connection.create_table(
        "superseded", pd.DataFrame({"event_id": ["none"], "_load_id": [0], "_row_number": [0]})
    )
    # The UTC days around each case's events, a few on either side.
    days = pd.DatetimeIndex([])
    for first in sorted({start for _, start in CASES.values()}):
        days = days.append(pd.date_range(first - timedelta(days=3), first + timedelta(days=9)))
    days = days.unique()
    grid = pd.DataFrame(
        [(zone, day) for zone, _ in CASES.values() for day in days], columns=["zone", "utc_day"]
    ).astype({"utc_day": "datetime64[us]"})
    boundaries = connection.create_table(
        "boundaries", connection.execute(day_boundaries(connection.create_table("grid", grid)))
    )

    converted = connection.execute(user_day_rows(events, superseded, zones, "UTC"))
    joined = connection.execute(user_day_rows(events, superseded, zones, "UTC", boundaries=boundaries))

    order = ["account_id", "user_id", "day"]

    def tidy(frame: pd.DataFrame) -> pd.DataFrame:
        # The two paths reach pandas with different date resolutions; the days themselves must match.
        frame = frame.astype({"day": "datetime64[us]", "first_known": "datetime64[us]"})
        return frame.sort_values(order).reset_index(drop=True)

    assert len(converted) > 100
    pd.testing.assert_frame_equal(tidy(converted), tidy(joined))
    kept = connection.execute(boundaries)
    apia = kept[kept["zone"] == "Pacific/Apia"]
    assert date(2011, 12, 30) not in set(apia["utc_day"]), "the day Apia skipped must fall back to conversion"
    assert len(kept) > 0.9 * len(grid), "most days have no switch and use the join"
