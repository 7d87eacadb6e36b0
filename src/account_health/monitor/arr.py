"""ARR by tier, ARR at risk, and how much churned ARR the model had flagged Red or Orange beforehand."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import ibis
import numpy as np
import pandas as pd

from account_health.config import Workspace
from account_health.signals.context import build_context
from account_health.store.analytical import AnalyticalStore
from account_health.training.evaluate import TIER_NAMES

FLAGGED_TIERS = ("Red", "Orange")
UNKNOWN_CURRENCY = "unknown currency"


@dataclass
class TierArr:
    """ARR of the accounts in one declared tier on the latest scoring date, in one currency."""

    currency: str
    tier: str
    accounts: int
    arr: float
    arr_at_risk: float


@dataclass
class ChurnedArrCaught:
    """Churn events of a window in one currency, and the share of their ARR flagged Red or Orange before.

    An event is caught when a score of its account in the `lookback_days` before the churn instant had
    the declared tier Red or Orange. `days_before` counts from the earliest such score.
    """

    currency: str
    window_start: datetime
    window_end: datetime
    lookback_days: int
    churn_events: int
    churned_arr: float
    caught_events: int
    caught_arr: float
    not_scored_events: int
    median_days_before: float | None

    @property
    def caught_share(self) -> float | None:
        return self.caught_arr / self.churned_arr if self.churned_arr > 0 else None


def arr_by_tier(scores: pd.DataFrame) -> list[TierArr]:
    """Sum ARR and probability x ARR per currency and declared tier; accounts without ARR count as 0."""
    frame = scores.assign(
        arr=scores["arr"].astype("float64").fillna(0.0),
        currency=scores["currency"].fillna(UNKNOWN_CURRENCY),
    )
    result = []
    for currency in sorted(frame["currency"].unique()):
        rows = frame[frame["currency"] == currency]
        for tier in TIER_NAMES:
            tier_rows = rows[rows["tier"] == tier]
            result.append(
                TierArr(
                    currency=str(currency),
                    tier=tier,
                    accounts=len(tier_rows),
                    arr=float(tier_rows["arr"].sum()),
                    arr_at_risk=float((tier_rows["probability"] * tier_rows["arr"]).sum()),
                )
            )
    return result


def churned_arr_caught(
    churns: pd.DataFrame,
    scores: pd.DataFrame,
    window_start: datetime,
    window_end: datetime,
    lookback_days: int,
) -> list[ChurnedArrCaught]:
    """Measure, per currency, how much ARR churned in [window_start, window_end) had been flagged beforehand.

    `churns` has account_id, churned_at, arr and currency (the ARR known just before the churn);
    `scores` has account_id, as_of and the declared tier. Only scores strictly before the churn
    instant and at most `lookback_days` before it count.
    """
    window = churns[(churns["churned_at"] >= window_start) & (churns["churned_at"] < window_end)].copy()
    window["arr"] = window["arr"].astype("float64").fillna(0.0)
    window["currency"] = window["currency"].fillna(UNKNOWN_CURRENCY)
    window["event"] = np.arange(len(window))
    scored = window.merge(scores[["account_id", "as_of", "tier"]], on="account_id", how="inner")
    lookback = pd.Timedelta(days=lookback_days)
    scored = scored[
        (scored["as_of"] < scored["churned_at"]) & (scored["as_of"] >= scored["churned_at"] - lookback)
    ]
    flagged = scored[scored["tier"].isin(FLAGGED_TIERS)]
    first_flag = flagged.groupby("event")["as_of"].min()
    days_before = (window.set_index("event")["churned_at"] - first_flag).dropna().dt.total_seconds() / 86_400

    result = []
    for currency in sorted(window["currency"].unique()) or [UNKNOWN_CURRENCY]:
        events = window[window["currency"] == currency]
        caught = events[events["event"].isin(first_flag.index)]
        days = days_before[days_before.index.isin(caught["event"])]
        result.append(
            ChurnedArrCaught(
                currency=str(currency),
                window_start=window_start,
                window_end=window_end,
                lookback_days=lookback_days,
                churn_events=len(events),
                churned_arr=float(events["arr"].sum()),
                caught_events=len(caught),
                caught_arr=float(caught["arr"].sum()),
                not_scored_events=int((~events["event"].isin(scored["event"])).sum()),
                median_days_before=float(days.median()) if len(days) else None,
            )
        )
    return result


def account_arr(workspace: Workspace, store: AnalyticalStore, instants: Sequence[datetime]) -> pd.DataFrame:
    """Return account_id, as_of, arr and currency of each account as known just before each instant."""
    columns = ["account_id", "as_of", "arr", "currency"]
    if not instants:
        return pd.DataFrame(columns=columns)
    snapshots = ibis.memtable(pd.DataFrame({"as_of": pd.to_datetime(sorted(set(instants)))}))
    # No knowledge lag: an update loaded soon after a churn (often ARR set to 0) must not count.
    accounts = build_context(workspace, store, snapshots, lag=timedelta(0)).known_at("accounts")
    return store.ibis.execute(accounts.select(*columns))


def churn_events_between(store: AnalyticalStore, start: datetime, end: datetime) -> pd.DataFrame:
    """Return account_id and churned_at of the churn events in [start, end) with a known account."""
    churns = store.table("churn_events")
    churns = churns.filter(
        churns.account_id.notnull() & (churns.churned_at >= start) & (churns.churned_at < end)
    )
    return store.ibis.execute(churns.select("account_id", "churned_at").distinct())


def churned_with_arr(
    workspace: Workspace, store: AnalyticalStore, start: datetime, end: datetime
) -> pd.DataFrame:
    """Return the churn events of [start, end), each with its account's ARR and currency just before it."""
    churns = churn_events_between(store, start, end)
    churns["churned_at"] = churns["churned_at"].astype("datetime64[ns]")
    arr = account_arr(workspace, store, [moment.to_pydatetime() for moment in churns["churned_at"]])
    arr = arr.rename(columns={"as_of": "churned_at"})
    arr["churned_at"] = arr["churned_at"].astype("datetime64[ns]")
    return churns.merge(arr, on=["account_id", "churned_at"], how="left")
