from __future__ import annotations

import csv
import io
from datetime import date, datetime

import pytest

from account_health.actions.export import spreadsheet_safe, write_tasks_csv
from account_health.actions.playbook import AccountAction
from account_health.actions.tasks import allocate_tasks

AS_OF = datetime(2025, 12, 1)


def _action(
    account: str, owner: str, probability: float, arr: float | None, motion: str = "m", tier: str = "Red"
) -> AccountAction:
    return AccountAction(
        account_id=account,
        as_of=AS_OF,
        name=None,
        owner=owner,
        arr=arr,
        tier=tier,
        probability=probability,
        model_version="m1",
        validated=True,
        renewal_stage=None,
        renewal_date=None,
        locked_multi_year=False,
        pltv=None,
        pltv_decile=None,
        champion_strength="unknown",
        motion=motion,
        description="",
        steps=[],
        due_date=date(2025, 12, 1),
        expansion="suppressed",
        expansion_allowed=False,
        prompt_key=None,
        persona_key="p",
        watch_reason=None,
        watch_until=None,
        cooldown_days=7,
    )


def test_capacity_keeps_the_highest_arr_at_risk_and_overflows_the_rest():
    actions = [
        _action("small", "ana", 0.9, 1_000.0),
        _action("big", "ana", 0.5, 100_000.0),
        _action("middle", "ana", 0.6, 10_000.0),
        _action("unknown-arr", "ana", 0.95, None),
        _action("other-owner", "ben", 0.1, 1_000.0),
    ]
    allocation = allocate_tasks(actions, [], AS_OF, capacity=2, run_id=1)
    status = {row["account_id"]: row["status"] for row in allocation.rows}
    rank = {row["account_id"]: row["rank"] for row in allocation.rows}
    assert status == {
        "big": "open",
        "middle": "open",
        "small": "overflow",
        "unknown-arr": "overflow",
        "other-owner": "open",
    }
    assert rank["big"] == 1 and rank["middle"] == 2
    assert allocation.overflow == 2
    assert allocation.overflow_by_owner == {"ana": 2}
    assert [action.task_status for action in actions] == ["overflow", "open", "open", "overflow", "open"]


def test_tasks_in_force_block_motion_and_capacity():
    in_force = [
        {"account_id": "a", "motion": "m", "owner": "ana", "tier": "Red", "completed_at": None},
        {
            "account_id": "b",
            "motion": "m",
            "owner": "ana",
            "tier": "Red",
            "completed_at": datetime(2025, 11, 20),
        },
    ]
    actions = [
        _action("a", "ana", 0.9, 1.0),
        _action("b", "ana", 0.9, 1.0),
        _action("a", "ana", 0.9, 1.0, motion="other"),
        _action("c", "ana", 0.9, 1.0),
    ]
    allocation = allocate_tasks(actions, in_force, AS_OF, capacity=2, run_id=1)
    # a/m and b/m are in cooldown; a's open task uses one of two slots, b's completed one none.
    assert [action.task_status for action in actions] == ["cooldown", "cooldown", "open", "overflow"]
    assert allocation.cooldown == 2
    assert allocation.carried_by_owner == {"ana": 1}


def test_riskier_tiers_open_first_whatever_their_arr():
    # A large healthy account has more ARR at risk than a small Red one, and the owner's slots are
    # taken by Dark-Green reviews from earlier runs: the Red and Orange tasks still open.
    carried = [
        {
            "account_id": f"old{number}",
            "motion": "review",
            "owner": "ana",
            "tier": "Dark-Green",
            "completed_at": None,
        }
        for number in range(2)
    ]
    actions = [
        _action("healthy-big", "ana", 0.03, 2_000_000.0, tier="Dark-Green"),
        _action("red-small", "ana", 0.7, 10_000.0, tier="Red"),
        _action("orange", "ana", 0.45, 5_000.0, tier="Orange"),
        _action("yellow", "ana", 0.25, 1_000_000.0, tier="Yellow"),
    ]
    allocation = allocate_tasks(actions, carried, AS_OF, capacity=2, run_id=1)
    status = {row["account_id"]: (row["rank"], row["status"]) for row in allocation.rows}
    assert status == {
        "red-small": (1, "open"),
        "orange": (2, "open"),
        "yellow": (3, "overflow"),
        "healthy-big": (4, "overflow"),
    }


def test_task_in_force_until_due_date():
    action = _action("a", "ana", 0.9, 1.0)
    action.due_date = date(2027, 6, 1)
    row = allocate_tasks([action], [], AS_OF, capacity=5, run_id=1).rows[0]
    assert row["expires_at"] == datetime(2027, 6, 1)


def test_playbook_without_tasks_creates_none():
    action = _action("a", "ana", 0.9, 1.0)
    action.creates_task = False
    allocation = allocate_tasks([action], [], AS_OF, capacity=5, run_id=1)
    assert allocation.rows == []
    assert action.task_status == "none"


@pytest.mark.parametrize("text", ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx", '=HYPERLINK("x")'])
def test_formula_cells_are_escaped(text):
    assert spreadsheet_safe(text) == "'" + text


def test_plain_cells_and_numbers_are_kept():
    assert spreadsheet_safe("ana@vendor.example") == "ana@vendor.example"
    assert spreadsheet_safe(-1.5) == -1.5
    assert spreadsheet_safe("") == ""


def test_tasks_csv_escapes_owner_and_watch_reason():
    row = {
        "task_id": 7,
        "as_of": AS_OF,
        "account_id": "A1",
        "owner": "=cruz@vendor.example",
        "tier": "Red",
        "motion": "exec-sponsor-outreach",
        "description": "",
        "due_date": date(2025, 12, 1),
        "probability": 0.7,
        "arr": None,
        "arr_at_risk": 0.0,
        "rank": 1,
        "status": "open",
        "watch_reason": "@ceo: call",
        "validated": True,
        "completed_at": None,
    }
    stream = io.StringIO()
    write_tasks_csv([row], stream)
    record = next(csv.DictReader(io.StringIO(stream.getvalue())))
    assert record["owner"] == "'=cruz@vendor.example"
    assert record["watch_reason"] == "'@ceo: call"
    assert record["due_date"] == "2025-12-01"
    assert record["arr"] == ""
