"""Build every scored account's action and the date's tasks: facts, cross-cuts, playbook, capacity."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy.engine import Engine

from account_health.actions.facts import account_facts, champions_in_seat, contact_candidates
from account_health.actions.playbook import (
    AccountAction,
    champion_strength,
    deciles,
    is_locked_multi_year,
    predicted_ltv,
    resolve_action,
)
from account_health.actions.tasks import TaskAllocation, allocate_tasks
from account_health.config import Workspace
from account_health.store import actions as action_store
from account_health.store.analytical import AnalyticalStore


@dataclass
class ActionPlan:
    actions: list[AccountAction]
    tasks: TaskAllocation
    # True when the departed-champion ranking could read no activity at all (no usage events with
    # users, no contact_activity): candidates are then listed in contact-id order.
    candidates_without_activity: bool = False


def build_actions(
    workspace: Workspace,
    store: AnalyticalStore,
    engine: Engine,
    scores: pd.DataFrame,
    as_of: datetime,
    run_id: int,
    model_version: str,
    validated: bool,
) -> ActionPlan:
    """Resolve the action of every account in `scores` and allocate the date's tasks."""
    settings = workspace.config.actions
    accounts = _accounts(workspace, store, scores, as_of)
    departed = accounts.loc[accounts["champion_strength"] == "departed", "account_id"].tolist()
    candidates = contact_candidates(workspace, store, as_of, departed, settings.activity_window_days)
    ranked = rank_candidates(candidates, settings.replacement_candidates)
    champions = champions_in_seat(workspace, store, as_of)
    watches = action_store.active_watches(engine, as_of)
    workshops = action_store.accounts_with_completed_workshop(engine, as_of)

    actions = []
    for account in accounts.to_dict("records"):
        account_id = account["account_id"]
        account.update(model_version=model_version, validated=validated)
        playbook = settings.playbook.for_tier(account["tier"])
        action = resolve_action(
            account,
            as_of,
            settings,
            playbook,
            account_id in workshops,
            watches.get(account_id),
            ranked.get(account_id, []),
        )
        action.champions = champions.get(account_id, [])
        actions.append(action)
    in_force = action_store.tasks_in_force(engine, as_of)
    allocation = allocate_tasks(actions, in_force, as_of, settings.owner_capacity, run_id)
    no_activity = bool(len(candidates)) and not (
        candidates[["product_events", "emails", "meetings"]].to_numpy().any()
    )
    return ActionPlan(actions, allocation, no_activity)


def _accounts(
    workspace: Workspace, store: AnalyticalStore, scores: pd.DataFrame, as_of: datetime
) -> pd.DataFrame:
    """Scores joined to account facts, with pLTV, its decile and champion strength, by account id."""
    settings = workspace.config.actions
    facts = account_facts(workspace, store, as_of)
    columns = ["account_id", "tier", "probability", "champion_in_seat", "champions_in_seat"]
    frame = scores[columns].merge(facts, on="account_id", how="left").sort_values("account_id")
    frame = frame.reset_index(drop=True)

    frame["arr"] = [_first_number(row.arr, row.contract_arr) for row in frame.itertuples()]
    horizon = workspace.config.training.horizon_days
    frame["pltv"] = [
        predicted_ltv(
            float(row.probability),
            row.arr,
            _first_number(row.pltv),
            horizon,
            settings.pltv.max_lifetime_years,
        )
        for row in frame.itertuples()
    ]
    frame["pltv_decile"] = deciles(pd.to_numeric(frame["pltv"], errors="coerce"))
    frame["champion_strength"] = [champion_strength(record) for record in frame.to_dict("records")]
    frame["renewal_date"] = [_instant(value) for value in frame["renewal_date"]]
    frame["locked_multi_year"] = [
        is_locked_multi_year(
            row.locked, row.term_months, _instant(row.contract_start), row.renewal_date, settings.renewal
        )
        for row in frame.itertuples()
    ]
    frame["name"] = [None if _missing(value) else str(value) for value in frame["name"]]
    frame["owner"] = [None if _missing(value) else str(value) for value in frame["owner"]]
    frame["pltv_decile"] = [None if _missing(value) else int(value) for value in frame["pltv_decile"]]
    return frame.astype(object).where(frame.notna(), None)


def rank_candidates(candidates: pd.DataFrame, limit: int) -> dict[str, list[dict[str, Any]]]:
    """Rank each account's candidates by product activity and email or meeting participation.

    A candidate's score is its product events over the account's highest, plus its emails and
    meetings over the account's highest (each part 0 when nobody has any), so both kinds of activity
    weigh the same. Ties go to the lower contact id. Returns the best `limit` per account.
    """
    ranked: dict[str, list[dict[str, Any]]] = {}
    if candidates.empty or limit == 0:
        return ranked
    frame = candidates.copy()
    frame["threads"] = frame["emails"] + frame["meetings"]
    for account_id, group in frame.groupby("account_id", sort=True):
        product_max = group["product_events"].max()
        threads_max = group["threads"].max()
        group = group.assign(
            score=(group["product_events"] / product_max if product_max > 0 else 0.0)
            + (group["threads"] / threads_max if threads_max > 0 else 0.0)
        )
        group = group.sort_values(["score", "contact_id"], ascending=[False, True]).head(limit)
        ranked[str(account_id)] = [
            {
                "contact_id": str(row.contact_id),
                "email": None if _missing(row.email) else str(row.email),
                "title": None if _missing(row.title) else str(row.title),
                "product_events": int(row.product_events),
                "active_days": int(row.active_days),
                "emails": int(row.emails),
                "meetings": int(row.meetings),
                "score": round(float(row.score), 4),
            }
            for row in group.itertuples()
        ]
    return ranked


def _first_number(*values: Any) -> float | None:
    for value in values:
        if not _missing(value):
            return float(value)
    return None


def _missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def _instant(value: Any) -> datetime | None:
    if _missing(value):
        return None
    return pd.Timestamp(value).to_pydatetime().replace(tzinfo=None)


__all__ = ["ActionPlan", "build_actions", "rank_candidates"]
