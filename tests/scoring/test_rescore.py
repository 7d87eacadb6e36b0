"""The re-score after a champion's departure: its as-of date, the champion features and the model."""

from __future__ import annotations

import json
import math
from datetime import datetime

import pytest

from account_health.config import load_workspace
from account_health.scoring.rescore import (
    Departure,
    champion_features_after,
    provisional_as_of,
    rescore_departure,
    signal_record_frame,
)
from account_health.scoring.score import score_signals
from account_health.store import actions, operational
from nightly_fixtures import FIRST

STORED = datetime(2025, 11, 1)
AS_OF = datetime(2025, 11, 6)
CAP = 365
IN_SEAT = {"champion_in_seat": 1.0, "days_since_champion_departure": 365.0, "champions_in_seat": 1}


@pytest.mark.parametrize(
    ("received", "stored", "expected"),
    [
        (datetime(2025, 11, 5, 14, 0), STORED, datetime(2025, 11, 6)),
        # Received at midnight: a snapshot of that midnight includes only rows available before it.
        (datetime(2025, 11, 5), STORED, datetime(2025, 11, 6)),
        # A stored score dated later than the change: the provisional score must be newer.
        (datetime(2025, 11, 5, 14, 0), datetime(2025, 11, 10), datetime(2025, 11, 11)),
    ],
)
def test_provisional_as_of(received, stored, expected):
    assert provisional_as_of(received, stored) == expected


def test_only_champion_leaving_empties_the_seat():
    departed = [Departure("K1", datetime(2025, 11, 5, 12, 0))]
    features = champion_features_after(IN_SEAT, ["K1"], departed, STORED, AS_OF, CAP)
    assert features == {"champion_in_seat": 0.0, "days_since_champion_departure": 0.5, "champions_in_seat": 0}


def test_one_of_two_champions_leaving():
    signals = {**IN_SEAT, "champions_in_seat": 2}
    departed = [Departure("K2", datetime(2025, 11, 4))]
    features = champion_features_after(signals, ["K1", "K2"], departed, STORED, AS_OF, CAP)
    assert features == {"champion_in_seat": 1.0, "days_since_champion_departure": 2.0, "champions_in_seat": 1}


def test_more_recent_stored_departure_sets_the_days():
    """A champion left 10 days before the stored score; the received departure is dated earlier still."""
    signals = {**IN_SEAT, "days_since_champion_departure": 10.0}
    departed = [Departure("K1", datetime(2025, 10, 1))]
    features = champion_features_after(signals, ["K1"], departed, STORED, AS_OF, CAP)
    assert features["days_since_champion_departure"] == 15.0


def test_days_since_departure_are_capped():
    departed = [Departure("K1", datetime(2020, 1, 1))]
    features = champion_features_after(IN_SEAT, ["K1"], departed, STORED, AS_OF, CAP)
    assert features["days_since_champion_departure"] == float(CAP)


def test_stored_signals_reproduce_the_stored_score(template):
    """Scoring a stored score's signal values again gives its probability, tiers and contributions."""
    workspace = load_workspace(template)
    engine = operational.connect(workspace.operational_store_url)
    artifact = json.loads(operational.latest_model_row(engine)["artifact"])
    stored = operational.read_scores(engine, FIRST)[:25]
    engine.dispose()
    margin = workspace.config.tiers.hysteresis_margin

    for row in stored:
        frame = signal_record_frame(row["account_id"], FIRST, json.loads(row["signals"]))
        scored = score_signals(frame, artifact, margin).iloc[0]
        assert math.isclose(scored["probability"], row["probability"], rel_tol=1e-12), row["account_id"]
        assert (scored["raw_tier"], scored["tier"]) == (row["raw_tier"], row["tier"]), row["account_id"]
        for signal, value in json.loads(row["contributions"]).items():
            assert math.isclose(scored["contributions"][signal], value, rel_tol=1e-12, abs_tol=1e-15), signal


def test_rescore_replaces_only_the_champion_features(template):
    workspace = load_workspace(template)
    engine = operational.connect(workspace.operational_store_url)
    artifact = json.loads(operational.latest_model_row(engine)["artifact"])
    action = next(row for row in actions.read_account_actions(engine, FIRST) if len(row["champions"]) == 1)
    score = operational.read_scores(engine, FIRST, action["account_id"])[0]
    engine.dispose()

    left = Departure(action["champions"][0], datetime(2025, 11, 5, 12, 0))
    rescore = rescore_departure(score, artifact, action["champions"], left, [], AS_OF, 0.02, CAP)

    assert rescore.reason is None
    assert rescore.row is not None
    before, after = json.loads(score["signals"]), json.loads(rescore.row["signals"])
    assert (after["champion_in_seat"], after["champions_in_seat"]) == (0.0, 0)
    assert after["days_since_champion_departure"] == 0.5
    changed = {name for name in before if before[name] != after[name]}
    assert changed == {"champion_in_seat", "champions_in_seat", "days_since_champion_departure"}
    assert (rescore.row["as_of"], rescore.row["model_version"]) == (AS_OF, artifact["model_version"])
    assert "run_id" not in rescore.row


@pytest.mark.parametrize(
    ("champions", "left_at", "reason"),
    [
        (None, datetime(2025, 11, 5), "no list of the account's champions in seat is stored"),
        (
            ["K9"],
            datetime(2025, 11, 5),
            "contact K1 was not a champion in seat on 2025-11-01 (champions in seat: K9)",
        ),
        ([], datetime(2025, 11, 5), "(champions in seat: none)"),
        (["K1"], AS_OF, "the change date 2025-11-06 is not before the re-score's as-of date 2025-11-06"),
    ],
)
def test_departure_that_changes_no_champion_feature(champions, left_at, reason):
    score = {
        "account_id": "A1",
        "as_of": STORED,
        "signals": json.dumps(IN_SEAT),
        "tier": "Green",
        "run_id": 1,
    }
    rescore = rescore_departure(score, {}, champions, Departure("K1", left_at), [], AS_OF, 0.02, CAP)
    assert rescore.row is None
    assert reason in rescore.reason
