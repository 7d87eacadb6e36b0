"""Explanations a CSM can read: each signal's value in words and its push on the churn odds."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine

from account_health.errors import NoDataError
from account_health.scoring.points import log_odds_of, probability_points
from account_health.signals.registry import SIGNALS, SignalDefinition, number_or_none
from account_health.store import operational


@dataclass
class Reason:
    signal: str
    text: str
    log_odds: float
    # Percentage points of churn probability; NaN, like log_odds, when the model does not use the signal.
    points: float = math.nan


@dataclass
class Explanation:
    account_id: str
    as_of: datetime
    model_version: str
    validated: bool
    probability: float
    tier: str
    reasons: list[Reason]
    # The tier from the cut-offs alone. It differs from `tier` while hysteresis keeps the previous tier.
    raw_tier: str | None = None
    signals: dict[str, Any] | None = None
    settings: dict[str, Any] | None = None


@dataclass
class SignalChange:
    """The move of one signal's value and contribution between two scores of an account."""

    signal: str
    text: str
    log_odds_before: float
    log_odds_after: float
    points_before: float
    points_after: float

    @property
    def log_odds_move(self) -> float:
        """Change in log-odds, counting a signal the model did not use as 0; NaN when neither used it."""
        if math.isnan(self.log_odds_before) and math.isnan(self.log_odds_after):
            return math.nan
        return _or_zero(self.log_odds_after) - _or_zero(self.log_odds_before)

    @property
    def points_move(self) -> float:
        if math.isnan(self.points_before) and math.isnan(self.points_after):
            return math.nan
        return _or_zero(self.points_after) - _or_zero(self.points_before)


@dataclass
class ScoreChange:
    """Two stored scores of an account, earlier and later, with each signal's move between them."""

    before: Explanation
    after: Explanation
    changes: list[SignalChange]

    @property
    def model_changed(self) -> bool:
        return self.before.model_version != self.after.model_version


def reasons_for(
    signals: dict[str, Any],
    contributions: dict[str, float],
    settings: dict[str, Any],
    points: Mapping[str, float] | None = None,
) -> list[Reason]:
    """Return every signal's description and contributions, largest first, then the unused signals."""
    values = {**settings, **signals}
    reasons = []
    for signal in SIGNALS:
        contribution = contributions.get(signal.name)
        text = signal.describe(values)
        if contribution is None:
            reasons.append(Reason(signal.name, f"{text} (not used by the model)", math.nan))
        else:
            point = (points or {}).get(signal.name)
            reasons.append(
                Reason(signal.name, text, float(contribution), math.nan if point is None else float(point))
            )
    return sorted(
        reasons, key=lambda reason: -abs(reason.log_odds) if not math.isnan(reason.log_odds) else 1.0
    )


def explain(engine: Engine, account_id: str, as_of: datetime | None = None) -> Explanation:
    """Explain an account's stored score (the latest as-of date unless one is given)."""
    rows = operational.read_scores(engine, as_of=as_of, account_id=account_id)
    if not rows:
        when = f" on {as_of:%Y-%m-%d}" if as_of else ""
        raise NoDataError(
            f"no score for account {account_id!r}{when}; check the id, or run `account-health score` first"
        )
    # A date scored by several models keeps a row per model; the latest run's row is the current one.
    return _explanation(engine, max(rows, key=lambda row: row["run_id"]))


def explain_change(
    engine: Engine, account_id: str, since: datetime, as_of: datetime | None = None
) -> ScoreChange:
    """Compare the account's score at `as_of` (or its latest) with its latest score on or before `since`.

    Signals are ordered by how far their log-odds contribution moved, largest first.
    """
    after = explain(engine, account_id, as_of)
    if since >= after.as_of:
        raise NoDataError(
            f"--since {since:%Y-%m-%d} is not before {after.as_of:%Y-%m-%d}, the date of the score being "
            "explained; pass an earlier --since, or a later --as-of"
        )
    row = operational.latest_score_on_or_before(engine, account_id, since)
    if row is None:
        dates = operational.account_score_dates(engine, account_id)
        raise NoDataError(
            f"no score for account {account_id!r} on or before {since:%Y-%m-%d} (its earliest is of "
            f"{dates[0]:%Y-%m-%d}); pass a later --since, or score that date first with "
            f"`account-health score --as-of {since:%Y-%m-%d}`"
        )
    before = _explanation(engine, row)
    changes = [_signal_change(signal, before, after) for signal in SIGNALS]
    changes.sort(
        key=lambda change: -abs(change.log_odds_move) if not math.isnan(change.log_odds_move) else 1.0
    )
    return ScoreChange(before, after, changes)


def _explanation(engine: Engine, row: Mapping[str, Any]) -> Explanation:
    signals = json.loads(row["signals"])
    contributions = json.loads(row["contributions"])
    probability = float(row["probability"])
    if row.get("probability_points"):
        points = json.loads(row["probability_points"])
    else:
        # Scores stored before probability points existed: the log-odds and contributions give them.
        points = probability_points(log_odds_of(probability), contributions)
    settings = _signal_settings(engine, row["model_version"])
    return Explanation(
        account_id=row["account_id"],
        as_of=row["as_of"],
        model_version=row["model_version"],
        validated=bool(row["validated"]),
        probability=probability,
        tier=row["tier"],
        reasons=reasons_for(signals, contributions, settings, points),
        raw_tier=row.get("raw_tier"),
        signals=signals,
        settings=settings,
    )


def _signal_settings(engine: Engine, model_version: str) -> dict[str, Any]:
    """Return the signal settings of the model that made a score, else of the newest model."""
    model = operational.model_row(engine, model_version) or operational.latest_model_row(engine)
    if model is None:
        return {}
    try:
        artifact = json.loads(model["artifact"])
    except (json.JSONDecodeError, RecursionError):
        # The settings only shape wording; `score` is where a damaged model is rejected.
        return {}
    settings = artifact.get("signal_settings", {}) if isinstance(artifact, dict) else {}
    return dict(settings) if isinstance(settings, dict) else {}


def _signal_change(signal: SignalDefinition, before: Explanation, after: Explanation) -> SignalChange:
    old = _reason(before, signal.name)
    new = _reason(after, signal.name)
    before_values = {**(before.settings or {}), **(before.signals or {})}
    after_values = {**(after.settings or {}), **(after.signals or {})}
    text = "; ".join(_feature_change(feature, before_values, after_values) for feature in signal.features)
    return SignalChange(signal.name, text, old.log_odds, new.log_odds, old.points, new.points)


def _reason(explanation: Explanation, signal: str) -> Reason:
    return next(reason for reason in explanation.reasons if reason.signal == signal)


def _feature_change(feature: str, before: Mapping[str, Any], after: Mapping[str, Any]) -> str:
    """Describe one feature's move in words with its unit, e.g. 'support load rose from 3.0 to 9.5 ...'."""
    label, number_format, unit = _feature_wording(feature, after)
    old, new = number_or_none(before.get(feature)), number_or_none(after.get(feature))
    if feature == "champion_in_seat":
        return _champion_change(old, new)
    if old is None and new is None:
        return f"{label}: no data then or now"
    if old is None:
        return f"{label}: no data then, {number_format.format(new)}{unit} now"
    if new is None:
        return f"{label}: {number_format.format(old)}{unit} then, no data now"
    _label, _format, old_unit = _feature_wording(feature, before)
    if old_unit != unit:
        # An aggregated feed can switch an account from event counts to active users. The two numbers
        # then have different units, so both are given instead of a rise or a fall.
        return f"{label}: {number_format.format(old)}{old_unit} then, {number_format.format(new)}{unit} now"
    if number_format.format(old) == number_format.format(new):
        return f"{label} unchanged at {number_format.format(new)}{unit}"
    verb = "rose" if new > old else "fell"
    return f"{label} {verb} from {number_format.format(old)} to {number_format.format(new)}{unit}"


def _feature_wording(feature: str, values: Mapping[str, Any]) -> tuple[str, str, str]:
    """Return the label, the number format and the unit (with its leading space) of a signal feature."""
    if feature == "usage_trend":
        measure = {"dau_mau": "DAU/MAU", "active_users": "daily active users"}.get(
            str(values.get("usage_measure") or "dau_mau"), "daily events"
        )
        days = values.get("usage_window_days", 28)
        return "usage trend", "{:+.4f}", f" {measure} per day (slope over {days} days)"
    if feature == "sentiment_score":
        return "sentiment", "{:.1f}", " out of 10"
    if feature == "support_load":
        days = values.get("support_window_days", 90)
        return "support load", "{:.1f}", f" severity-weighted tickets in {days} days"
    if feature == "days_since_champion_departure":
        cap = values.get("champion_departure_cap_days", 365)
        return "days since a champion left", "{:.0f}", f" days (capped at {cap})"
    if feature == "integrations_active":
        return "active integrations", "{:.0f}", ""
    if feature == "integrations_change_90d":
        days = values.get("integrations_change_days", 90)
        return f"change in active integrations over {days} days", "{:+.0f}", ""
    return feature, "{:.4g}", ""


def _champion_change(old: float | None, new: float | None) -> str:
    def state(value: float | None) -> str:
        if value is None:
            return "no champion tagged"
        return "a champion in seat" if value else "no champion in seat"

    if state(old) == state(new):
        return f"still {state(new)}"
    return f"{state(old)} then, {state(new)} now"


def _or_zero(value: float) -> float:
    return 0.0 if math.isnan(value) else value
