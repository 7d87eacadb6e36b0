"""The fixed time frame of a generated company: data span, local days and truth snapshots."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd

from account_health.training.spine import snapshot_dates

# The exports end on this day (inclusive, UTC) whatever today's date is, so a seed always gives the same files.
DATA_END = date(2026, 11, 30)
HORIZON_DAYS = 90
SNAPSHOT_EVERY_DAYS = 90
MAX_WINDOW_MONTHS = 18
# Months of history that the first truth snapshot needs behind it (the longest signal window is 90 days).
MIN_HISTORY_MONTHS = 3

NS_PER_DAY = 86_400 * 10**9


@dataclass(frozen=True)
class Calendar:
    """Data span [start, end) in UTC, the local days that cover it, and the truth snapshots.

    Instants are int64 nanoseconds since 1970-01-01 UTC throughout the generator.
    """

    months: int
    start: datetime
    end: datetime
    window_months: int
    snapshots: tuple[datetime, ...]

    @property
    def start_ns(self) -> int:
        return to_ns(self.start)

    @property
    def end_ns(self) -> int:
        return to_ns(self.end)

    @property
    def local_days(self) -> pd.DatetimeIndex:
        """Every calendar day from the day before the span to the day after it, so any timezone is covered."""
        return pd.date_range(self.start - timedelta(days=1), self.end, freq="D").as_unit("ns")

    @property
    def period_bounds(self) -> list[tuple[datetime, datetime]]:
        """Consecutive [lower, upper) periods split at each snapshot, covering the whole span."""
        edges = [self.start, *self.snapshots, self.end]
        return list(itertools.pairwise(edges))


def build_calendar(months: int) -> Calendar:
    """Lay out a span of `months` ending on DATA_END and the snapshot grid the trainer will use on it.

    The training window is 18 months when the span allows it. A shorter span shrinks it, so the first
    snapshot keeps MIN_HISTORY_MONTHS of data behind it.
    """
    end = datetime.combine(DATA_END + timedelta(days=1), datetime.min.time())
    start = (pd.Timestamp(end) - pd.DateOffset(months=months)).to_pydatetime()
    window_months = min(MAX_WINDOW_MONTHS, months - MIN_HISTORY_MONTHS)
    snapshots = tuple(snapshot_dates(end, window_months, SNAPSHOT_EVERY_DAYS, HORIZON_DAYS))
    return Calendar(months, start, end, window_months, snapshots)


def to_ns(moment: datetime) -> int:
    """Nanoseconds since the epoch of a naive UTC datetime."""
    return int(np.datetime64(moment, "ns").astype(np.int64))


def local_to_utc_ns(local_ns: np.ndarray, timezone: str) -> np.ndarray:
    """Convert local wall-clock instants (as naive nanoseconds) in `timezone` to UTC nanoseconds.

    A wall-clock time skipped by a spring-forward change moves to the first valid instant after it; a
    repeated one in autumn is read as the daylight-saving one.
    """
    if timezone == "UTC" or len(local_ns) == 0:
        return local_ns
    index = pd.DatetimeIndex(local_ns.astype("datetime64[ns]"))
    aware = index.tz_localize(
        timezone, ambiguous=np.ones(len(index), dtype=bool), nonexistent="shift_forward"
    )
    return aware.tz_convert("UTC").tz_localize(None).as_unit("ns").asi8
