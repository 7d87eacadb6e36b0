from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from rich.console import Console

from account_health.cli.nightly import run_report
from account_health.config import load_workspace
from account_health.nightly import STEPS, RunObserver, run_nightly
from account_health.store import operational
from account_health.store.actions import (
    latest_nightly_run,
    read_account_actions,
    read_tasks,
    tier_changes,
    tier_changes_of_run,
)
from account_health.workspace import open_stores
from action_company import assert_same, snapshot
from nightly_fixtures import FIRST, SECOND
from notify.standins import SLACK_CHANNEL, SLACK_TOKEN, SlackStandIn

CHILD = Path(__file__).with_name("nightly_child.py")
LATE_TICKETS = 5


def test_second_run_of_a_date_changes_nothing_but_the_run(fresh, reference):
    with open_stores(fresh) as (store, engine):
        first = run_nightly(fresh, store, engine, SECOND)
        after_first = snapshot(engine, SECOND)
        task_ids = {(row["account_id"], row["motion"]): row["task_id"] for row in read_tasks(engine, SECOND)}
        second = run_nightly(fresh, store, engine, SECOND)
        after_second = snapshot(engine, SECOND)
        task_ids_again = {
            (row["account_id"], row["motion"]): row["task_id"] for row in read_tasks(engine, SECOND)
        }
        statuses = _run_statuses(engine)

    assert second.run_id != first.run_id
    assert statuses[first.run_id] == statuses[second.run_id] == "succeeded"
    assert_same(after_second, after_first)
    assert task_ids_again == task_ids
    # The same as an undisturbed run on SQLite, whichever store this one used.
    assert_same(after_first, reference["snapshot"])
    assert len(after_first["tier_changes"]) > 0
    assert len(after_first["tasks"]) > 0


def test_readers_see_the_previous_run_until_commit(fresh):
    seen = []

    class Reader(RunObserver):
        def progress(self, step: str, label: str, done: int, total: int) -> None:
            if step == "write" and label == "scores":
                reader = operational.connect(fresh.operational_store_url)
                latest = latest_nightly_run(reader)
                seen.append((latest["as_of"], read_account_actions(reader)[0]["as_of"]))
                seen.append(len(operational.read_scores(reader, SECOND)))
                reader.dispose()

    with open_stores(fresh) as (store, engine):
        run_nightly(fresh, store, engine, SECOND, observer=Reader())
        latest = latest_nightly_run(engine)
    assert seen == [(FIRST, FIRST), 0]
    assert latest is not None and latest["as_of"] == SECOND


# Every step on SQLite. On PostgreSQL the steps between the ingest and the write touch the operational
# store no differently, so only the ingest and the two steps inside its transaction run there.
# The "deliver" step runs after the commit; tests/notify/test_crash.py kills a delivery instead.
KILL_CASES = [pytest.param(step, "sqlite", id=f"sqlite-{step}") for step in STEPS if step != "deliver"] + [
    pytest.param(step, "postgresql", id=f"postgresql-{step}") for step in ("ingest", "write", "notify")
]


@pytest.mark.slow
@pytest.mark.parametrize(("step", "fresh"), KILL_CASES, indirect=["fresh"])
def test_killed_run_leaves_both_stores_consistent(step, fresh, reference, tmp_path):
    tickets_before = _append_late_tickets(fresh.root)

    killed_run = _run_child_and_kill(fresh.root, step, tmp_path / "child.stderr")

    with open_stores(fresh, create=False) as (store, engine):
        tickets = store.connection.execute("SELECT count(*) FROM tickets").fetchall()[0][0]
        # The ingest commits all of its rows or none of them.
        assert tickets == (tickets_before if step == "ingest" else tickets_before + LATE_TICKETS)
        assert snapshot(engine, SECOND) == {
            "scores": [],
            "tier_changes": [],
            "tasks": [],
            "account_actions": [],
        }
        assert _run_statuses(engine)[killed_run] == "running"
        assert read_account_actions(engine)[0]["as_of"] == FIRST

        result = run_nightly(fresh, store, engine, SECOND)

        assert result.abandoned_runs == [killed_run]
        assert _run_statuses(engine)[killed_run] == "abandoned"
        assert_same(snapshot(engine, SECOND), reference["snapshot"])


@pytest.mark.parametrize("fresh", ["sqlite"], indirect=True)
def test_tier_changes_carry_what_a_message_needs(fresh, reference):
    with open_stores(fresh) as (store, engine):
        result = run_nightly(fresh, store, engine, SECOND)
        changes = tier_changes_of_run(engine, result.run_id)

    assert len(changes) == result.summary()["tier_changes"]["total"] > 0
    for change in changes:
        assert change["old_tier"] != change["new_tier"]
        assert change["owner"]
        assert change["motion"]
        assert change["due_date"] is not None
        assert change["top_signal_1"] == change["top_signals"][0]["signal"]
        assert change["top_signals"][0]["text"]
        assert "renewal_stage" in change
        assert "watch_reason" in change
        if change["top_signal_2"] is not None:
            riskier = _risk(change["new_tier"]) < _risk(change["old_tier"])
            first, second = change["top_signal_1_points"], change["top_signal_2_points"]
            assert (first >= second) if riskier else (first <= second)


@pytest.mark.parametrize("fresh", ["sqlite"], indirect=True)
def test_capacity_overflow_is_stored_and_reported(fresh):
    with open_stores(fresh) as (store, engine):
        result = run_nightly(fresh, store, engine, SECOND)
        rows = read_tasks(engine, SECOND)
    capacity = fresh.config.actions.owner_capacity
    created = pd.DataFrame([row for row in rows if row["as_of"] == SECOND])
    carried = pd.DataFrame([row for row in rows if row["as_of"] < SECOND])
    summary = result.summary()["tasks"]
    notifications = result.summary()["notifications"]
    console = Console(record=True, width=300)
    run_report(console, result.summary())
    text = console.export_text()

    assert notifications["destinations"] == []
    assert "none sent for" in text
    assert "because no notifier is enabled" in text
    assert summary["overflow"] == (created["status"] == "overflow").sum() > 0
    assert summary["open"] == (created["status"] == "open").sum()
    tiers = ["Red", "Orange", "Yellow", "Green", "Dark-Green"]
    for owner, group in created.groupby("owner"):
        assert summary["overflow_by_owner"].get(owner, 0) == (group["status"] == "overflow").sum()
        # Ranked by tier, then expected ARR at risk: no overflow task outranks an open one.
        order = [(tiers.index(row.tier), -row.arr_at_risk) for row in group.itertuples()]
        opened = [key for key, status in zip(order, group["status"], strict=True) if status == "open"]
        overflowed = [key for key, status in zip(order, group["status"], strict=True) if status == "overflow"]
        if opened and overflowed:
            assert max(opened) <= min(overflowed), owner
        # Each open task fits the capacity with the open tasks ahead of it and the carried ones of its
        # tier or a riskier one.
        for number, key in enumerate(sorted(opened), start=1):
            standing = 0
            if not carried.empty:
                mine = carried[carried["owner"] == owner]
                standing = sum(tiers.index(tier) <= key[0] for tier in mine["tier"])
            assert number + standing <= capacity, owner


@pytest.mark.parametrize("fresh", ["sqlite"], indirect=True)
def test_cooldown_blocks_the_same_motion_next_day(fresh):
    next_day = SECOND + timedelta(days=1)
    with open_stores(fresh) as (store, engine):
        run_nightly(fresh, store, engine, SECOND)
        first = {row["account_id"]: row for row in read_tasks(engine, SECOND) if row["status"] == "open"}
        run_nightly(fresh, store, engine, next_day)
        actions = {row["account_id"]: row for row in read_account_actions(engine)}
        created = [row for row in read_tasks(engine, next_day) if row["as_of"] == next_day]

    blocked = [account for account, task in first.items() if actions[account]["motion"] == task["motion"]]
    assert blocked
    for account in blocked:
        assert actions[account]["task_status"] == "cooldown"
    assert not {row["account_id"] for row in created} & set(blocked)


def _risk(tier: str) -> int:
    return ["Red", "Orange", "Yellow", "Green", "Dark-Green"].index(tier)


def _run_statuses(engine: sa.Engine) -> dict[int, str]:
    with engine.connect() as connection:
        rows = connection.execute(sa.select(operational.runs.c.run_id, operational.runs.c.status))
        return {row.run_id: row.status for row in rows}


def _append_late_tickets(folder: Path) -> int:
    """Append tickets created before SECOND but exported now; return the count stored before them."""
    path = folder / "exports" / "tickets.csv"
    tickets = pd.read_csv(path)
    before = len(tickets)
    late = pd.DataFrame(
        {
            "ticket_id": [f"LATE-{number}" for number in range(LATE_TICKETS)],
            "account_id": tickets["account_id"].iloc[:LATE_TICKETS].tolist(),
            "created_at": ["2025-11-20T10:00:00"] * LATE_TICKETS,
            "priority": ["urgent"] * LATE_TICKETS,
        }
    )
    pd.concat([tickets, late]).to_csv(path, index=False)
    return before


def _run_child_and_kill(folder: Path, step: str, stderr_path: Path) -> int:
    """Start a nightly run of SECOND in a child process, SIGKILL it inside `step`; return its run id."""
    with stderr_path.open("w") as stderr:
        child = subprocess.Popen(
            [sys.executable, str(CHILD), str(folder), SECOND.isoformat(), step],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env=os.environ.copy(),
        )
        assert child.stdout is not None
        deadline = time.monotonic() + 300
        line = ""
        while time.monotonic() < deadline:
            line = child.stdout.readline()
            if line.strip() == f"PAUSED {step}" or not line:
                break
        assert line.strip() == f"PAUSED {step}", stderr_path.read_text()
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL
    engine = operational.connect(_url(folder))
    try:
        with engine.connect() as connection:
            return int(connection.execute(sa.select(sa.func.max(operational.runs.c.run_id))).scalar_one())
    finally:
        engine.dispose()


def _url(folder: Path) -> str:
    from account_health.config import load_workspace

    return load_workspace(folder).operational_store_url


@pytest.mark.parametrize("fresh", ["sqlite"], indirect=True)
def test_tier_changes_read_through_a_transaction(fresh):
    with open_stores(fresh) as (store, engine):
        result = run_nightly(fresh, store, engine, SECOND)
        with engine.begin() as connection:
            # An uncommitted change is visible to the transaction that made it, as in `_notify`.
            connection.execute(
                sa.update(tier_changes).where(tier_changes.c.run_id == result.run_id).values(validated=False)
            )
            inside = tier_changes_of_run(connection, result.run_id)
            connection.rollback()
        outside = tier_changes_of_run(engine, result.run_id)
    assert len(inside) == len(outside) > 0
    assert not any(change["validated"] for change in inside)
    assert all(change["validated"] for change in outside)


@pytest.mark.parametrize("fresh", ["sqlite"], indirect=True)
def test_run_posts_changes_once(fresh, monkeypatch):
    slack = SlackStandIn()
    try:
        monkeypatch.setenv("ACCOUNT_HEALTH_SLACK_TOKEN", SLACK_TOKEN)
        monkeypatch.setenv("ACCOUNT_HEALTH_SLACK_CHANNEL", SLACK_CHANNEL)
        config = fresh.root / "account-health.toml"
        config.write_text(
            config.read_text()
            + f'\n[notify.slack]\nenabled = true\nbase_url = "{slack.url}/api"\nbackoff_seconds = 0.001\n'
            # This small company has few changes into Red or Orange; Yellow gets messages of its own too.
            + 'immediate_tiers = ["Red", "Orange", "Yellow"]\n'
        )
        workspace = load_workspace(fresh.root)
        with open_stores(workspace) as (store, engine):
            first = run_nightly(workspace, store, engine, SECOND)
            posted = list(slack.keys())
            changes = tier_changes_of_run(engine, first.run_id)
            second = run_nightly(workspace, store, engine, SECOND)
    finally:
        slack.release.set()
        slack.close()

    urgent = [change for change in changes if change["new_tier"] in ("Red", "Orange", "Yellow")]
    assert urgent, [change["new_tier"] for change in changes]
    # One message per change into an immediate tier, one digest for the rest; the re-run posts nothing.
    digests = 1 if len(urgent) < len(changes) else 0
    assert len(posted) == len(set(posted)) == len(urgent) + digests
    assert slack.keys() == posted
    assert first.summary()["notifications"]["destinations"] == ["slack"]
    assert first.summary()["notifications"]["delivery"]["sent"] == len(posted)
    assert second.summary()["notifications"]["delivery"]["sent"] == 0
    texts = " ".join(message["text"] for message in slack.messages)
    for change in urgent:
        assert change["account_id"] in texts or (change["name"] or "") in texts


@pytest.mark.parametrize("fresh", ["sqlite"], indirect=True)
def test_run_crm_file_lists_changes(fresh):
    import csv

    config = fresh.root / "account-health.toml"
    config.write_text(config.read_text() + "\n[notify.crm_file]\nenabled = true\n")
    workspace = load_workspace(fresh.root)
    with open_stores(workspace) as (store, engine):
        result = run_nightly(workspace, store, engine, SECOND)
        changes = tier_changes_of_run(engine, result.run_id)

    summary = result.summary()
    assert summary["days_past_data"] == 0
    with open(summary["notifications"]["delivery"]["crm_file"], encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))[1:]
    assert sorted(row[0] for row in rows) == sorted(change["account_id"] for change in changes)
