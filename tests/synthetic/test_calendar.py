from __future__ import annotations

from datetime import datetime
from itertools import pairwise

import numpy as np

from account_health.synthetic.calendar import build_calendar, local_to_utc_ns, to_ns


def _local(moment: datetime) -> np.ndarray:
    return np.asarray([to_ns(moment)], dtype=np.int64)


def test_spring_forward_gap_moves_later() -> None:
    # 02:30 on 2026-03-29 does not exist in Berlin: clocks jump from 02:00 CET to 03:00 CEST (01:00 UTC).
    utc = local_to_utc_ns(_local(datetime(2026, 3, 29, 2, 30)), "Europe/Berlin")
    assert utc[0] == to_ns(datetime(2026, 3, 29, 1, 0))


def test_autumn_repeat_reads_summer_time() -> None:
    # 01:30 on 2026-11-01 happens twice in New York, and the first one (EDT, UTC-4) is taken.
    utc = local_to_utc_ns(_local(datetime(2026, 11, 1, 1, 30)), "America/New_York")
    assert utc[0] == to_ns(datetime(2026, 11, 1, 5, 30))


def test_southern_summer_offset() -> None:
    # Sydney keeps daylight saving time (UTC+11) in January.
    utc = local_to_utc_ns(_local(datetime(2026, 1, 15, 9, 0)), "Australia/Sydney")
    assert utc[0] == to_ns(datetime(2026, 1, 14, 22, 0))


def test_periods_tile_the_span() -> None:
    calendar = build_calendar(24)
    periods = calendar.period_bounds
    assert periods[0][0] == calendar.start
    assert periods[-1][1] == calendar.end
    for (_, upper), (lower, _) in pairwise(periods):
        assert upper == lower
    assert [upper for _, upper in periods[:-1]] == list(calendar.snapshots)


def test_short_span_shrinks_window() -> None:
    calendar = build_calendar(12)
    assert calendar.window_months == 9
    assert calendar.snapshots[0] >= datetime(2026, 3, 1)
    assert len(calendar.snapshots) == 3
