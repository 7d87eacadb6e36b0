from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import expit

from account_health.scoring.points import log_odds_of, probability_points


def test_single_signal_points_are_the_whole_move():
    intercept = -2.0
    points = probability_points(intercept + 0.8, {"support": 0.8})
    assert points["support"] == pytest.approx(100 * (expit(-1.2) - expit(-2.0)))


def test_points_have_the_sign_of_the_log_odds():
    rng = np.random.default_rng(3)
    for _ in range(200):
        contributions = dict(zip(["usage", "support", "sentiment"], rng.normal(0, 2, 3), strict=True))
        log_odds = rng.normal(-1.5, 1.5) + sum(contributions.values())
        points = probability_points(log_odds, contributions)
        for signal, contribution in contributions.items():
            assert np.sign(points[signal]) == np.sign(contribution), (signal, contribution, points[signal])
            assert -100 < points[signal] < 100


def test_zero_contribution_gives_zero_points():
    assert probability_points(0.3, {"champion": 0.0}) == {"champion": 0.0}


def test_small_contributions_add_up():
    intercept = -1.0
    contributions = {"usage": 0.01, "support": 0.02, "sentiment": -0.005}
    log_odds = intercept + sum(contributions.values())
    total = 100 * (expit(log_odds) - expit(intercept))
    points = probability_points(log_odds, contributions)
    assert sum(points.values()) == pytest.approx(total, rel=0.01)


def test_large_same_sign_contributions_overlap():
    # Near the steep middle of the curve each signal alone explains much of the move, so the points
    # add up to more than the move itself. The explain footnote states that they do not add up exactly.
    intercept = -3.0
    contributions = {"usage": 1.5, "support": 1.5}
    log_odds = intercept + 3.0
    points = probability_points(log_odds, contributions)
    total = 100 * (expit(log_odds) - expit(intercept))
    assert all(0 < value < total for value in points.values())
    assert sum(points.values()) != pytest.approx(total, rel=0.01)


def test_log_odds_of_inverts_sigmoid():
    assert expit(log_odds_of(0.3)) == pytest.approx(0.3)
    assert math.isfinite(log_odds_of(0.0))
    assert math.isfinite(log_odds_of(1.0))
