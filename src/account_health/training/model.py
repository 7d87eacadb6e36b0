"""The churn model: imputation with missing-value indicators, standardisation, L2 logistic regression.

The fitted state is a handful of numbers, saved to and loaded from JSON, so a model file can never
carry code.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from account_health.signals.registry import SIGNALS, signal_of

MISSING_SUFFIX = "_missing"


@dataclass(frozen=True)
class FeatureSpec:
    """One model input column: a signal feature or a signal's missing-value indicator."""

    name: str
    signal: str
    kind: str  # "value" or "missing_indicator"
    source: str  # the signal feature this column reads
    impute: float = 0.0


class ChurnModel:
    """Logistic regression on standardised signal features, following the scikit-learn estimator contract.

    Parameters
    ----------
    features
        Signal feature names to use (a subset of ``account_health.signals.FEATURES``).
    C
        Inverse L2 regularisation strength of the logistic regression.
    class_weight
        ``"none"`` (the default) or ``"balanced"``. Balanced weights shift the fitted log-odds by
        log(w1 / w0); the intercept is corrected by that amount after the fit, so probabilities stay
        calibrated.
    """

    def __init__(self, features: list[str], C: float = 1.0, class_weight: str = "none") -> None:
        self.features = features
        self.C = C
        self.class_weight = class_weight

    def fit(self, frame: pd.DataFrame, labels: np.ndarray) -> ChurnModel:
        """Fit imputation values, indicator columns, the scaler and the coefficients."""
        specs: list[FeatureSpec] = []
        for feature in self.features:
            values = frame[feature].astype("float64")
            impute = float(values.mean()) if values.notna().any() else 0.0
            specs.append(FeatureSpec(feature, signal_of(feature).name, "value", feature, impute))
        for signal in SIGNALS:
            signal_features = [feature for feature in signal.features if feature in self.features]
            if signal_features and frame[signal_features[0]].isna().any():
                name = signal.name + MISSING_SUFFIX
                specs.append(FeatureSpec(name, signal.name, "missing_indicator", signal_features[0]))
        self.specs_ = specs

        design = self._design(frame)
        self.mean_ = design.mean(axis=0)
        scale = design.std(axis=0)
        self.scale_ = np.where(scale > 0, scale, 1.0)
        standardised = (design - self.mean_) / self.scale_
        weights = None if self.class_weight == "none" else "balanced"
        regression = LogisticRegression(
            C=self.C, l1_ratio=0.0, solver="lbfgs", max_iter=5000, class_weight=weights
        )
        regression.fit(standardised, labels)
        self.coef_ = regression.coef_[0].astype("float64")
        self.intercept_ = float(regression.intercept_[0]) - self._weight_shift(labels)
        return self

    def _weight_shift(self, labels: np.ndarray) -> float:
        """Return log(w1 / w0), the log-odds that balanced class weights add to every prediction."""
        if self.class_weight == "none":
            return 0.0
        positives = float(np.sum(labels == 1))
        negatives = float(np.sum(labels == 0))
        # Balanced weights are n / (2 n_class), so w1 / w0 = negatives / positives.
        return float(np.log(negatives / positives))

    def _design(self, frame: pd.DataFrame) -> np.ndarray:
        columns = []
        for spec in self.specs_:
            values = frame[spec.source].astype("float64").to_numpy()
            if spec.kind == "missing_indicator":
                columns.append(np.isnan(values).astype("float64"))
            else:
                columns.append(np.where(np.isnan(values), spec.impute, values))
        return np.column_stack(columns) if columns else np.zeros((len(frame), 0))

    def standardised(self, frame: pd.DataFrame) -> np.ndarray:
        return (self._design(frame) - self.mean_) / self.scale_

    def decision_function(self, frame: pd.DataFrame) -> np.ndarray:
        """Log-odds of churn within the horizon."""
        return self.standardised(frame) @ self.coef_ + self.intercept_

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Churn probability within the horizon, one value per row."""
        return 1.0 / (1.0 + np.exp(-self.decision_function(frame)))

    def contributions(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Compute each signal's contribution to the log-odds, relative to an average training account.

        A contribution is the sum over the signal's columns of coefficient x standardised value, so
        the contributions plus the intercept add up to the log-odds.
        """
        terms = self.standardised(frame) * self.coef_
        by_signal = {}
        for signal in self.signals_used:
            mask = np.array([spec.signal == signal for spec in self.specs_])
            by_signal[signal] = terms[:, mask].sum(axis=1)
        return pd.DataFrame(by_signal, index=frame.index)

    @property
    def signals_used(self) -> list[str]:
        seen: list[str] = []
        for spec in self.specs_:
            if spec.signal not in seen:
                seen.append(spec.signal)
        return seen

    def weight_shares(self) -> dict[str, float]:
        """Return each signal's share of the total absolute standardised weight, summed over its columns."""
        absolute = np.abs(self.coef_)
        total = float(absolute.sum()) or 1.0
        shares = {}
        for signal in self.signals_used:
            mask = np.array([spec.signal == signal for spec in self.specs_])
            shares[signal] = float(absolute[mask].sum()) / total
        return shares

    def to_dict(self) -> dict[str, object]:
        return {
            "C": self.C,
            "class_weight": self.class_weight,
            "intercept": self.intercept_,
            "features": [
                {
                    "name": spec.name,
                    "signal": spec.signal,
                    "kind": spec.kind,
                    "source": spec.source,
                    "impute": spec.impute,
                    "mean": float(mean),
                    "scale": float(scale),
                    "coefficient": float(coef),
                }
                for spec, mean, scale, coef in zip(
                    self.specs_, self.mean_, self.scale_, self.coef_, strict=True
                )
            ],
        }

    @classmethod
    def from_dict(cls, data: dict) -> ChurnModel:  # type: ignore[type-arg]
        features = data["features"]
        model = cls(
            [f["source"] for f in features if f["kind"] == "value"],
            C=float(data["C"]),
            class_weight=str(data.get("class_weight", "none")),
        )
        model.specs_ = [
            FeatureSpec(f["name"], f["signal"], f["kind"], f["source"], float(f["impute"])) for f in features
        ]
        model.mean_ = np.array([float(f["mean"]) for f in features])
        model.scale_ = np.array([float(f["scale"]) for f in features])
        model.coef_ = np.array([float(f["coefficient"]) for f in features])
        model.intercept_ = float(data["intercept"])
        return model
