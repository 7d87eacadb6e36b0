"""The training spine: snapshot dates across the training window, and their churn labels."""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd


def snapshot_dates(end: datetime, window_months: int, every_days: int, horizon_days: int) -> list[datetime]:
    """Return the snapshot instants of the training window, oldest first.

    The newest snapshot is `end - horizon_days`, so its label window [T, T + horizon) is fully observed
    by `end`. Older snapshots follow every `every_days` back to `end - window_months`.
    """
    first_allowed = (pd.Timestamp(end) - pd.DateOffset(months=window_months)).to_pydatetime()
    newest = end - timedelta(days=horizon_days)
    dates = []
    current = newest
    while current >= first_allowed:
        dates.append(current)
        current -= timedelta(days=every_days)
    return sorted(dates)
