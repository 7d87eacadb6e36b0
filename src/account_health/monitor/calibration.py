"""Calibration over time, and observed churn per tier against the business rules of thumb.

Calibration checks whether the model tells the truth: for each past scoring date whose horizon has
closed, each tier's observed churn (Wilson interval, corrected for five tiers) should contain the
tier's mean predicted probability. The business bands are a different question, answered beside it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from statsmodels.stats.proportion import proportion_confint

from account_health.config import BusinessBands, MonitorSettings, TierSettings
from account_health.monitor.history import latest_date_per_month
from account_health.store.analytical import AnalyticalStore
from account_health.training.evaluate import TIER_NAMES, Interval, calibration_fit, tier_calibration

TIER_KEYS = dict(zip(TIER_NAMES, ("red", "orange", "yellow", "green", "dark_green"), strict=True))
# Returns the artifact of a model version; the monitor reads them from the model registry.
ArtifactLookup = Callable[[str], dict[str, Any]]
# Adds a `label` column (churned within the horizon) to rows of account_id and as_of.
Labeller = Callable[[pd.DataFrame, int], pd.DataFrame]


@dataclass
class CalibrationPeriod:
    """Calibration of one calendar month, measured on its latest scoring date whose horizon has closed.

    One date per month keeps each account once, so the Wilson intervals count independent accounts.
    Tiers here are the raw tiers of the model's cut-offs, which is what calibration is about.
    """

    period: str
    scoring_date: datetime
    model_version: str
    horizon_days: int
    accounts: int
    churned: int
    mean_predicted: float
    observed: float
    tiers: list[dict[str, Any]]
    slope: Interval
    intercept: Interval
    roc_auc: float | None
    inconsistent_tiers: list[str] = field(default_factory=list)
    slope_out_of_bounds: bool = False

    @property
    def within_bounds(self) -> bool:
        return not self.inconsistent_tiers and not self.slope_out_of_bounds


@dataclass
class BusinessTier:
    """Observed churn of one declared tier over the business period, against its rule-of-thumb band."""

    tier: str
    rows: int
    churned: int
    observed: float
    observed_low: float
    observed_high: float
    band: tuple[float, float]
    in_band: bool | None


@dataclass
class BusinessExpectations:
    """The business check: pooled closed periods, observed churn per declared tier, and why it can conflict."""

    first_date: datetime | None
    last_date: datetime | None
    scoring_dates: int
    tiers: list[BusinessTier]
    conflicts: list[str]
    alerts_enabled: bool


def calibration_periods(
    history: pd.DataFrame,
    as_of: datetime,
    artifacts: ArtifactLookup,
    labeller: Labeller,
    settings: MonitorSettings,
) -> list[tuple[CalibrationPeriod, pd.DataFrame]]:
    """Calibrate each month that has a scoring date whose horizon closed by `as_of`.

    Returns each month's CalibrationPeriod with the labelled scores it was measured on.
    """
    closed = closed_scoring_dates(history, as_of, artifacts)
    periods: list[tuple[CalibrationPeriod, pd.DataFrame]] = []
    for month, date in latest_date_per_month(closed).items():
        rows = _rows_of_latest_model(history[history["as_of"] == date])
        model_version = str(rows["model_version"].iat[0])
        artifact = artifacts(model_version)
        labelled = labeller(rows, int(artifact["horizon_days"]))
        periods.append((_period(month, date, labelled, artifact, settings), labelled))
    return periods


def closed_scoring_dates(
    history: pd.DataFrame, as_of: datetime, artifacts: ArtifactLookup
) -> list[pd.Timestamp]:
    """Return the scoring dates whose label window [date, date + horizon) ended by `as_of`."""
    closed = []
    for date, rows in history.groupby("as_of", sort=True):
        horizon = int(artifacts(str(_rows_of_latest_model(rows)["model_version"].iat[0]))["horizon_days"])
        if pd.Timestamp(date) + timedelta(days=horizon) <= pd.Timestamp(as_of):
            closed.append(pd.Timestamp(date))
    return closed


def _rows_of_latest_model(rows: pd.DataFrame) -> pd.DataFrame:
    """Keep the rows of the model that wrote the date's latest run, so one set of cut-offs applies."""
    latest = rows.loc[rows["run_id"].idxmax(), "model_version"]
    return rows[rows["model_version"] == latest]


def _period(
    month: str, date: pd.Timestamp, rows: pd.DataFrame, artifact: dict[str, Any], settings: MonitorSettings
) -> CalibrationPeriod:
    labels = rows["label"].to_numpy().astype("int64")
    probability = rows["probability"].to_numpy().astype("float64")
    tiers = tier_calibration(labels, probability, TierSettings(**artifact["tiers"]))
    fit = calibration_fit(labels, probability)
    slope = fit["slope"]
    low_bound, high_bound = settings.calibration_slope_bounds
    # A slope counts as off only when it is both material (outside the bounds) and significant (its
    # interval excludes 1), so sampling noise in a small month does not call for a retrain.
    slope_off = bool(
        np.isfinite(slope.value)
        and not low_bound <= slope.value <= high_bound
        and not slope.low <= 1.0 <= slope.high
    )
    return CalibrationPeriod(
        period=month,
        scoring_date=date.to_pydatetime(),
        model_version=str(artifact["model_version"]),
        horizon_days=int(artifact["horizon_days"]),
        accounts=len(rows),
        churned=int(labels.sum()),
        mean_predicted=float(probability.mean()),
        observed=float(labels.mean()),
        tiers=tiers,
        slope=slope,
        intercept=fit["intercept"],
        roc_auc=float(roc_auc_score(labels, probability)) if len(np.unique(labels)) == 2 else None,
        inconsistent_tiers=[str(entry["tier"]) for entry in tiers if not entry["consistent"]],
        slope_out_of_bounds=slope_off,
    )


def business_expectations(
    periods: list[tuple[CalibrationPeriod, pd.DataFrame]],
    as_of: datetime,
    settings: MonitorSettings,
    cutoffs: TierSettings | None,
) -> BusinessExpectations:
    """Pool the closed periods of the last `business_period_days` and compare each declared tier with its band."""
    start = as_of - timedelta(days=settings.business_period_days)
    used = [period for period, _rows in periods if period.scoring_date >= start]
    frames = [rows for period, rows in periods if period.scoring_date >= start]
    pooled = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["tier", "label"])
    tiers = [_business_tier(tier, pooled, settings.business_bands) for tier in TIER_NAMES]
    return BusinessExpectations(
        first_date=min((period.scoring_date for period in used), default=None),
        last_date=max((period.scoring_date for period in used), default=None),
        scoring_dates=len(used),
        tiers=tiers,
        conflicts=band_conflicts(cutoffs, settings.business_bands) if cutoffs is not None else [],
        alerts_enabled=settings.business_alerts,
    )


def _business_tier(tier: str, pooled: pd.DataFrame, bands: BusinessBands) -> BusinessTier:
    rows = pooled[pooled["tier"] == tier]
    count = len(rows)
    churned = int(rows["label"].sum()) if count else 0
    low, high = getattr(bands, TIER_KEYS[tier])
    if count:
        observed = churned / count
        interval_low, interval_high = proportion_confint(churned, count, alpha=0.05, method="wilson")
    else:
        observed = interval_low = interval_high = float("nan")
    return BusinessTier(
        tier=tier,
        rows=count,
        churned=churned,
        observed=observed,
        observed_low=float(interval_low),
        observed_high=float(interval_high),
        band=(low, high),
        in_band=bool(low <= observed <= high) if count else None,
    )


def band_conflicts(cutoffs: TierSettings, bands: BusinessBands) -> list[str]:
    """Name the tiers whose band a calibrated model with these cut-offs cannot meet.

    A calibrated tier churns at the mean of its predicted probabilities, which lie between its
    cut-offs. A band entirely below (or above) that range can therefore only be met by a model that
    is not calibrated.
    """
    ranges = {
        "Red": (cutoffs.red, 1.0),
        "Orange": (cutoffs.orange, cutoffs.red),
        "Yellow": (cutoffs.yellow, cutoffs.orange),
        "Green": (cutoffs.green, cutoffs.yellow),
        "Dark-Green": (0.0, cutoffs.green),
    }
    conflicts = []
    for tier, (lower, upper) in ranges.items():
        band_low, band_high = getattr(bands, TIER_KEYS[tier])
        if lower >= band_high:
            conflicts.append(
                f"a calibrated {tier} tier churns at {lower:.0%} or more (its probabilities start at the "
                f"cut-off {lower:g}), above its band of {band_low:.0%} to {band_high:.0%}"
            )
        elif upper <= band_low:
            conflicts.append(
                f"a calibrated {tier} tier churns below {upper:.0%} (its probabilities end at the cut-off "
                f"{upper:g}), below its band of {band_low:.0%} to {band_high:.0%}"
            )
    return conflicts


def labeller_for(store: AnalyticalStore) -> Labeller:
    """Label scores with churn within the horizon, from the churn events in the analytical store."""
    from account_health.training.dataset import label_rows

    def label(rows: pd.DataFrame, horizon_days: int) -> pd.DataFrame:
        labelled = label_rows(store, rows[["account_id", "as_of"]], horizon_days)
        return rows.merge(labelled[["account_id", "as_of", "label"]], on=["account_id", "as_of"], how="left")

    return label
