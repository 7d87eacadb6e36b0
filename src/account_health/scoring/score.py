"""`account-health score`: the latest model applied to every account at risk on the as-of date."""

from __future__ import annotations

import json
import logging
import math
import warnings
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy.engine import Engine

from account_health.asof import default_as_of
from account_health.config import TierSettings, Workspace, hysteresis_margin_problem
from account_health.errors import (
    ConfigError,
    HistoryOrderWarning,
    ModelArtifactError,
    NoDataError,
    SignalSettingsWarning,
    StaleModelWarning,
)
from account_health.scoring.hysteresis import declared_tiers, previous_in_order
from account_health.scoring.points import probability_points
from account_health.signals.registry import DETAILS, FEATURES
from account_health.store import operational
from account_health.store.analytical import AnalyticalStore
from account_health.training.artifact import parse_artifact
from account_health.training.dataset import at_risk_accounts
from account_health.training.evaluate import TIER_NAMES, tier_of
from account_health.training.model import ChurnModel

log = logging.getLogger(__name__)


@dataclass
class ScoringResult:
    as_of: datetime
    model_version: str
    validated: bool
    scores: pd.DataFrame
    run_id: int
    stale_days: int | None


def latest_artifact(engine: Engine) -> dict[str, Any]:
    """Return the newest registered model artifact, or raise NoDataError when none was trained."""
    row = operational.latest_model_row(engine)
    if row is None:
        raise NoDataError("no model is registered in this workspace; run `account-health train` first")
    origin = f"model {row['model_version']} in the operational store"
    artifact = parse_artifact(row["artifact"], origin)
    if artifact["model_version"] != row["model_version"]:
        raise ModelArtifactError(
            f"{origin} names itself {artifact['model_version']!r}, so it was edited after training; "
            "retrain with `account-health train`"
        )
    return artifact


def score(
    workspace: Workspace,
    store: AnalyticalStore,
    engine: Engine,
    as_of: datetime | None = None,
) -> ScoringResult:
    """Score every account at risk on `as_of` and replace that date's scores in one transaction."""
    artifact = latest_artifact(engine)
    as_of = as_of or default_as_of(store)
    stale_days = staleness(artifact, as_of, workspace.config.training.max_model_age_days)

    run_id = operational.start_run(engine, "score", as_of)
    try:
        # Strictly earlier dates only, so re-scoring a date gives the same declared tiers.
        previous = operational.previous_tiers(engine, as_of)
        scores = score_frame(workspace, store, artifact, as_of, previous)
        rows = [_score_row(record, as_of, artifact, run_id) for record in scores.to_dict("records")]
        operational.replace_scores(engine, as_of, artifact["model_version"], rows)
    except BaseException as exc:
        operational.finish_run(engine, run_id, "failed", {"error": str(exc)})
        raise
    warn_if_later_scores(engine, as_of)
    operational.finish_run(
        engine, run_id, "succeeded", {"accounts": len(rows), "model_version": artifact["model_version"]}
    )
    log.info("scored %d accounts as of %s with model %s", len(rows), as_of, artifact["model_version"])
    return ScoringResult(
        as_of, artifact["model_version"], bool(artifact["validated"]), scores, run_id, stale_days
    )


def warn_if_later_scores(engine: Engine, as_of: datetime) -> None:
    latest = operational.latest_score_date(engine)
    if latest is not None and latest > as_of:
        warnings.warn(
            f"scores exist for later dates (up to {latest:%Y-%m-%d}); their declared tiers were set from the "
            f"history before {as_of:%Y-%m-%d} was re-scored and are not recomputed. Re-score them in date order "
            "to carry this date's tiers forward",
            HistoryOrderWarning,
            stacklevel=3,
        )


def score_frame(
    workspace: Workspace,
    store: AnalyticalStore,
    artifact: dict[str, Any],
    as_of: datetime,
    previous_tiers: dict[str, str] | None = None,
) -> pd.DataFrame:
    """Signals, probability, tiers and per-signal contributions of each account at risk.

    `raw_tier` comes from the artifact's cut-offs alone. `tier` is the declared tier: it leaves the
    account's tier in `previous_tiers` only when a cut-off is crossed by the [tiers] hysteresis margin.
    """
    return apply_model(workspace, signal_frame(workspace, store, as_of), artifact, previous_tiers)


def signal_frame(workspace: Workspace, store: AnalyticalStore, as_of: datetime) -> pd.DataFrame:
    """Return the signals as of `as_of` of every account at risk then.

    Raises
    ------
    NoDataError
        When no account is at risk on `as_of`.
    """
    at_risk = at_risk_accounts(workspace, store, [as_of])
    if at_risk.empty:
        raise NoDataError(
            f"no account is at risk on {as_of:%Y-%m-%d} (none known, or none with an active contract); "
            "check the ingested accounts and contracts, or pass another --as-of"
        )
    from account_health.signals import compute_signals

    signals = compute_signals(workspace, store, [as_of])
    return at_risk.merge(signals, on=["account_id", "as_of"], how="inner")


def apply_model(
    workspace: Workspace,
    frame: pd.DataFrame,
    artifact: dict[str, Any],
    previous_tiers: dict[str, str] | None = None,
) -> pd.DataFrame:
    """Add probability, raw and declared tier and contributions to a `signal_frame`, riskiest first."""
    warn_if_other_signal_settings(workspace, artifact)
    return score_signals(frame, artifact, workspace.config.tiers.hysteresis_margin, previous_tiers)


# Settings that choose where the signals are computed, not what they are.
_SETTINGS_WITHOUT_EFFECT = ("engine",)


def changed_signal_settings(workspace: Workspace, artifact: dict[str, Any]) -> list[str]:
    """Return the [signals] settings whose value in the workspace differs from the model's, by name.

    A setting the model's file does not record, from a version before it existed, is not compared.
    Lists (internal user patterns and email domains) are compared as sets, since their order and
    repeats change nothing.
    """
    trained = artifact.get("signal_settings") or {}
    current = workspace.config.signals.model_dump()

    def comparable(value: Any) -> Any:
        return frozenset(value) if isinstance(value, list) else value

    return sorted(
        key
        for key in current.keys() & trained.keys()
        if key not in _SETTINGS_WITHOUT_EFFECT and comparable(current[key]) != comparable(trained[key])
    )


def warn_if_other_signal_settings(workspace: Workspace, artifact: dict[str, Any]) -> None:
    """Warn when a [signals] setting the model was trained with has another value in the workspace.

    The model's weights fit features computed with its own settings, such as the knowledge lag or the
    usage window.
    """
    changed = changed_signal_settings(workspace, artifact)
    if not changed:
        return
    trained = artifact["signal_settings"]
    current = workspace.config.signals.model_dump()
    values = "; ".join(
        f"{key} = {json.dumps(trained[key])} in the model, {json.dumps(current[key])} now" for key in changed
    )
    warnings.warn(
        f"[signals] settings differ from those model {artifact.get('model_version', '?')} was trained with "
        f"({values}), so its weights apply to features computed another way. Retrain with "
        "`account-health train`, or set them back",
        SignalSettingsWarning,
        stacklevel=3,
    )


def score_signals(
    frame: pd.DataFrame,
    artifact: dict[str, Any],
    margin: float,
    previous_tiers: dict[str, str] | None = None,
) -> pd.DataFrame:
    """`apply_model` for a caller holding the [tiers] hysteresis margin rather than a workspace (the API)."""
    frame = frame.copy()
    model = ChurnModel.from_dict(artifact["model"])
    log_odds = model.decision_function(frame)
    frame["probability"] = model.predict_proba(frame)
    cutoffs = TierSettings(**artifact["tiers"])
    problem = hysteresis_margin_problem(cutoffs, margin)
    if problem is not None:
        raise ConfigError(
            f"[tiers] {problem}. These cut-offs are stored in model {artifact['model_version']}; lower "
            "[tiers] hysteresis_margin, or retrain (fitted cut-offs keep every tier wider than the margin)"
        )
    frame["raw_tier"] = tier_of(frame["probability"].to_numpy(), cutoffs)
    frame["tier"] = declared_tiers(
        frame["probability"].to_numpy(),
        previous_in_order(frame["account_id"].tolist(), previous_tiers or {}),
        cutoffs,
        margin,
    )
    contributions = model.contributions(frame)
    frame["contributions"] = [
        {signal: float(value) for signal, value in row.items()} for row in contributions.to_dict("records")
    ]
    frame["probability_points"] = [
        probability_points(float(value), row)
        for value, row in zip(log_odds, frame["contributions"], strict=True)
    ]
    return frame.sort_values(["probability", "account_id"], ascending=[False, True]).reset_index(drop=True)


def staleness(artifact: dict[str, Any], as_of: datetime, max_age_days: int) -> int | None:
    training_end = datetime.fromisoformat(artifact["training_end"])
    age = (as_of - training_end).days
    if age > max_age_days:
        warnings.warn(
            f"model {artifact['model_version']} was trained on data ending {training_end:%Y-%m-%d}, "
            f"{age} days before {as_of:%Y-%m-%d}; retrain with `account-health train`",
            StaleModelWarning,
            stacklevel=3,
        )
        return age
    return None


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(float(value)) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    if value is pd.NA or value is None:
        return None
    return value


def score_rows(
    scores: pd.DataFrame, as_of: datetime, artifact: dict[str, Any], run_id: int
) -> list[dict[str, Any]]:
    """Return the scores history rows of a scored frame."""
    return [_score_row(record, as_of, artifact, run_id) for record in scores.to_dict("records")]


def _score_row(
    record: dict[str, Any], as_of: datetime, artifact: dict[str, Any], run_id: int
) -> dict[str, Any]:
    signals = {name: _plain(record.get(name)) for name in (*FEATURES, *DETAILS)}
    return {
        "account_id": record["account_id"],
        "as_of": as_of,
        "model_version": artifact["model_version"],
        "probability": float(record["probability"]),
        "tier": record["tier"],
        "raw_tier": record["raw_tier"],
        "contributions": json.dumps(record["contributions"]),
        "probability_points": json.dumps(record["probability_points"]),
        "signals": json.dumps(signals),
        "validated": bool(artifact["validated"]),
        "run_id": run_id,
    }


def tier_distribution(scores: pd.DataFrame) -> list[tuple[str, int, float]]:
    """(tier, accounts, share of accounts) in tier order."""
    total = max(len(scores), 1)
    counts = scores["tier"].value_counts()
    return [(name, int(counts.get(name, 0)), int(counts.get(name, 0)) / total) for name in TIER_NAMES]


__all__ = [
    "ScoringResult",
    "apply_model",
    "changed_signal_settings",
    "latest_artifact",
    "score",
    "score_frame",
    "score_rows",
    "score_signals",
    "signal_frame",
    "tier_distribution",
]
