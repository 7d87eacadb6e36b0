"""Contributions in percentage points of churn probability, beside the log-odds contributions."""

from __future__ import annotations

import math
from collections.abc import Mapping

from scipy.special import expit


def probability_points(log_odds: float, contributions: Mapping[str, float]) -> dict[str, float]:
    """Return how many percentage points of churn probability each signal adds.

    A signal's points are p(the account) - p(the account with that signal's columns at their
    training mean), that is 100 * (sigmoid(log_odds) - sigmoid(log_odds - contribution)). Each
    has the sign of its log-odds contribution. Because the sigmoid is not linear, the points of
    several signals do not add up exactly to the gap from an average account.
    """
    probability = float(expit(log_odds))
    return {
        signal: 100.0 * (probability - float(expit(log_odds - contribution)))
        for signal, contribution in contributions.items()
    }


def log_odds_of(probability: float) -> float:
    """Return the log-odds of a probability, clipped away from 0 and 1 so it stays finite."""
    clipped = min(max(probability, 1e-15), 1.0 - 1e-15)
    return math.log(clipped / (1.0 - clipped))


__all__ = ["log_odds_of", "probability_points"]
