"""Hysteresis on tiers: a declared tier changes only when the probability clears a cut-off by a margin.

Accounts whose probability wobbles around a cut-off would otherwise flip tier, and CSM motion, at
every scoring run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from account_health.config import RELATIVE_MARGIN_CAP, TierSettings, hysteresis_margin_problem
from account_health.training.evaluate import TIER_NAMES, tier_of

# Absorbs float rounding, so that a probability exactly `margin` beyond a cut-off (0.42 against
# 0.40 + 0.02) counts as having crossed it.
_TOLERANCE = 1e-9
_INDEX = {name: index for index, name in enumerate(TIER_NAMES)}


def declared_tiers(
    probability: np.ndarray,
    previous: Sequence[str | None],
    tiers: TierSettings,
    margin: float,
) -> np.ndarray:
    """Compute each account's declared tier from its probability and its previous declared tier.

    Parameters
    ----------
    probability
        Churn probabilities within the horizon.
    previous
        Each account's declared tier in its latest earlier score, or None for an account never scored.
    tiers
        The cut-offs; each is the inclusive lower bound of its tier.
    margin
        How far, in probability, a cut-off must be crossed before the tier changes, capped at a
        quarter of the cut-off itself. 0 turns hysteresis off.

    Returns
    -------
    numpy.ndarray
        Tier names. An account without a previous tier gets the tier of the cut-offs alone. An
        account moving towards Red reaches the riskiest tier whose lower bound it exceeds by at
        least `margin`. An account moving towards Dark-Green reaches the safest tier whose upper
        bound it is at least `margin` below. Otherwise the account keeps its previous tier.

    Raises
    ------
    ValueError
        When a tier's probability range is not wider than `margin`.
    """
    problem = hysteresis_margin_problem(tiers, margin)
    if problem is not None:
        raise ValueError(problem)
    probability = np.asarray(probability, dtype="float64")
    raw = np.array([_INDEX[name] for name in tier_of(probability, tiers)], dtype="int64")
    before = np.array([_INDEX.get(name, -1) if name else -1 for name in previous], dtype="int64")

    lower = np.array([tiers.red, tiers.orange, tiers.yellow, tiers.green, 0.0])
    upper = np.array([np.inf, tiers.red, tiers.orange, tiers.yellow, tiers.green])
    lower_margin = np.minimum(margin, lower * RELATIVE_MARGIN_CAP)
    upper_margin = np.minimum(margin, upper * RELATIVE_MARGIN_CAP)
    clears_lower = probability[:, None] >= lower[None, :] + lower_margin[None, :] - _TOLERANCE
    clears_upper = probability[:, None] <= upper[None, :] - upper_margin[None, :] + _TOLERANCE
    # The riskiest tier whose lower bound is cleared, and the safest tier whose upper bound is cleared.
    riskier = np.where(clears_lower.any(axis=1), clears_lower.argmax(axis=1), len(TIER_NAMES) - 1)
    safer = len(TIER_NAMES) - 1 - clears_upper[:, ::-1].argmax(axis=1)

    declared = np.where(
        raw < before,
        np.minimum(riskier, before),
        np.where(raw > before, np.maximum(safer, before), before),
    )
    declared = np.where(before < 0, raw, declared)
    return np.array([TIER_NAMES[index] for index in declared], dtype=object)


def previous_in_order(account_ids: Sequence[str], previous: Mapping[str, str]) -> list[str | None]:
    """Line the previous tiers up with `account_ids`, None where an account has none."""
    return [previous.get(account_id) for account_id in account_ids]


__all__ = ["declared_tiers", "previous_in_order"]
