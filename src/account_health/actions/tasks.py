"""Turn account actions into CSM tasks: cooldown per account and motion, then capacity per owner.

Tasks are ranked by tier, Red first, then by expected ARR at risk (churn probability x ARR). Each
owner gets open tasks until the capacity is reached. A new task counts the new tasks ranked before it
and the tasks of earlier dates still in force in its tier or a riskier one. The rest are stored with
status "overflow", so they are reported and never dropped. A healthier account's task, new or
carried, therefore never keeps a riskier account's task from opening.
An overflow task does not start a cooldown, so the next run considers the account again.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from account_health.actions.playbook import AccountAction
from account_health.store.actions import as_datetime
from account_health.training.evaluate import TIER_NAMES


@dataclass
class TaskAllocation:
    rows: list[dict[str, Any]]
    open: int = 0
    overflow: int = 0
    cooldown: int = 0
    overflow_by_owner: dict[str, int] = field(default_factory=dict)
    # Open tasks of earlier dates still counted against each owner's capacity.
    carried_by_owner: dict[str, int] = field(default_factory=dict)


def allocate_tasks(
    actions: Sequence[AccountAction],
    in_force: Sequence[Mapping[str, Any]],
    as_of: datetime,
    capacity: int,
    run_id: int,
) -> TaskAllocation:
    """Return the task rows of `as_of` and set each action's `task_status`.

    `in_force` are the open tasks of earlier dates whose cooldown has not ended (completed or not).
    Any of them blocks a new task for the same account and motion. Those not completed before
    `as_of` count against their owner's capacity.
    """
    blocked = {(task["account_id"], task["motion"]) for task in in_force}
    open_before = [
        task for task in in_force if task.get("completed_at") is None or task["completed_at"] >= as_of
    ]
    carried = Counter(task["owner"] for task in open_before)
    # Carried open tasks per owner and tier, for the capacity left to each tier.
    carried_by_tier = Counter((task["owner"], _urgency(task.get("tier"))) for task in open_before)
    candidates = []
    cooldown = 0
    for action in actions:
        if not action.creates_task:
            action.task_status = "none"
        elif (action.account_id, action.motion) in blocked:
            action.task_status = "cooldown"
            cooldown += 1
        else:
            candidates.append(action)
    candidates.sort(
        key=lambda action: (
            _urgency(action.tier),
            -action.arr_at_risk,
            -action.probability,
            action.account_id,
        )
    )

    opened: Counter[str] = Counter()
    allocation = TaskAllocation([], cooldown=cooldown, carried_by_owner=dict(carried))
    overflow: Counter[str] = Counter()
    for rank, action in enumerate(candidates, start=1):
        urgency = _urgency(action.tier)
        ahead = sum(carried_by_tier[(action.owner, tier)] for tier in range(urgency + 1))
        if opened[action.owner] + ahead < capacity:
            opened[action.owner] += 1
            action.task_status = "open"
            allocation.open += 1
        else:
            action.task_status = "overflow"
            overflow[action.owner] += 1
            allocation.overflow += 1
        allocation.rows.append(_task_row(action, rank, run_id))
    allocation.overflow_by_owner = dict(sorted(overflow.items()))
    return allocation


def _urgency(tier: str | None) -> int:
    """Return a tier's place in the task order: 0 for Red, 4 for Dark-Green, 5 for an unknown tier."""
    return TIER_NAMES.index(tier) if tier in TIER_NAMES else len(TIER_NAMES)


def _task_row(action: AccountAction, rank: int, run_id: int) -> dict[str, Any]:
    # A task is in force for its motion's cooldown, and at least until it is due (a save plan due months out).
    expires_at = max(action.as_of + timedelta(days=action.cooldown_days), as_datetime(action.due_date))
    return {
        "account_id": action.account_id,
        "as_of": action.as_of,
        "motion": action.motion,
        "run_id": run_id,
        "owner": action.owner,
        "tier": action.tier,
        "description": action.description,
        "due_date": action.due_date,
        "probability": action.probability,
        "arr": action.arr,
        "arr_at_risk": action.arr_at_risk,
        "rank": rank,
        "status": action.task_status,
        "expires_at": expires_at,
        "workshop": action.workshop,
        "watch_reason": action.watch_reason,
        "validated": action.validated,
    }


__all__ = ["TaskAllocation", "allocate_tasks"]
