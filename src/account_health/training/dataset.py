"""Training rows: every account at risk at each snapshot, its signals as of then, and its churn label."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import ibis
import pandas as pd
from ibis import _

from account_health.config import Workspace
from account_health.signals import compute_signals
from account_health.signals.context import build_context
from account_health.store.analytical import AnalyticalStore


def at_risk_accounts(workspace: Workspace, store: AnalyticalStore, as_of: Sequence[datetime]) -> pd.DataFrame:
    """Return (account_id, as_of) of accounts that could churn at each instant.

    With a contracts source, an account is at risk while a contract known at the knowledge cut-off of
    as_of (as the signals read it) is active (start_at < as_of <= end_at, or no end). Without one,
    every known account that has not churned before as_of is at risk.
    """
    snapshots = ibis.memtable(pd.DataFrame({"as_of": pd.to_datetime(list(as_of))}))
    context = build_context(workspace, store, snapshots)
    accounts = context.accounts.select("account_id", "as_of")
    if context.configured("contracts"):
        contracts = context.known_at("contracts")
        active = contracts.filter(
            (contracts.start_at < contracts.as_of)
            & (contracts.end_at.isnull() | (contracts.end_at >= contracts.as_of))
        )
        at_risk = accounts.semi_join(active, ["account_id", "as_of"])
    else:
        # NOTE: without contracts a returning customer cannot be distinguished from a churned one, so an
        # account drops out of the spine at its first churn.
        churns = _churn_events(store)
        earlier = churns.join(snapshots, churns.churned_at < snapshots.as_of).select("account_id", "as_of")
        at_risk = accounts.anti_join(earlier, ["account_id", "as_of"])
    return store.ibis.execute(at_risk.distinct().order_by(["as_of", "account_id"]))


def _churn_events(store: AnalyticalStore) -> ibis.Table:
    churns = store.table("churn_events")
    churns = churns.filter(churns.account_id.notnull())
    return churns.select("account_id", "churned_at").distinct()


def label_rows(store: AnalyticalStore, rows: pd.DataFrame, horizon_days: int) -> pd.DataFrame:
    """Add `label` (1 when the account churned in [as_of, as_of + horizon)) and the churn instant.

    Labels use every churn event stored now, because they describe the future of each snapshot.
    """
    spine = ibis.memtable(rows[["account_id", "as_of"]])
    churns = _churn_events(store)
    horizon = ibis.interval(days=horizon_days)
    hits = spine.join(
        churns,
        [
            spine.account_id == churns.account_id,
            churns.churned_at >= spine.as_of,
            churns.churned_at < spine.as_of + horizon,
        ],
    )
    first = hits.group_by(["account_id", "as_of"]).aggregate(churned_at=_.churned_at.min())
    labelled = store.ibis.execute(first)
    out = rows.merge(labelled, on=["account_id", "as_of"], how="left")
    out["label"] = out["churned_at"].notna().astype("int64")
    return out


def build_training_frame(
    workspace: Workspace, store: AnalyticalStore, snapshots: Sequence[datetime], horizon_days: int
) -> pd.DataFrame:
    """Return signals, label and churn instant for every (account, snapshot) at risk."""
    at_risk = at_risk_accounts(workspace, store, snapshots)
    signals = compute_signals(workspace, store, snapshots)
    frame = at_risk.merge(signals, on=["account_id", "as_of"], how="inner")
    return label_rows(store, frame, horizon_days)
