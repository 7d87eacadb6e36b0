"""The scores history as the monitor reads it: one score per account and scoring date, bucketed by month."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from account_health.store import operational

SCORE_COLUMNS = ("account_id", "as_of", "model_version", "probability", "tier", "raw_tier", "run_id")


def read_score_history(engine: Engine, until: datetime) -> pd.DataFrame:
    """Return the scores with an as-of date on or before `until`, one row per account and date.

    When a date was scored more than once (by several models, say), the latest run's score counts.
    """
    table = operational.scores
    query = sa.select(*(table.c[name] for name in SCORE_COLUMNS)).where(table.c.as_of <= until)
    with engine.connect() as connection:
        frame = pd.DataFrame(connection.execute(query).all(), columns=list(SCORE_COLUMNS))
    if frame.empty:
        return frame
    frame["as_of"] = pd.to_datetime(frame["as_of"])
    frame["probability"] = frame["probability"].astype("float64")
    frame = frame.sort_values(["as_of", "account_id", "run_id"], kind="stable")
    return frame.drop_duplicates(["account_id", "as_of"], keep="last").reset_index(drop=True)


def read_score_signals(engine: Engine, as_of: datetime, features: Iterable[str]) -> pd.DataFrame:
    """Return the stored feature values of every account scored on `as_of`, one column per feature."""
    table = operational.scores
    query = (
        sa.select(table.c.account_id, table.c.signals, table.c.run_id)
        .where(table.c.as_of == as_of)
        .order_by(table.c.account_id, table.c.run_id)
    )
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    latest = {account_id: signals for account_id, signals, _run in rows}
    names = list(features)
    records = []
    for account_id, text in latest.items():
        values = json.loads(text)
        records.append({"account_id": account_id, **{name: values.get(name) for name in names}})
    frame = pd.DataFrame(records, columns=["account_id", *names])
    return frame.astype({name: "float64" for name in names})


def month_label(moment: datetime | pd.Timestamp) -> str:
    """Return the calendar month (UTC) of an instant as YYYY-MM."""
    return f"{moment.year:04d}-{moment.month:02d}"


def latest_date_per_month(dates: Iterable[datetime | pd.Timestamp]) -> dict[str, pd.Timestamp]:
    """Map each calendar month to its latest date among `dates`, months in order."""
    latest: dict[str, pd.Timestamp] = {}
    for value in sorted(pd.Timestamp(date) for date in dates):
        latest[month_label(value)] = value
    return latest
