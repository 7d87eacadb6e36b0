"""`account-health report`: the monitoring report, built as plain data that the CLI and the API render.

It reports whether the model still tells the truth (calibration of past scores whose horizon has
closed), whether its inputs and weights have moved since training (drift), how the tiers are spread
and what ARR they hold, and whether to retrain, with the reasons.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

import pandas as pd
from sqlalchemy.engine import Engine

from account_health.asof import default_as_of
from account_health.config import MonitorSettings, TierSettings, Workspace
from account_health.errors import NoDataError
from account_health.monitor import alerts as alert_rules
from account_health.monitor.alerts import Alert, ModelAge
from account_health.monitor.arr import (
    ChurnedArrCaught,
    TierArr,
    account_arr,
    arr_by_tier,
    churned_arr_caught,
    churned_with_arr,
)
from account_health.monitor.calibration import (
    BusinessExpectations,
    CalibrationPeriod,
    business_expectations,
    calibration_periods,
    labeller_for,
)
from account_health.monitor.distribution import TierDistribution, latest_distribution, monthly_distributions
from account_health.monitor.drift import (
    FeatureDrift,
    WeightRefit,
    feature_drift,
    refit_snapshots,
    weight_refit,
)
from account_health.monitor.history import read_score_history, read_score_signals
from account_health.scoring.score import latest_artifact
from account_health.store import operational
from account_health.store.analytical import AnalyticalStore
from account_health.training.artifact import parse_artifact

log = logging.getLogger(__name__)

StepCallback = Callable[[str], None]


@dataclass
class MonitorReport:
    """Everything `account-health report` shows, as of one date, for the newest registered model."""

    as_of: datetime
    model_version: str
    validated: bool
    horizon_days: int
    cutoffs: dict[str, float]
    settings: dict[str, Any]
    latest_distribution: TierDistribution | None
    monthly_distributions: list[TierDistribution]
    calibration: list[CalibrationPeriod]
    business: BusinessExpectations
    arr_scoring_date: datetime | None
    arr: list[TierArr]
    churned_arr: list[ChurnedArrCaught]
    drift_scoring_date: datetime | None
    feature_drift: list[FeatureDrift]
    weights: WeightRefit
    model_age: ModelAge
    retrain_reasons: list[Alert]
    alerts: list[Alert]

    @property
    def retrain_recommended(self) -> bool:
        return bool(self.retrain_reasons)

    def _checks(self) -> list[tuple[str, str | None]]:
        """Return each retrain check with None when it measured something, else the reason it could not."""
        return [
            ("calibration", None if self.calibration else "no scoring date's horizon has closed yet"),
            (
                "weights",
                None if self.weights.columns and self.weights.tested else self.weights.note or "no refit",
            ),
            (
                "drift",
                None
                if self.drift_scoring_date is not None and self.feature_drift
                else "no scores to compare with the training data",
            ),
        ]

    def unchecked(self) -> list[str]:
        """Return the retrain checks that had nothing to measure yet, each with the reason."""
        return [f"{name} ({reason})" for name, reason in self._checks() if reason is not None]

    def verdict(self) -> str:
        """Return the verdict without a retrain reason: the checks within bounds, then the checks not made."""
        checked = [name for name, reason in self._checks() if reason is None] + ["model age"]
        names = checked[0] if len(checked) == 1 else f"{', '.join(checked[:-1])} and {checked[-1]}"
        text = f"{names} {'is' if len(checked) == 1 else 'are'} within bounds"
        unchecked = self.unchecked()
        if unchecked:
            text += f"; not checked yet: {'; '.join(unchecked)}"
        return text

    def to_dict(self) -> dict[str, Any]:
        """Return the report as plain data for JSON; NaN stays NaN here and becomes null when dumped."""
        data = dataclasses.asdict(self)
        data["retrain_recommended"] = self.retrain_recommended
        data["unchecked"] = self.unchecked()
        data["model_age"]["too_old"] = self.model_age.too_old
        for entry, period in zip(data["calibration"], self.calibration, strict=True):
            entry["within_bounds"] = period.within_bounds
        for entry, caught in zip(data["churned_arr"], self.churned_arr, strict=True):
            entry["caught_share"] = caught.caught_share
        data["weights"]["changed_signals"] = self.weights.changed_signals()
        return data


def build_report(
    workspace: Workspace,
    store: AnalyticalStore,
    engine: Engine,
    as_of: datetime | None = None,
    step: StepCallback | None = None,
) -> MonitorReport:
    """Build the monitoring report as of `as_of` (by default the default as-of date) from both stores."""
    announce = step or (lambda _message: None)
    settings = workspace.config.monitor
    as_of = as_of or default_as_of(store)
    artifact = latest_artifact(engine)
    history = read_score_history(engine, as_of)
    if history.empty:
        raise NoDataError(
            f"no scores on or before {as_of:%Y-%m-%d}; run `account-health score` first, or pass a later --as-of"
        )
    horizon = int(artifact["horizon_days"])

    announce("reading the tier distribution")
    latest = latest_distribution(history, settings.distribution_bands)
    monthly = monthly_distributions(history, settings.distribution_bands)

    announce("labelling past scores whose horizon has closed")
    lookup = _artifact_lookup(engine, artifact)
    periods = calibration_periods(history, as_of, lookup, labeller_for(store), settings)
    business = business_expectations(periods, as_of, settings, TierSettings(**artifact["tiers"]))

    announce("summing ARR by tier")
    latest_date = history["as_of"].max().to_pydatetime()
    arr = _arr_by_tier(workspace, store, history, latest_date)
    window_start = as_of - timedelta(days=settings.caught_window_days)
    churns = churned_with_arr(workspace, store, window_start, as_of)
    caught = churned_arr_caught(churns, history, window_start, as_of, horizon)

    announce("measuring signal drift against the training snapshots")
    drift = _feature_drift(workspace, store, engine, artifact, latest_date, settings)
    announce("refitting the weights on the last closed horizon")
    weights = _weight_refit(workspace, store, artifact, as_of, settings)
    age = _model_age(workspace, artifact, as_of)

    reasons = alert_rules.retrain_reasons(periods[-1][0] if periods else None, drift, weights, age, settings)
    report = MonitorReport(
        as_of=as_of,
        model_version=str(artifact["model_version"]),
        validated=bool(artifact["validated"]),
        horizon_days=horizon,
        cutoffs=dict(artifact["tiers"]),
        settings=settings.model_dump(),
        latest_distribution=latest,
        monthly_distributions=monthly,
        calibration=[period for period, _rows in periods],
        business=business,
        arr_scoring_date=latest_date,
        arr=arr,
        churned_arr=caught,
        drift_scoring_date=latest_date,
        feature_drift=drift,
        weights=weights,
        model_age=age,
        retrain_reasons=reasons,
        alerts=[],
    )
    report.alerts = alert_rules.report_alerts(report, settings)
    log.info("monitoring report as of %s: %d alerts", as_of, len(report.alerts))
    return report


def _artifact_lookup(engine: Engine, newest: dict[str, Any]) -> Callable[[str], dict[str, Any]]:
    @cache
    def lookup(model_version: str) -> dict[str, Any]:
        if model_version == newest["model_version"]:
            return newest
        row = operational.model_row(engine, model_version)
        if row is None:
            raise NoDataError(
                f"scores name model {model_version}, which is not in the model registry; "
                "re-score those dates with `account-health score --as-of DATE`"
            )
        return parse_artifact(row["artifact"], f"model {model_version} in the operational store")

    return lookup


def _arr_by_tier(
    workspace: Workspace, store: AnalyticalStore, history: pd.DataFrame, date: datetime
) -> list[TierArr]:
    scores = history[history["as_of"] == pd.Timestamp(date)]
    arr = account_arr(workspace, store, [date]).drop(columns="as_of")
    return arr_by_tier(scores.merge(arr, on="account_id", how="left"))


def _feature_drift(
    workspace: Workspace,
    store: AnalyticalStore,
    engine: Engine,
    artifact: dict[str, Any],
    date: datetime,
    settings: MonitorSettings,
) -> list[FeatureDrift]:
    from account_health.signals import compute_signals
    from account_health.training.dataset import at_risk_accounts

    features = {
        entry["source"]: entry["signal"]
        for entry in artifact["model"]["features"]
        if entry["kind"] == "value"
    }
    snapshots = [datetime.fromisoformat(value) for value in artifact.get("snapshots") or []]
    if not snapshots:
        return []
    at_risk = at_risk_accounts(workspace, store, snapshots)
    training = at_risk.merge(compute_signals(workspace, store, snapshots), on=["account_id", "as_of"])
    current = read_score_signals(engine, date, features)
    return feature_drift(
        training, current, features, settings.psi_bins, settings.psi_warning, settings.psi_alert
    )


def _weight_refit(
    workspace: Workspace,
    store: AnalyticalStore,
    artifact: dict[str, Any],
    as_of: datetime,
    settings: MonitorSettings,
) -> WeightRefit:
    from account_health.training.dataset import build_training_frame

    horizon = int(artifact["horizon_days"])
    every = settings.refit_every_days or int(
        artifact.get("snapshot_every_days") or workspace.config.training.snapshot_every_days
    )
    snapshots = refit_snapshots(as_of, horizon, every)
    frame = build_training_frame(workspace, store, snapshots, horizon)
    return weight_refit(
        artifact, frame, snapshots, settings.weight_alpha, settings.weight_min_events_per_column
    )


def _model_age(workspace: Workspace, artifact: dict[str, Any], as_of: datetime) -> ModelAge:
    training_end = datetime.fromisoformat(artifact["training_end"])
    limit = workspace.config.monitor.max_model_age_days or workspace.config.training.max_model_age_days
    return ModelAge(str(artifact["model_version"]), training_end, (as_of - training_end).days, limit)
