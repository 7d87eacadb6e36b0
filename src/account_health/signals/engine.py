"""Compute the five signals for many as-of instants in one pass over the analytical store."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

import ibis
import pandas as pd

from account_health.config import Workspace
from account_health.signals.champion import champion_signal
from account_health.signals.context import TableSource, build_context
from account_health.signals.integrations import integrations_signal
from account_health.signals.registry import DETAILS, FEATURES
from account_health.signals.sentiment import sentiment_signal
from account_health.signals.support import support_signal
from account_health.signals.usage import active_users_in_window, usage_signal
from account_health.store.analytical import AnalyticalStore

log = logging.getLogger(__name__)


def compute_signals(
    workspace: Workspace,
    store: AnalyticalStore,
    as_of: Sequence[datetime],
    tables: TableSource | None = None,
) -> pd.DataFrame:
    """Return one row per (account_id, as_of) for every account known before that instant.

    Parameters
    ----------
    workspace
        The loaded workspace; its ``[signals]`` settings set windows, weights and exclusions.
    store
        The analytical store holding the canonical tables.
    as_of
        Naive-UTC instants. A feature as of T uses only row versions available strictly before T
        plus ``[signals] knowledge_lag_hours``, and only events that occurred before T.
    tables
        Where the expressions run. By default, the store itself, or with ``[signals] engine = "spark"``
        the same tables on Spark (``store.spark.open_spark_tables``).

    Returns
    -------
    pandas.DataFrame
        ``account_id``, ``as_of``, every feature in ``FEATURES`` and every detail in ``DETAILS``.
        A feature whose signal has no source configured, or no data for the account, is NaN.
    """
    if tables is None and workspace.config.signals.engine == "spark":
        from account_health.store.spark import open_spark_tables

        with open_spark_tables(workspace, store) as spark_tables:
            return compute_signals(workspace, store, as_of, spark_tables)
    source: TableSource = store if tables is None else tables
    instants = sorted({pd.Timestamp(value).to_pydatetime().replace(tzinfo=None) for value in as_of})
    snapshots = ibis.memtable(pd.DataFrame({"as_of": pd.to_datetime(instants)}))
    context = build_context(workspace, source, snapshots, instants[0] if instants else None)

    result = context.accounts.select("account_id", "as_of")
    active_users = None
    if workspace.config.signals.support_normalisation == "per_active_user":
        active_users = active_users_in_window(context)
    parts = [
        usage_signal(context),
        sentiment_signal(context),
        support_signal(context, active_users),
        champion_signal(context),
        integrations_signal(context),
    ]
    for part in parts:
        if part is not None:
            result = result.left_join(part, ["account_id", "as_of"]).drop("account_id_right", "as_of_right")

    frame = source.ibis.execute(result.order_by(["as_of", "account_id"]))
    for column in (*FEATURES, *DETAILS):
        if column not in frame.columns:
            frame[column] = pd.NA if column == "usage_measure" else float("nan")
    # Counts can arrive as DuckDB HUGEINT (Python Decimal); every feature and numeric detail becomes float64.
    for column in (*FEATURES, *DETAILS):
        if column != "usage_measure":
            frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    # DuckDB returns microseconds and Spark nanoseconds; callers merge on as_of with DuckDB frames.
    frame["as_of"] = pd.to_datetime(frame["as_of"]).astype("datetime64[us]")
    log.info(
        "computed signals for %d accounts at %d as-of instants", frame["account_id"].nunique(), len(instants)
    )
    return frame[["account_id", "as_of", *FEATURES, *DETAILS]].reset_index(drop=True)
