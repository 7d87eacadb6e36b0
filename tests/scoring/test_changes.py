from __future__ import annotations

import json
from datetime import datetime

import pandas as pd
import pytest

from account_health.scoring.changes import stored_points, tier_changes

AS_OF = datetime(2025, 12, 1)
BEFORE = datetime(2025, 11, 1)


def _scores(*rows):
    return pd.DataFrame(
        [
            {"account_id": account, "tier": tier, "probability": probability, "probability_points": points}
            for account, tier, probability, points in rows
        ]
    )


def _previous(tier, probability, points):
    return {
        "tier": tier,
        "probability": probability,
        "as_of": BEFORE,
        "probability_points": json.dumps(points),
        "contributions": "{}",
    }


def test_first_scored_date_declares_no_changes():
    scores = _scores(("a", "Red", 0.7, {"usage": 10.0}))
    assert tier_changes(scores, {}, AS_OF, 1, "m1", True, {}) == []


def test_riskier_tier_names_the_signals_that_rose_most():
    scores = _scores(
        ("a", "Red", 0.7, {"usage": 12.0, "support": 3.0, "sentiment": 9.0}),
        ("b", "Green", 0.1, {"usage": 1.0}),
    )
    previous = {
        "a": _previous("Orange", 0.45, {"usage": 2.0, "support": 4.0, "sentiment": 8.0}),
        "b": _previous("Green", 0.1, {"usage": 1.0}),
    }
    [change] = tier_changes(scores, previous, AS_OF, 7, "m1", False, {})
    assert change["account_id"] == "a"
    assert (change["old_tier"], change["new_tier"]) == ("Orange", "Red")
    assert change["previous_probability"] == 0.45
    assert change["previous_as_of"] == BEFORE
    assert (change["top_signal_1"], change["top_signal_1_points"]) == ("usage", 10.0)
    assert (change["top_signal_2"], change["top_signal_2_points"]) == ("sentiment", 1.0)
    assert change["validated"] is False
    assert change["run_id"] == 7


def test_safer_tier_names_the_signals_that_fell_most():
    scores = _scores(("a", "Yellow", 0.3, {"usage": -5.0, "support": 1.0, "sentiment": 2.0}))
    previous = {"a": _previous("Orange", 0.45, {"usage": 1.0, "support": 1.0, "sentiment": 4.0})}
    [change] = tier_changes(scores, previous, AS_OF, 1, "m1", True, {})
    assert change["top_signal_1"] == "usage"
    assert change["top_signal_1_points"] == -6.0
    assert change["top_signal_2"] == "sentiment"


def test_new_account_changes_from_no_tier():
    scores = _scores(("new", "Orange", 0.5, {"usage": 3.0, "support": 5.0}))
    previous = {"old": _previous("Green", 0.1, {})}
    [change] = tier_changes(scores, previous, AS_OF, 1, "m1", True, {})
    assert change["old_tier"] is None
    assert change["previous_probability"] is None
    assert change["top_signal_1"] == "support"
    assert json.loads(change["top_signals"])[0]["text"]


def test_points_are_derived_for_scores_stored_without_them():
    row = {"probability": 0.5, "probability_points": None, "contributions": json.dumps({"usage": 0.0})}
    assert stored_points(row) == {"usage": pytest.approx(0.0)}
