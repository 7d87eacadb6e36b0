"""Resolve each scored account's action: the tier's playbook, changed (never the tier) by the cross-cuts.

Cross-cuts, in the order they apply to the motion:

1. A Red account on a locked multi-year contract renewing more than `save_plan_months_before` months
   out gets a save plan due that many months before its renewal, instead of a same-day escalation.
2. Otherwise a Red account in a top pLTV decile gets the executive save program, and one in a bottom
   decile a graceful-exit conversation.
3. The renewal stage and champion strength add steps, and no due date falls after the renewal date.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from account_health.actions.settings import ActionSettings, Playbook, RenewalSettings

RENEWAL_FAR = "Renewal-Far"
PRE_WINDOW = "Pre-Window"
WINDOW_OPEN = "Window-Open"

SAVE_PLAN = "save-plan"
EXECUTIVE_SAVE = "executive-save-program"
GRACEFUL_EXIT = "graceful-exit"

DAYS_PER_YEAR = 365.25
DAYS_PER_MONTH = DAYS_PER_YEAR / 12


@dataclass
class AccountAction:
    """One account's action on an as-of date: the row of `account_actions` plus what tasks need."""

    account_id: str
    as_of: datetime
    name: str | None
    owner: str
    arr: float | None
    tier: str
    probability: float
    model_version: str
    validated: bool
    renewal_stage: str | None
    renewal_date: datetime | None
    locked_multi_year: bool
    pltv: float | None
    pltv_decile: int | None
    champion_strength: str
    motion: str
    description: str
    steps: list[str]
    due_date: date
    expansion: str
    expansion_allowed: bool
    prompt_key: str | None
    persona_key: str
    watch_reason: str | None
    watch_until: datetime | None
    replacement_candidates: list[dict[str, Any]] = field(default_factory=list)
    # Contact ids of the champions in seat on the as-of date, which a job change received by the API
    # is checked against before the account is re-scored.
    champions: list[str] = field(default_factory=list)
    task_status: str = "none"
    # For the task allocation only; not stored in account_actions.
    creates_task: bool = True
    cooldown_days: int = 0
    workshop: bool = False

    @property
    def arr_at_risk(self) -> float:
        """Expected ARR at risk: churn probability times ARR, 0 when the ARR is unknown."""
        return self.probability * self.arr if self.arr is not None else 0.0

    def row(self, run_id: int) -> dict[str, Any]:
        """Return the `account_actions` row."""
        return {
            "account_id": self.account_id,
            "as_of": self.as_of,
            "run_id": run_id,
            "name": self.name,
            "owner": self.owner,
            "arr": self.arr,
            "tier": self.tier,
            "probability": self.probability,
            "model_version": self.model_version,
            "validated": self.validated,
            "renewal_stage": self.renewal_stage,
            "renewal_date": self.renewal_date,
            "locked_multi_year": self.locked_multi_year,
            "pltv": self.pltv,
            "pltv_decile": self.pltv_decile,
            "champion_strength": self.champion_strength,
            "motion": self.motion,
            "description": self.description,
            "steps": json.dumps(self.steps),
            "due_date": self.due_date,
            "task_status": self.task_status,
            "expansion": self.expansion,
            "expansion_allowed": self.expansion_allowed,
            "prompt_key": self.prompt_key,
            "persona_key": self.persona_key,
            "watch_reason": self.watch_reason,
            "watch_until": self.watch_until,
            "replacement_candidates": json.dumps(self.replacement_candidates),
            "champions": json.dumps(self.champions),
        }


def renewal_stage(renewal_date: datetime | None, as_of: datetime, settings: RenewalSettings) -> str | None:
    """Return the renewal stage, or None without an active contract that has a renewal date."""
    if renewal_date is None:
        return None
    days = (renewal_date - as_of).total_seconds() / 86_400
    if days <= settings.window_open_days:
        return WINDOW_OPEN
    if days <= settings.pre_window_days:
        return PRE_WINDOW
    return RENEWAL_FAR


def is_locked_multi_year(
    locked: Any, term_months: Any, start: datetime | None, end: datetime | None, settings: RenewalSettings
) -> bool:
    """Return whether a contract is locked and runs at least `multi_year_months` months.

    The term is `term_months` when the contract states it, else the months between start and end.
    """
    if not _true(locked):
        return False
    months = _number(term_months)
    if months is None and start is not None and end is not None:
        months = (end - start).days / DAYS_PER_MONTH
    return months is not None and months >= settings.multi_year_months - 0.5


def predicted_ltv(
    probability: float, arr: float | None, supplied: float | None, horizon_days: int, max_years: float
) -> float | None:
    """Return the pLTV: the supplied value, else ARR x expected remaining lifetime in years.

    With a constant churn probability p per horizon, the expected number of horizons until churn is
    1 / p (the mean of a geometric distribution); the lifetime is capped at `max_years`.
    """
    if supplied is not None:
        return supplied
    if arr is None:
        return None
    years = horizon_days / DAYS_PER_YEAR / max(probability, 1e-9)
    return arr * min(years, max_years)


def deciles(values: pd.Series) -> pd.Series:
    """Return each value's decile among the non-missing values: 10 contains the highest tenth, 1 the lowest.

    Ties are broken by position, so sort the series by a stable key (the account id) first.
    """
    present = values.dropna()
    result = pd.Series(pd.NA, index=values.index, dtype="Int64")
    if present.empty:
        return result
    ranks = present.rank(method="first")
    result.loc[present.index] = np.ceil(ranks / len(present) * 10).astype("int64").clip(1, 10)
    return result


def champion_strength(signals: Mapping[str, Any]) -> str:
    """Return strong (two or more champions in seat), single, departed (none left in seat) or unknown."""
    in_seat = _number(signals.get("champion_in_seat"))
    if in_seat is None:
        return "unknown"
    if in_seat == 0:
        return "departed"
    count = _number(signals.get("champions_in_seat"))
    return "strong" if count is not None and count >= 2 else "single"


def resolve_action(
    account: Mapping[str, Any],
    as_of: datetime,
    settings: ActionSettings,
    playbook: Playbook,
    workshop_done: bool,
    watch: Mapping[str, Any] | None,
    candidates: list[dict[str, Any]],
) -> AccountAction:
    """Build one account's action from its score, facts and cross-cuts.

    `account` holds account_id, tier, probability, model_version, validated, name, owner, arr,
    renewal_date, locked_multi_year, pltv, pltv_decile and champion_strength.
    """
    renewal_date = account.get("renewal_date")
    stage = renewal_stage(renewal_date, as_of, settings.renewal)
    motion, description, due = _motion(account, as_of, settings, playbook)
    steps = _steps(stage, renewal_date, account["champion_strength"], candidates, watch)
    if renewal_date is not None and motion != SAVE_PLAN and due > renewal_date.date() >= as_of.date():
        due = renewal_date.date()
    return AccountAction(
        account_id=account["account_id"],
        as_of=as_of,
        name=account.get("name"),
        owner=playbook.owner or account.get("owner") or settings.default_owner,
        arr=account.get("arr"),
        tier=account["tier"],
        probability=float(account["probability"]),
        model_version=account["model_version"],
        validated=bool(account["validated"]),
        renewal_stage=stage,
        renewal_date=renewal_date,
        locked_multi_year=bool(account.get("locked_multi_year")),
        pltv=account.get("pltv"),
        pltv_decile=account.get("pltv_decile"),
        champion_strength=account["champion_strength"],
        motion=motion,
        description=description,
        steps=steps,
        due_date=due,
        expansion=playbook.expansion,
        expansion_allowed=_expansion_allowed(playbook.expansion, workshop_done),
        prompt_key=playbook.prompt_key,
        persona_key=playbook.persona_key,
        watch_reason=watch["reason"] if watch else None,
        watch_until=watch["until"] if watch else None,
        replacement_candidates=candidates,
        creates_task=playbook.task,
        cooldown_days=playbook.cooldown_days,
        workshop=playbook.workshop,
    )


def _motion(
    account: Mapping[str, Any], as_of: datetime, settings: ActionSettings, playbook: Playbook
) -> tuple[str, str, date]:
    today = as_of.date()
    default = (playbook.motion, playbook.description, today + timedelta(days=playbook.due_days))
    if account["tier"] != "Red":
        return default
    renewal_date = account.get("renewal_date")
    if account.get("locked_multi_year") and renewal_date is not None:
        months = settings.renewal.save_plan_months_before
        start = _months_before(renewal_date.date(), months)
        if start > today:
            return (
                SAVE_PLAN,
                f"save plan for a locked multi-year contract, starting {months} months before its renewal "
                f"on {renewal_date:%Y-%m-%d}",
                start,
            )
    decile = account.get("pltv_decile")
    if decile is not None and decile in settings.pltv.executive_save_deciles:
        return (EXECUTIVE_SAVE, f"executive save program (pLTV decile {decile} of 10)", default[2])
    if decile is not None and decile in settings.pltv.graceful_exit_deciles:
        due = today + timedelta(days=settings.pltv.graceful_exit_due_days)
        return (GRACEFUL_EXIT, f"graceful-exit conversation (pLTV decile {decile} of 10)", due)
    return default


def _steps(
    stage: str | None,
    renewal_date: datetime | None,
    strength: str,
    candidates: list[dict[str, Any]],
    watch: Mapping[str, Any] | None,
) -> list[str]:
    steps = []
    if stage == WINDOW_OPEN and renewal_date is not None:
        steps.append(f"renewal window open: confirm the renewal plan before {renewal_date:%Y-%m-%d}")
    elif stage == PRE_WINDOW and renewal_date is not None:
        steps.append(f"renewal on {renewal_date:%Y-%m-%d}: prepare the value summary for the renewal")
    if strength == "departed":
        if candidates:
            best = candidates[0]
            who = best.get("email") or best["contact_id"]
            steps.append(f"champion left: meet the top replacement candidate, {who}")
        else:
            steps.append("champion left: no replacement candidate among the account's contacts")
    elif strength == "single":
        steps.append("one champion in seat: win a second champion")
    if watch:
        steps.append(f"on the watch list until {watch['until']:%Y-%m-%d}: {watch['reason']}")
    return steps


def _expansion_allowed(policy: str, workshop_done: bool) -> bool:
    if policy == "suppressed":
        return False
    if policy == "after-workshop":
        return workshop_done
    return True


def _months_before(day: date, months: int) -> date:
    month_index = day.year * 12 + day.month - 1 - months
    year, month = divmod(month_index, 12)
    month += 1
    # The same day of the month, or the month's last day when it is shorter (31 March -> 28 February).
    for candidate in range(day.day, 27, -1):
        try:
            return date(year, month, candidate)
        except ValueError:
            continue
    return date(year, month, min(day.day, 28))


def _number(value: Any) -> float | None:
    if value is None or value is pd.NA:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def _true(value: Any) -> bool:
    if value is None or value is pd.NA:
        return False
    if isinstance(value, float) and math.isnan(value):
        return False
    return bool(value)


__all__ = [
    "EXECUTIVE_SAVE",
    "GRACEFUL_EXIT",
    "PRE_WINDOW",
    "RENEWAL_FAR",
    "SAVE_PLAN",
    "WINDOW_OPEN",
    "AccountAction",
    "champion_strength",
    "deciles",
    "is_locked_multi_year",
    "predicted_ltv",
    "renewal_stage",
    "resolve_action",
]
