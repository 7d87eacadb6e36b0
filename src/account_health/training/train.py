"""`account-health train`: snapshots, labels, hold-out evaluation, the final fit and its artifact."""

from __future__ import annotations

import hashlib
import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy.engine import Engine

from account_health.asof import default_as_of, oldest_data, start_of_day
from account_health.config import TrainingSettings, Workspace
from account_health.errors import EarlySnapshotWarning, NotValidatedWarning, SeparationWarning, TrainingError
from account_health.signals.registry import FEATURES, SIGNALS
from account_health.store import operational
from account_health.store.analytical import AnalyticalStore
from account_health.training.artifact import FORMAT, FORMAT_VERSION, library_versions, write_artifact
from account_health.training.cutoffs import fit_tier_cutoffs
from account_health.training.dataset import build_training_frame
from account_health.training.evaluate import evaluate, tier_calibration
from account_health.training.intervals import coefficient_intervals, flagged_signals
from account_health.training.model import ChurnModel
from account_health.training.regularisation import choose_c
from account_health.training.report import ReportFiles, write_report
from account_health.training.spine import snapshot_dates

log = logging.getLogger(__name__)

StepCallback = Callable[[str], None]


@dataclass
class TrainingResult:
    artifact: dict[str, Any]
    path: Path
    frame: pd.DataFrame
    holdout_probability: np.ndarray
    report: ReportFiles | None = None


def train(
    workspace: Workspace,
    store: AnalyticalStore,
    engine: Engine,
    end: datetime | None = None,
    min_churn_events: int | None = None,
    step: StepCallback | None = None,
    fit_cutoffs: bool = False,
) -> TrainingResult:
    """Fit, evaluate, save and register a churn model from the workspace's history."""
    settings = workspace.config.training
    announce = step or (lambda _message: None)
    if end is None:
        end = start_of_day(settings.end) if settings.end else default_as_of(store)
    snapshots = snapshot_dates(
        end, settings.window_months, settings.snapshot_every_days, settings.horizon_days
    )
    if len(snapshots) < 2:
        raise TrainingError(
            f"the training window gives {len(snapshots)} snapshot(s) before {end:%Y-%m-%d}; widen "
            "[training] window_months or shorten snapshot_every_days / horizon_days"
        )

    announce(f"computing signals and labels at {len(snapshots)} snapshots")
    frame = build_training_frame(workspace, store, snapshots, settings.horizon_days)
    _check_churn_events(frame, snapshots, end, min_churn_events or settings.min_churn_events)
    features = [feature for feature in FEATURES if frame[feature].notna().any()]
    if not features:
        raise TrainingError(
            "no signal has any value in the training window; configure and ingest a signal source"
        )

    holdout_snapshots, train_snapshots = _split(snapshots, settings.holdout_fraction, settings.horizon_days)
    train_rows = frame[frame["as_of"].isin(train_snapshots)]
    holdout_rows = frame[frame["as_of"].isin(holdout_snapshots)]
    if train_rows["label"].nunique() < 2:
        held_out = int(holdout_rows["label"].sum())
        raise TrainingError(
            f"the training part of the window ({min(train_snapshots):%Y-%m-%d} to {max(train_snapshots):%Y-%m-%d}) "
            f"has only one class of label, while the hold-out after it has {held_out} churned rows; pass a "
            "later --end or widen [training] window_months so that churn and retention both fall in the "
            "training part"
        )
    caveats = _data_caveats(train_rows, features) + _snapshots_before_usage(store, snapshots)
    regularisation = _regularisation(train_rows, features, settings, announce)
    chosen_c = float(regularisation["chosen_c"])

    announce(f"fitting on {len(train_rows):,} rows, evaluating on {len(holdout_rows):,} hold-out rows")
    evaluation_model = ChurnModel(features, C=chosen_c, class_weight=settings.class_weight).fit(
        train_rows, train_rows["label"].to_numpy()
    )
    holdout_probability = evaluation_model.predict_proba(holdout_rows)
    base_rate = float(train_rows["label"].mean())
    metrics = evaluate(
        holdout_rows,
        holdout_probability,
        base_rate,
        workspace.config.tiers,
        _baselines(train_rows, holdout_rows, features),
        settings.bootstrap_samples,
        settings.seed,
    )
    fitted = None
    if fit_cutoffs:
        announce("fitting tier cut-offs to the churn bands of each tier on the hold-out")
        labels = holdout_rows["label"].to_numpy()
        fitted = fit_tier_cutoffs(labels, holdout_probability, workspace.config.tiers)
        if "tiers" in metrics:
            metrics["tiers"] = tier_calibration(labels, holdout_probability, fitted.tiers)
        caveats += fitted.caveats()

    announce("fitting the final model on every snapshot")
    final = ChurnModel(features, C=chosen_c, class_weight=settings.class_weight).fit(
        frame, frame["label"].to_numpy()
    )
    intervals, interval_caveats = coefficient_intervals(final, frame)
    caveats += interval_caveats
    artifact = _artifact(workspace, final, frame, snapshots, holdout_snapshots, end, metrics, caveats)
    artifact["tiers_fitted"] = fitted.as_dict() if fitted is not None else None
    if fitted is not None:
        artifact["tiers"] = fitted.tiers.cutoffs()
    artifact["regularisation"] = regularisation
    artifact["coefficient_intervals"] = intervals
    for signal in flagged_signals(intervals):
        artifact["weights"][signal]["flagged"] = True
        caveats.append(f"the 95 % interval of every {signal} coefficient spans zero; its weight may be noise")
    version = artifact["model_version"]
    try:
        path, text, sha256 = write_artifact(artifact, workspace.models_dir)
        report = write_report(artifact, workspace.models_dir)
        operational.register_model(engine, version, end, artifact["validated"], path, sha256, text)
    except BaseException:
        # Files of a model the registry does not list would look like a trained model; a Ctrl-C or a
        # failure before the registration removes them.
        for leftover in workspace.models_dir.glob(f"{version}*"):
            leftover.unlink(missing_ok=True)
        raise
    if not artifact["validated"]:
        warnings.warn(artifact["validation_reason"], NotValidatedWarning, stacklevel=2)
    log.info("trained model %s on %d rows", artifact["model_version"], len(frame))
    return TrainingResult(
        artifact, path, holdout_rows.assign(probability=holdout_probability), holdout_probability, report
    )


def _regularisation(
    rows: pd.DataFrame, features: list[str], settings: TrainingSettings, announce: StepCallback
) -> dict[str, Any]:
    if settings.regularisation_c != "auto":
        return {"chosen_c": float(settings.regularisation_c), "candidates": [], "source": "config"}
    announce(f"choosing the regularisation strength on {settings.cv_folds} time-ordered folds")
    chosen, candidates = choose_c(
        rows, features, settings.horizon_days, settings.cv_folds, class_weight=settings.class_weight
    )
    source = "cross-validation" if any(entry["log_loss"] is not None for entry in candidates) else "fallback"
    return {"chosen_c": chosen, "candidates": candidates, "source": source}


def _check_churn_events(frame: pd.DataFrame, snapshots: list[datetime], end: datetime, minimum: int) -> None:
    events = frame.loc[frame["label"] == 1, ["account_id", "churned_at"]].drop_duplicates()
    if events.empty:
        raise TrainingError(
            f"no churn event falls in the label windows of the training window {snapshots[0]:%Y-%m-%d} to "
            f"{end:%Y-%m-%d}; training needs churn history: ingest churn events, or pass --end inside their dates"
        )
    if len(events) < minimum:
        raise TrainingError(
            f"found {len(events)} churn events in the training window {snapshots[0]:%Y-%m-%d} to {end:%Y-%m-%d}, "
            f"fewer than the {minimum} needed for weights worth reading; ingest a longer churn history, or pass "
            f"--min-churn-events {max(len(events), 1)} to train anyway (the report will show how uncertain it is)"
        )


def _split(
    snapshots: list[datetime], fraction: float, horizon_days: int
) -> tuple[list[datetime], list[datetime]]:
    """Hold out the latest snapshots; train on earlier ones whose label window ends before the hold-out."""
    count = max(1, round(len(snapshots) * fraction))
    holdout = snapshots[-count:]
    train = [t for t in snapshots[:-count] if t + timedelta(days=horizon_days) <= holdout[0]]
    if not train:
        raise TrainingError(
            f"{len(snapshots)} snapshots leave none to train on once the {count} latest are held out and "
            "label windows may not overlap the hold-out; widen [training] window_months or lower holdout_fraction"
        )
    return holdout, train


def _snapshots_before_usage(store: AnalyticalStore, snapshots: list[datetime]) -> list[str]:
    """Name the snapshots taken before the oldest usage row, where every account reads as idle."""
    oldest = oldest_data(store, ("usage_events", "usage_daily"))
    early = [snapshot for snapshot in snapshots if oldest is not None and snapshot <= oldest]
    if not early:
        return []
    caveat = (
        f"{len(early)} of {len(snapshots)} snapshots ({early[0]:%Y-%m-%d} to {early[-1]:%Y-%m-%d}) come before "
        f"the oldest usage row ({oldest:%Y-%m-%d}), so every account reads as idle in them; shorten "
        "[training] window_months or pass a later --end"
    )
    warnings.warn(caveat, EarlySnapshotWarning, stacklevel=3)
    return [caveat]


def _data_caveats(rows: pd.DataFrame, features: list[str]) -> list[str]:
    """Name features that separate the classes perfectly and pairs that are collinear."""
    caveats = []
    labels = rows["label"].to_numpy()
    for feature in features:
        values = rows[feature].to_numpy(dtype="float64")
        known = ~np.isnan(values)
        churned, stayed = values[known & (labels == 1)], values[known & (labels == 0)]
        if len(churned) and len(stayed) and (churned.min() > stayed.max() or churned.max() < stayed.min()):
            caveats.append(
                f"{feature} separates churned from retained rows perfectly; its weight is unreliable"
            )
    filled = rows[features].astype("float64")
    filled = filled.fillna(filled.mean())
    usable = [feature for feature in features if filled[feature].std() > 0]
    correlation = filled[usable].corr().to_numpy()
    for i, first in enumerate(usable):
        for j in range(i + 1, len(usable)):
            if abs(correlation[i, j]) > 0.99:
                caveats.append(
                    f"{first} and {usable[j]} are collinear (r = {correlation[i, j]:.3f}); their split of weight is arbitrary"
                )
    for caveat in caveats:
        warnings.warn(caveat, SeparationWarning, stacklevel=3)
    return caveats


def _baselines(
    train_rows: pd.DataFrame, holdout_rows: pd.DataFrame, features: list[str]
) -> dict[str, np.ndarray]:
    """Scores of the simple alternatives, each oriented by its correlation with churn in training."""

    def oriented(feature: str) -> np.ndarray:
        train_values = train_rows[feature].astype("float64")
        mean, sd = train_values.mean(), train_values.std() or 1.0
        direction = np.sign(np.corrcoef(train_values.fillna(mean), train_rows["label"])[0, 1]) or 1.0
        holdout_values = holdout_rows[feature].astype("float64").fillna(mean)
        return ((holdout_values - mean) / sd * direction).to_numpy()

    baselines: dict[str, np.ndarray] = {}
    usable = [f for f in features if train_rows[f].astype("float64").std() > 0]
    if usable:
        baselines["equal-weight sum of signals"] = np.sum([oriented(f) for f in usable], axis=0)
    if "sentiment_score" in usable:
        baselines["sentiment alone"] = oriented("sentiment_score")
    if "usage_trend" in usable:
        baselines["usage alone"] = oriented("usage_trend")
    return baselines


def _artifact(
    workspace: Workspace,
    model: ChurnModel,
    frame: pd.DataFrame,
    snapshots: list[datetime],
    holdout: list[datetime],
    end: datetime,
    metrics: dict[str, Any],
    caveats: list[str],
) -> dict[str, Any]:
    settings = workspace.config.training
    created = datetime.now(UTC)
    fingerprint = hashlib.sha256(repr((model.to_dict(), [str(s) for s in snapshots])).encode()).hexdigest()[
        :8
    ]
    validated, reason = _validation(metrics)
    shares = model.weight_shares()
    coefficients = {spec.name: float(coef) for spec, coef in zip(model.specs_, model.coef_, strict=True)}
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model_version": f"{created:%Y%m%dT%H%M%SZ}-{fingerprint}",
        "created_at": created.isoformat(),
        "training_start": snapshots[0].isoformat(),
        "training_end": end.isoformat(),
        "horizon_days": settings.horizon_days,
        "snapshot_every_days": settings.snapshot_every_days,
        "snapshots": [s.isoformat() for s in snapshots],
        "holdout_snapshots": [s.isoformat() for s in holdout],
        "rows": len(frame),
        "churn_events": int(
            frame.loc[frame["label"] == 1, ["account_id", "churned_at"]].drop_duplicates().shape[0]
        ),
        "accounts": int(frame["account_id"].nunique()),
        "base_rate": float(frame["label"].mean()),
        "signals_used": model.signals_used,
        "signals_missing": [signal.name for signal in SIGNALS if signal.name not in model.signals_used],
        "weights": {
            signal: {
                "share": shares[signal],
                "flagged": False,
                "coefficients": {
                    spec.name: coefficients[spec.name] for spec in model.specs_ if spec.signal == signal
                },
            }
            for signal in model.signals_used
        },
        "model": model.to_dict(),
        "tiers": workspace.config.tiers.cutoffs(),
        "signal_settings": workspace.config.signals.model_dump(),
        "class_weight": settings.class_weight,
        "metrics": metrics,
        "caveats": caveats,
        "validated": validated,
        "validation_reason": reason,
        "versions": library_versions(),
    }


def _validation(metrics: dict[str, Any]) -> tuple[bool, str]:
    if "roc_auc" not in metrics:
        return False, f"NOT VALIDATED: {metrics.get('error', 'the hold-out could not be evaluated')}"
    auc = metrics["roc_auc"]
    gain = metrics["log_loss_improvement"]
    if metrics["beats_base_rate"]:
        return True, (
            f"validated: beats the base rate on the hold-out (ROC AUC {auc['value']:.3f}, 95 % interval "
            f"{auc['low']:.3f} to {auc['high']:.3f}; log-loss improvement {gain['value']:.4f}, interval "
            f"{gain['low']:.4f} to {gain['high']:.4f})"
        )
    needed = metrics.get("log_loss_improvement_needed", 0.0)
    return False, (
        f"NOT VALIDATED: the model cannot be shown to beat the base rate on its hold-out (ROC AUC "
        f"{auc['value']:.3f}, 95 % interval {auc['low']:.3f} to {auc['high']:.3f}, whose low end must exceed "
        f"0.5; log-loss improvement {gain['value']:.4f}, interval {gain['low']:.4f} to {gain['high']:.4f}, whose "
        f"low end must exceed {needed:.4f}). Treat its scores as unproven."
    )
