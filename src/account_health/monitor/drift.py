"""Drift: each signal's distribution against the training data (PSI), and each weight against a refit.

PSI is a dozen lines here rather than a dependency: the drift packages on PyPI (evidently, nannyml)
are whole monitoring frameworks, far more than one formula needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm
from sklearn.linear_model import LogisticRegression

from account_health.training.intervals import Z_95, coefficient_intervals
from account_health.training.model import ChurnModel

# A two-valued column needs this many rows at each value, churned and retained among them, to be refitted.
MIN_GROUP_ROWS = 10
# Bin shares are floored here before the logarithm, so an empty bin adds a large but finite term.
PSI_FLOOR = 1e-4


@dataclass
class FeatureDrift:
    """Population stability index of one model feature: latest scores against the training snapshots."""

    feature: str
    signal: str
    psi: float
    training_rows: int
    current_rows: int
    training_missing: float
    current_missing: float
    level: str  # "stable", "moved" (at or above the warning level) or "drifted" (at or above the alert level)


@dataclass
class WeightDrift:
    """One model column: the model's coefficient and interval against a refit on the last closed horizon.

    Both are standardised coefficients on the model's own scale (the refit reuses the model's
    imputation values and scaler), so they compare directly. `z` is the difference over its standard
    error, taking both intervals' widths into account.
    """

    column: str
    signal: str
    model: float
    model_low: float | None
    model_high: float | None
    refit: float | None
    refit_low: float | None
    refit_high: float | None
    z: float | None
    outside_model_interval: bool
    changed: bool
    note: str = ""


@dataclass
class WeightRefit:
    """The refit behind the weight comparison: its snapshots, rows and the significance threshold used."""

    snapshots: list[datetime]
    rows: int
    churned: int
    regularisation_c: float | None
    critical_z: float | None
    columns: list[WeightDrift]
    note: str = ""
    # Whether the weights were tested for a change. When they were not, `note` gives the reason.
    tested: bool = True

    def changed_signals(self) -> list[str]:
        return list(dict.fromkeys(entry.signal for entry in self.columns if entry.changed))


def population_stability_index(expected: np.ndarray, actual: np.ndarray, bins: int = 10) -> float:
    """Return the PSI of `actual` against `expected`: sum of (a - e) * ln(a / e) over bins.

    Bin edges are the quantiles of `expected` at 1/bins, 2/bins, ...; repeated edges (a discrete or
    binary feature) merge. Missing values (NaN) form a bin of their own. Shares are floored at PSI_FLOOR.
    """
    expected = np.asarray(expected, dtype="float64")
    actual = np.asarray(actual, dtype="float64")
    if len(expected) == 0 or len(actual) == 0:
        return float("nan")
    known = expected[~np.isnan(expected)]
    edges = np.unique(np.quantile(known, np.arange(1, bins) / bins)) if len(known) else np.array([])
    expected_shares = _bin_shares(expected, edges)
    actual_shares = _bin_shares(actual, edges)
    return float(np.sum((actual_shares - expected_shares) * np.log(actual_shares / expected_shares)))


def _bin_shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Shares of values in (-inf, e1], (e1, e2], ..., (ek, inf) and the missing bin, floored at PSI_FLOOR."""
    missing = np.isnan(values)
    index = np.searchsorted(edges, values[~missing], side="left")
    counts = np.bincount(index, minlength=len(edges) + 1).astype("float64")
    counts = np.append(counts, missing.sum())
    return np.maximum(counts / len(values), PSI_FLOOR)


def feature_drift(
    training: pd.DataFrame,
    current: pd.DataFrame,
    features: dict[str, str],
    bins: int,
    warning: float,
    alert: float,
) -> list[FeatureDrift]:
    """Return the PSI of each feature (mapped to its signal) between two frames of feature values."""
    result = []
    for feature, signal in features.items():
        expected = training[feature].to_numpy(dtype="float64")
        actual = current[feature].to_numpy(dtype="float64")
        psi = population_stability_index(expected, actual, bins)
        level = "stable"
        if np.isfinite(psi) and psi >= alert:
            level = "drifted"
        elif np.isfinite(psi) and psi >= warning:
            level = "moved"
        result.append(
            FeatureDrift(
                feature=feature,
                signal=signal,
                psi=psi,
                training_rows=len(expected),
                current_rows=len(actual),
                training_missing=float(np.isnan(expected).mean()) if len(expected) else float("nan"),
                current_missing=float(np.isnan(actual).mean()) if len(actual) else float("nan"),
                level=level,
            )
        )
    return result


def refit_snapshots(as_of: datetime, horizon_days: int, every_days: int) -> list[datetime]:
    """Return the snapshots of the last closed horizon: as_of - horizon and every `every_days` before it, within one horizon."""
    newest = as_of - timedelta(days=horizon_days)
    snapshots = []
    current = newest
    while current > newest - timedelta(days=horizon_days):
        snapshots.append(current)
        current -= timedelta(days=every_days)
    return sorted(snapshots)


def weight_refit(
    artifact: dict[str, Any],
    frame: pd.DataFrame,
    snapshots: list[datetime],
    alpha: float,
    min_events_per_column: int = 10,
) -> WeightRefit:
    """Refit the model's coefficients on `frame` (labelled rows of the last closed horizon) and compare.

    The refit keeps the model's columns, imputation values and scaler, and scales C by the ratio of
    the model's training rows to the refit's rows, so each row carries the same L2 penalty as in
    training. A column changed when the refit lies outside the model's 95 % interval and the
    difference is significant at `alpha` split over the compared columns (Bonferroni).

    With fewer than `min_events_per_column` churn events per compared column, the refit is shown but
    no weight counts as changed: with so few events the refit's interval is too narrow to trust.
    """
    model = ChurnModel.from_dict(artifact["model"])
    labels = frame["label"].to_numpy().astype("int64") if len(frame) else np.array([], dtype="int64")
    if len(np.unique(labels)) < 2:
        reason = (
            "the last closed horizon has no churn" if len(labels) else "the last closed horizon has no rows"
        )
        return WeightRefit(
            snapshots,
            len(labels),
            int(labels.sum()),
            None,
            None,
            [],
            note=f"no refit: {reason}",
            tested=False,
        )

    refit = _refit(model, frame, labels, int(artifact.get("rows") or len(frame)))
    intervals, caveats = coefficient_intervals(refit, frame)
    standardised = refit.standardised(frame)
    model_intervals = artifact.get("coefficient_intervals") or {}
    problems = [_refit_problem(standardised[:, index], labels) for index in range(len(refit.specs_))]
    compared = [
        spec.name
        for spec, problem in zip(refit.specs_, problems, strict=True)
        if problem is None and _standard_error(model_intervals.get(spec.name)) is not None
    ]
    critical = float(norm.ppf(1 - alpha / (2 * len(compared)))) if compared else None
    columns = [
        _compare(
            spec.name,
            spec.signal,
            float(model_coef),
            intervals[spec.name],
            model_intervals.get(spec.name),
            problem,
            critical,
        )
        for spec, model_coef, problem in zip(model.specs_, model.coef_, problems, strict=True)
    ]
    note = "; ".join(caveats)
    tested = True
    churned = int(labels.sum())
    if compared and churned < min_events_per_column * len(compared):
        tested = False
        for entry in columns:
            entry.changed = False
        note = (
            f"not tested: {churned} churn events in the last closed horizon for {len(compared)} compared columns, "
            f"fewer than the {min_events_per_column} per column that [monitor] weight_min_events_per_column asks for"
        )
    if not model_intervals:
        tested = False
        note = "the model file has no coefficient intervals (written by an earlier release), so no change is tested"
    return WeightRefit(snapshots, len(labels), int(labels.sum()), refit.C, critical, columns, note, tested)


def _refit(model: ChurnModel, frame: pd.DataFrame, labels: np.ndarray, model_rows: int) -> ChurnModel:
    """Return a copy of `model` with its coefficients refitted on `frame`, on the model's own scale."""
    refit = ChurnModel.from_dict({**model.to_dict(), "C": model.C * model_rows / len(frame)})
    regression = LogisticRegression(C=refit.C, l1_ratio=0.0, solver="lbfgs", max_iter=5000)
    regression.fit(refit.standardised(frame), labels)
    refit.coef_ = regression.coef_[0].astype("float64")
    refit.intercept_ = float(regression.intercept_[0])
    return refit


def _refit_problem(column: np.ndarray, labels: np.ndarray) -> str | None:
    """Return why a column cannot be refitted on these rows, or None when it can."""
    if not np.ptp(column) > 0:
        return "no variation in the last closed horizon, so no refit weight"
    values = np.unique(column)
    if len(values) == 2:
        # A two-valued column (a missing-value indicator, champion in seat) whose rarer value has only
        # churned or only retained rows separates them, so its weight would run off to infinity.
        for value in values:
            group = labels[column == value]
            if len(group) < MIN_GROUP_ROWS or group.min() == group.max():
                return (
                    f"too few rows at one of its two values ({len(group)}, {int(group.sum())} churned) "
                    "to refit its weight"
                )
    return None


def _standard_error(entry: dict[str, Any] | None) -> float | None:
    if not entry or entry.get("low") is None or entry.get("high") is None:
        return None
    return (float(entry["high"]) - float(entry["low"])) / (2 * Z_95)


def _compare(
    column: str,
    signal: str,
    model_value: float,
    refit_entry: dict[str, Any],
    model_entry: dict[str, Any] | None,
    problem: str | None,
    critical: float | None,
) -> WeightDrift:
    model_low = model_entry.get("low") if model_entry else None
    model_high = model_entry.get("high") if model_entry else None
    drift = WeightDrift(
        column=column,
        signal=signal,
        model=model_value,
        model_low=model_low,
        model_high=model_high,
        refit=None,
        refit_low=None,
        refit_high=None,
        z=None,
        outside_model_interval=False,
        changed=False,
    )
    if problem is not None:
        drift.note = problem
        return drift

    drift.refit = float(refit_entry["value"])
    drift.refit_low = refit_entry.get("low")
    drift.refit_high = refit_entry.get("high")
    if model_low is not None and model_high is not None:
        drift.outside_model_interval = not model_low <= drift.refit <= model_high
    model_error = _standard_error(model_entry)
    refit_error = _standard_error(refit_entry)
    if model_error is not None and refit_error is not None and (model_error > 0 or refit_error > 0):
        drift.z = (drift.refit - model_value) / float(np.hypot(model_error, refit_error))
    drift.changed = bool(
        drift.outside_model_interval
        and drift.z is not None
        and critical is not None
        and abs(drift.z) > critical
    )
    return drift
