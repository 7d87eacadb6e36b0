from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pandas as pd

from account_health.actions.build import rank_candidates
from account_health.config import load_workspace
from account_health.store.actions import read_account_actions
from account_health.store.operational import connect
from nightly_fixtures import FIRST


def test_rank_weighs_product_and_threads_equally():
    candidates = pd.DataFrame(
        {
            "account_id": ["A", "A", "A", "B"],
            "contact_id": ["k1", "k2", "k3", "k4"],
            "email": ["one@a", None, "three@a", "four@b"],
            "title": [None, "CTO", None, None],
            "product_events": [10.0, 0.0, 5.0, 0.0],
            "active_days": [3.0, 0.0, 2.0, 0.0],
            "emails": [0.0, 4.0, 2.0, 0.0],
            "meetings": [0.0, 0.0, 2.0, 0.0],
        }
    )
    ranked = rank_candidates(candidates, limit=2)
    assert [entry["contact_id"] for entry in ranked["A"]] == ["k3", "k1"]
    assert ranked["A"][0]["score"] == 1.5
    assert ranked["A"][1]["title"] is None
    # Nobody active: ties go to the lower contact id.
    assert [entry["contact_id"] for entry in ranked["B"]] == ["k4"]
    assert rank_candidates(candidates, limit=0) == {}


def test_departed_champion_gets_ranked_candidates(template: Path):
    workspace = load_workspace(template)
    engine = connect(workspace.operational_store_url)
    actions = {row["account_id"]: row for row in read_account_actions(engine, FIRST)}
    engine.dispose()
    exports = template / "exports"
    events = pd.read_csv(exports / "usage_events.csv", parse_dates=["occurred_at"])
    users = pd.read_csv(exports / "users.csv")
    activity = pd.read_csv(exports / "contact_activity.csv", parse_dates=["day"])
    activity = activity[(activity["day"] >= FIRST - timedelta(days=90)) & (activity["day"] < FIRST)]
    assert activity["emails"].sum() > 0

    departed = [row for row in actions.values() if row["champion_strength"] == "departed"]
    assert departed
    for row in departed:
        index = int(row["account_id"][1:])
        assert index % 7 == 0, row["account_id"]
        candidates = row["replacement_candidates"]
        # The departed champion (contact 0) is never a candidate; the two other contacts are.
        assert {entry["contact_id"] for entry in candidates} == {f"K{index}-1", f"K{index}-2"}
        for entry in candidates:
            user = users.loc[users["email"].str.lower() == entry["email"], "user_id"].item()
            window = (events["occurred_at"] >= FIRST - timedelta(days=90)) & (events["occurred_at"] < FIRST)
            expected = int(((events["user_id"] == user) & window).sum())
            assert entry["product_events"] == expected, entry
            crm = activity.loc[activity["contact_id"] == entry["contact_id"]]
            assert entry["emails"] == crm["emails"].sum()
            assert entry["meetings"] == crm["meetings"].sum()
        scores = [entry["score"] for entry in candidates]
        assert scores == sorted(scores, reverse=True)
        assert any("champion left" in step for step in row["steps"])
