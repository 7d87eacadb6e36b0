"""The true churn model: a logistic function of the product's own signal values at each snapshot."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from scipy.optimize import brentq
from scipy.special import expit

FEATURES = (
    "usage_trend",
    "sentiment_score",
    "support_load",
    "champion_in_seat",
    "days_since_champion_departure",
    "integrations_active",
    "integrations_change_90d",
)
# Log-odds per standard deviation of each feature, as measured at the first snapshot.
STANDARDISED_COEFFICIENTS = {
    "usage_trend": -0.8,
    "sentiment_score": -0.6,
    "support_load": 0.5,
    "champion_in_seat": -0.7,
    "days_since_champion_departure": -0.3,
    "integrations_active": -0.4,
    "integrations_change_90d": -0.2,
}
# Values that stand in for a missing feature before the logistic function is applied: no usage change,
# a middling sentiment, no tickets, no champion in seat, a departure a full cap (365 days) ago.
FILL_VALUES = {
    "usage_trend": 0.0,
    "sentiment_score": 6.5,
    "support_load": 0.0,
    "champion_in_seat": 0.0,
    "days_since_champion_departure": 365.0,
    "integrations_active": 0.0,
    "integrations_change_90d": 0.0,
}
# Mean churn probability within the 90-day horizon at the first snapshot.
TARGET_CHURN_RATE = 0.085


@dataclass(frozen=True)
class TruthModel:
    """Intercept and raw-scale coefficients of the true model, with the scales they were derived from."""

    intercept: float
    coefficients: dict[str, float]
    means: dict[str, float]
    sds: dict[str, float]

    def probability(self, features: pd.DataFrame) -> np.ndarray:
        """True churn probability within the horizon of each row of `features` (missing values filled)."""
        return expit(
            self.intercept + _filled(features) @ np.asarray([self.coefficients[f] for f in FEATURES])
        )

    def scaled(self, feature: str, factor: float) -> TruthModel:
        """Return a copy whose coefficient of `feature` is multiplied by `factor`; the intercept stays."""
        coefficients = dict(self.coefficients)
        coefficients[feature] *= factor
        return replace(self, coefficients=coefficients)

    def as_dict(self) -> dict[str, object]:
        return {
            "intercept": self.intercept,
            "coefficients": self.coefficients,
            "standardised_coefficients": STANDARDISED_COEFFICIENTS,
            "fill_values": FILL_VALUES,
            "feature_means": self.means,
            "feature_sds": self.sds,
            "target_churn_rate": TARGET_CHURN_RATE,
        }


@dataclass(frozen=True)
class WeightChange:
    """A deliberate change of the truth: one feature's coefficient is multiplied from a snapshot on.

    Monitoring tests use it to generate a company whose churn drivers move after the model was trained.
    `from_snapshot` indexes the calendar's snapshots; None means the middle one (len // 2). The change
    draws no random numbers, so with the same seed every snapshot before it is the same as without it.
    """

    feature: str
    factor: float = 2.0
    from_snapshot: int | None = None

    def __post_init__(self) -> None:
        if self.feature not in FEATURES:
            raise ValueError(
                f"weight change names unknown feature {self.feature!r}; use one of {', '.join(FEATURES)}"
            )
        if not np.isfinite(self.factor):
            raise ValueError(f"weight change factor must be a finite number, got {self.factor!r}")

    def first_snapshot(self, snapshots: int) -> int:
        """Return the index of the first snapshot drawn with the changed coefficient."""
        first = snapshots // 2 if self.from_snapshot is None else self.from_snapshot
        if not 0 <= first < snapshots:
            raise ValueError(f"weight change from_snapshot must be in 0..{snapshots - 1}, got {first}")
        return first

    def as_dict(self, snapshots: int) -> dict[str, object]:
        return {
            "feature": self.feature,
            "factor": self.factor,
            "from_snapshot": self.first_snapshot(snapshots),
        }


def calibrate_truth(features: pd.DataFrame) -> TruthModel:
    """Fix the true model from the at-risk accounts' features at the first snapshot.

    Each standardised coefficient is divided by the feature's standard deviation there, so the model is
    linear in the raw values the engine reports. The intercept makes the mean probability at that
    snapshot equal to TARGET_CHURN_RATE. A feature without spread gets coefficient 0.
    """
    values = _filled(features)
    means = values.mean(axis=0)
    sds = values.std(axis=0)
    coefficients = np.asarray(
        [
            STANDARDISED_COEFFICIENTS[f] / sd if sd > 1e-12 else 0.0
            for f, sd in zip(FEATURES, sds, strict=True)
        ]
    )
    linear = values @ coefficients

    def excess_rate(intercept: float) -> float:
        return float(expit(intercept + linear).mean()) - TARGET_CHURN_RATE

    intercept = brentq(excess_rate, -60.0, 60.0, xtol=1e-12)
    return TruthModel(
        intercept=float(intercept),
        coefficients={f: float(c) for f, c in zip(FEATURES, coefficients, strict=True)},
        means={f: float(m) for f, m in zip(FEATURES, means, strict=True)},
        sds={f: float(s) for f, s in zip(FEATURES, sds, strict=True)},
    )


def _filled(features: pd.DataFrame) -> np.ndarray:
    columns = [features[f].astype(float).fillna(FILL_VALUES[f]).to_numpy() for f in FEATURES]
    return np.column_stack(columns)
