"""Tier cut-offs fitted to a company's own hold-out predictions.

The four cut-offs are chosen so that the churn observed in each tier on held-out snapshots falls in
that tier's [tiers.bands] band. The search is exhaustive over a grid of candidate cut-offs: quantiles
of the predictions, where the accounts are, plus fixed probabilities that keep the tails reachable,
plus the configured cut-offs. Among the candidate sets it prefers, in order, the smallest total miss
outside the bands and then the smallest distance from the configured cut-offs, so cut-offs that
already meet every band are kept unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np

from account_health.config import TierConfig, TierSettings
from account_health.errors import TrainingError
from account_health.training.evaluate import TIER_NAMES

# Band keys in [tiers.bands], in the order of TIER_NAMES.
BAND_KEYS = ("red", "orange", "yellow", "green", "dark_green")
# Quantile levels of the hold-out predictions tried as cut-offs. The extra top levels let a small
# Red tier be found when the model is sharp.
_QUANTILE_LEVELS = (*np.linspace(0.02, 0.98, 33), 0.99, 0.995)
# Fixed probabilities tried as cut-offs, so that a band stays reachable where few predictions lie.
_FIXED_CANDIDATES = (0.005, 0.01, 0.02, 0.03, 0.05, 0.08, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
# Candidate cut-offs are rounded to this many decimals, so the artifact stores readable numbers.
_DECIMALS = 4
# A tier with fewer hold-out rows than [tiers] fit_min_rows counts as missing its band entirely.
_EMPTY_TIER_MISS = 1.0


@dataclass
class CutoffFit:
    """The fitted cut-offs and how each tier's observed hold-out churn compares with its band."""

    tiers: TierSettings
    configured: TierSettings
    per_tier: list[dict[str, Any]]
    total_miss: float
    rows: int

    @property
    def missed(self) -> list[str]:
        """Return the tiers whose observed churn is outside their band or whose rows are too few."""
        return [entry["tier"] for entry in self.per_tier if not entry["in_band"]]

    def caveats(self) -> list[str]:
        """Return one line per tier that misses its band, naming the observed churn and the band."""
        lines = []
        for entry in self.per_tier:
            if entry["in_band"]:
                continue
            band = f"{entry['band_low']:.0%} to {entry['band_high']:.0%}"
            if not entry["enough_rows"]:
                reason = f"only {entry['rows']} hold-out rows, fewer than [tiers] fit_min_rows"
            else:
                reason = f"observed churn {entry['observed']:.1%} on {entry['rows']} hold-out rows"
            lines.append(
                f"fitted cut-offs miss the {entry['tier']} band ({band}): {reason}; no candidate cut-offs met "
                "every band, so the closest set found is used. Widen [tiers.bands] or review the cut-offs"
            )
        return lines

    def as_dict(self) -> dict[str, Any]:
        """Return the description stored in the model artifact under "tiers_fitted"."""
        return {
            "method": "grid search over hold-out predictions for observed churn within [tiers.bands]",
            "rows": self.rows,
            "configured": self.configured.cutoffs(),
            "cutoffs": self.tiers.cutoffs(),
            "all_bands_met": not self.missed,
            "missed": self.missed,
            "total_miss": self.total_miss,
            "tiers": self.per_tier,
        }


def fit_tier_cutoffs(labels: np.ndarray, probability: np.ndarray, settings: TierConfig) -> CutoffFit:
    """Fit descending cut-offs so each tier's observed churn on the hold-out falls in its band.

    Parameters
    ----------
    labels
        Hold-out labels, 1 when the account churned within the horizon.
    probability
        The evaluation model's churn probabilities for the same rows.
    settings
        The [tiers] section: the configured cut-offs (the starting point and tie-breaker), the
        bands, the hysteresis margin (every fitted tier is kept wider than it) and `fit_min_rows`.

    Returns
    -------
    CutoffFit
        The candidate set with the smallest total miss outside the bands. When no candidate set
        meets every band, `missed` names the tiers that stay outside their band.

    Raises
    ------
    TrainingError
        When the hold-out is empty, or no four candidate cut-offs can be kept apart by more than the
        hysteresis margin.
    """
    labels = np.asarray(labels, dtype="float64")
    probability = np.asarray(probability, dtype="float64")
    if len(labels) == 0:
        raise TrainingError("the hold-out has no rows, so tier cut-offs cannot be fitted; drop --fit-cutoffs")

    candidates = _candidates(probability, settings)
    sets = _descending_sets(candidates, settings.hysteresis_margin)
    if len(sets) == 0:
        raise TrainingError(
            f"no four candidate cut-offs are more than [tiers] hysteresis_margin = {settings.hysteresis_margin} "
            "apart; lower the margin, or train without --fit-cutoffs"
        )

    rows, churned = _tier_counts(sets, labels, probability)
    bands = np.array([getattr(settings.bands, key) for key in BAND_KEYS])
    misses = _misses(rows, churned, bands, settings.fit_min_rows)
    configured = np.array([settings.red, settings.orange, settings.yellow, settings.green])
    distance = np.abs(sets - configured).sum(axis=1)
    best = int(np.lexsort((distance, misses.sum(axis=1)))[0])

    red, orange, yellow, green = (float(value) for value in sets[best])
    return CutoffFit(
        tiers=TierSettings(red=red, orange=orange, yellow=yellow, green=green),
        configured=TierSettings(**settings.cutoffs()),
        per_tier=_per_tier(rows[best], churned[best], misses[best], bands, settings.fit_min_rows),
        total_miss=float(misses[best].sum()),
        rows=len(labels),
    )


def _candidates(probability: np.ndarray, settings: TierConfig) -> np.ndarray:
    """Return sorted candidate cut-offs, each further than the margin from 0 and from 1."""
    values = np.concatenate(
        [
            np.quantile(probability, _QUANTILE_LEVELS),
            _FIXED_CANDIDATES,
            list(settings.cutoffs().values()),
        ]
    )
    values = np.unique(np.round(values, _DECIMALS))
    margin = settings.hysteresis_margin
    return values[(values > margin) & (values < 1.0 - margin)]


def _descending_sets(candidates: np.ndarray, margin: float) -> np.ndarray:
    """Return every (red, orange, yellow, green) of candidates whose neighbours are more than `margin` apart."""
    ascending = np.array(list(combinations(candidates, 4)), dtype="float64").reshape(-1, 4)
    descending = ascending[:, ::-1]
    gaps = -np.diff(descending, axis=1)
    return descending[(gaps > margin).all(axis=1)]


def _tier_counts(
    sets: np.ndarray, labels: np.ndarray, probability: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Return (sets, 5) hold-out rows and churned rows per tier, Red first; lower bounds are inclusive."""
    order = np.argsort(probability, kind="stable")
    sorted_probability = probability[order]
    churned_before = np.concatenate([[0.0], np.cumsum(labels[order])])
    # Rows below each cut-off, then padded with 0 (below nothing) and n (below 1 + anything).
    below = np.searchsorted(sorted_probability, sets, side="left")
    edges = np.column_stack([np.full(len(sets), len(labels)), below, np.zeros(len(sets), dtype="int64")])
    rows = edges[:, :-1] - edges[:, 1:]
    churned = churned_before[edges[:, :-1]] - churned_before[edges[:, 1:]]
    return rows.astype("int64"), churned


def _misses(rows: np.ndarray, churned: np.ndarray, bands: np.ndarray, min_rows: int) -> np.ndarray:
    """Return how far each tier's observed churn lies outside its band; a tier too small misses by 1."""
    with np.errstate(invalid="ignore", divide="ignore"):
        observed = np.where(rows > 0, churned / np.maximum(rows, 1), 0.0)
    outside = np.maximum(0.0, np.maximum(bands[:, 0] - observed, observed - bands[:, 1]))
    return np.where(rows >= min_rows, outside, _EMPTY_TIER_MISS)


def _per_tier(
    rows: np.ndarray, churned: np.ndarray, misses: np.ndarray, bands: np.ndarray, min_rows: int
) -> list[dict[str, Any]]:
    result = []
    for index, name in enumerate(TIER_NAMES):
        count = int(rows[index])
        result.append(
            {
                "tier": name,
                "rows": count,
                "churned": int(churned[index]),
                "observed": float(churned[index] / count) if count else None,
                "band_low": float(bands[index, 0]),
                "band_high": float(bands[index, 1]),
                "enough_rows": count >= min_rows,
                "in_band": bool(misses[index] == 0.0),
            }
        )
    return result


__all__ = ["BAND_KEYS", "CutoffFit", "fit_tier_cutoffs"]
