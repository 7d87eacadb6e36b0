from __future__ import annotations

import json
from datetime import datetime

import numpy as np
import pytest

from account_health.config import TierSettings, parse_config
from account_health.errors import ConfigError
from account_health.scoring.hysteresis import declared_tiers
from account_health.scoring.score import score
from account_health.store import operational
from account_health.training.evaluate import TIER_NAMES, tier_of
from account_health.workspace import open_stores
from company import trained_company

CUTOFFS = TierSettings()  # red 0.60, orange 0.40, yellow 0.20, green 0.08
MARGIN = 0.02


def _walk(probabilities: list[float], margin: float = MARGIN) -> list[str]:
    """Declare tiers for one account scored once per probability, each score seeing the one before."""
    declared: list[str] = []
    previous: str | None = None
    for probability in probabilities:
        previous = str(declared_tiers(np.array([probability]), [previous], CUTOFFS, margin)[0])
        declared.append(previous)
    return declared


def test_tier_holds_inside_the_margin():
    sequence = [0.30, 0.41, 0.419, 0.39, 0.401]
    assert _walk(sequence) == ["Yellow"] * 5
    assert list(tier_of(np.array(sequence), CUTOFFS)) == ["Yellow", "Orange", "Orange", "Yellow", "Orange"]


def test_tier_changes_once_the_margin_is_crossed():
    sequence = [0.30, 0.42, 0.39, 0.381, 0.38, 0.05, 0.07, 0.09, 0.10]
    assert _walk(sequence) == [
        "Yellow",
        "Orange",  # 0.42 clears orange = 0.40 by the margin
        "Orange",  # 0.39 is within the margin below 0.40
        "Orange",
        "Yellow",  # 0.38 is the margin below 0.40
        "Dark-Green",  # 0.05 is more than the margin below green = 0.08
        "Dark-Green",
        "Dark-Green",  # 0.09 is above 0.08 but within the margin
        "Green",
    ]


def test_jump_stops_at_last_cleared_cutoff():
    assert _walk([0.01, 0.41]) == ["Dark-Green", "Yellow"]
    assert _walk([0.01, 0.43]) == ["Dark-Green", "Orange"]
    assert _walk([0.90, 0.07]) == ["Red", "Green"]
    assert _walk([0.90, 0.05]) == ["Red", "Dark-Green"]


def test_new_account_takes_its_raw_tier():
    probabilities = np.array([0.61, 0.41, 0.21, 0.09, 0.01])
    assert list(declared_tiers(probabilities, [None] * 5, CUTOFFS, MARGIN)) == list(TIER_NAMES)


def test_zero_margin_declares_the_raw_tier():
    rng = np.random.default_rng(7)
    probabilities = rng.uniform(0, 1, 500)
    previous = list(rng.choice(TIER_NAMES, 500))
    declared = declared_tiers(probabilities, previous, CUTOFFS, 0.0)
    assert list(declared) == list(tier_of(probabilities, CUTOFFS))


def test_declared_tier_is_raw_or_neighbour():
    rng = np.random.default_rng(11)
    probabilities = rng.uniform(0, 1, 2000)
    previous = list(rng.choice(TIER_NAMES, 2000))
    declared = declared_tiers(probabilities, previous, CUTOFFS, MARGIN)
    raw = tier_of(probabilities, CUTOFFS)
    cutoffs = np.array([CUTOFFS.red, CUTOFFS.orange, CUTOFFS.yellow, CUTOFFS.green])
    index = {name: number for number, name in enumerate(TIER_NAMES)}
    for probability, before, raw_tier, tier in zip(probabilities, previous, raw, declared, strict=True):
        step = np.sign(index[before] - index[raw_tier])
        assert index[tier] in (index[raw_tier], index[raw_tier] + step), (probability, before, raw_tier, tier)
        if np.abs(cutoffs - probability).min() >= MARGIN:
            assert tier == raw_tier, (probability, before, tier)


def test_margin_not_below_a_tier_width_is_rejected():
    with pytest.raises(ValueError, match="orange tier"):
        declared_tiers(np.array([0.5]), ["Red"], TierSettings(red=0.6, orange=0.55), 0.05)


def test_config_validates_the_margin():
    assert parse_config({}).tiers.hysteresis_margin == 0.02
    with pytest.raises(ConfigError, match="yellow tier's probability range"):
        parse_config({"tiers": {"orange": 0.25, "hysteresis_margin": 0.05}})
    # At a 0.03 cut-off the margin is capped at a quarter of it, so Dark-Green stays reachable.
    assert parse_config({"tiers": {"green": 0.03, "hysteresis_margin": 0.03}}).tiers.green == 0.03
    with pytest.raises(ConfigError, match="greater than or equal to 0"):
        parse_config({"tiers": {"hysteresis_margin": -0.01}})


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory):
    return trained_company(tmp_path_factory.mktemp("company"))[0]


def _stored(engine, as_of: datetime) -> dict[str, dict]:
    return {row["account_id"]: row for row in operational.read_scores(engine, as_of)}


def test_scoring_applies_hysteresis_to_the_previous_score(trained):
    first, second = datetime(2025, 10, 1), datetime(2025, 11, 1)
    with open_stores(trained) as (store, engine):
        score(trained, store, engine, first)
        result = score(trained, store, engine, second)
        before, after = _stored(engine, first), _stored(engine, second)
        artifact = json.loads(operational.latest_model_row(engine)["artifact"])

    cutoffs = TierSettings(**artifact["tiers"])
    accounts = sorted(after)
    probabilities = np.array([after[account]["probability"] for account in accounts])
    previous = [before[account]["tier"] if account in before else None for account in accounts]
    expected = declared_tiers(probabilities, previous, cutoffs, trained.config.tiers.hysteresis_margin)
    assert [after[account]["tier"] for account in accounts] == list(expected)
    assert [after[account]["raw_tier"] for account in accounts] == list(tier_of(probabilities, cutoffs))
    assert all(row["tier"] == row["raw_tier"] for row in before.values()), "the first date has no history"
    assert set(result.scores["tier"]) <= set(TIER_NAMES)


def test_rescoring_a_date_keeps_its_declared_tiers(trained):
    first, second = datetime(2025, 10, 1), datetime(2025, 11, 1)
    with open_stores(trained) as (store, engine):
        score(trained, store, engine, first)
        score(trained, store, engine, second)
        once = {account: row["tier"] for account, row in _stored(engine, second).items()}
        score(trained, store, engine, second)
        twice = {account: row["tier"] for account, row in _stored(engine, second).items()}
    assert once == twice


def test_held_tiers_lie_near_a_cutoff(trained):
    with open_stores(trained) as (store, engine):
        score(trained, store, engine, datetime(2025, 10, 1))
        score(trained, store, engine, datetime(2025, 11, 1))
        rows = _stored(engine, datetime(2025, 11, 1)).values()
        artifact = json.loads(operational.latest_model_row(engine)["artifact"])
    cutoffs = np.array(list(artifact["tiers"].values()))
    held = [row for row in rows if row["tier"] != row["raw_tier"]]
    assert held, "this seeded company should have accounts held near a cut-off"
    for row in held:
        assert np.abs(cutoffs - row["probability"]).min() < trained.config.tiers.hysteresis_margin, row


def test_margin_shrinks_at_low_cutoffs():
    tiers = TierSettings(red=0.6, orange=0.3, yellow=0.06, green=0.02)
    # A quarter of 0.02 is 0.005, so Green is left below 0.015 and entered again from 0.025.
    declared = declared_tiers(
        np.array([0.012, 0.016, 0.026, 0.024]), ["Green", "Green", "Dark-Green", "Dark-Green"], tiers, 0.02
    )
    assert list(declared) == ["Dark-Green", "Green", "Green", "Dark-Green"]
