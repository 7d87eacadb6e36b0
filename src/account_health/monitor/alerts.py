"""Structured alerts and the retrain recommendation, each with the figures behind it.

Alerts are plain data (kind, message, details) so that a notifier can post them and the API can
serve them; nothing here sends anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from account_health.config import MonitorSettings
from account_health.monitor.calibration import CalibrationPeriod
from account_health.monitor.drift import FeatureDrift, WeightRefit

if TYPE_CHECKING:
    from account_health.monitor.report import MonitorReport


@dataclass
class Alert:
    """A finding for a person to act on; `kind` is stable for machines, `message` is for people."""

    kind: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class ModelAge:
    """Age of the newest model at the as-of date: days since the end of its training data."""

    model_version: str
    training_end: datetime
    age_days: int
    max_age_days: int

    @property
    def too_old(self) -> bool:
        return self.age_days > self.max_age_days


def retrain_reasons(
    latest_period: CalibrationPeriod | None,
    drift: list[FeatureDrift],
    weights: WeightRefit,
    age: ModelAge,
    settings: MonitorSettings,
) -> list[Alert]:
    """Return one reason per check that calls for a retrain; an empty list when nothing is wrong."""
    reasons = []
    if latest_period is not None and not latest_period.within_bounds:
        reasons.append(_calibration_reason(latest_period, settings))
    for signal, entries in _by_signal(weights).items():
        reasons.append(_weight_reason(signal, entries, weights))
    drifted = [entry for entry in drift if entry.level == "drifted"]
    for signal in dict.fromkeys(entry.signal for entry in drifted):
        features = [entry for entry in drifted if entry.signal == signal]
        worst = max(features, key=lambda entry: entry.psi)
        reasons.append(
            Alert(
                "signal_drift",
                f"the {signal} signal's distribution has drifted from the training data: PSI of "
                f"{worst.feature} {worst.psi:.3f}, at or above {settings.psi_alert:g}",
                {"signal": signal, "features": {entry.feature: entry.psi for entry in features}},
            )
        )
    if age.too_old:
        reasons.append(
            Alert(
                "model_age",
                f"model {age.model_version} is {age.age_days} days old (training data ends "
                f"{age.training_end:%Y-%m-%d}), more than the {age.max_age_days}-day limit",
                {"age_days": age.age_days, "max_age_days": age.max_age_days},
            )
        )
    return reasons


def _by_signal(weights: WeightRefit) -> dict[str, list[Any]]:
    grouped: dict[str, list[Any]] = {}
    for entry in weights.columns:
        if entry.changed:
            grouped.setdefault(entry.signal, []).append(entry)
    return grouped


def _weight_reason(signal: str, entries: list[Any], weights: WeightRefit) -> Alert:
    parts = [
        f"{entry.column} {entry.model:+.3f} -> {entry.refit:+.3f} (model's 95 % interval "
        f"{entry.model_low:+.3f} to {entry.model_high:+.3f})"
        for entry in entries
    ]
    return Alert(
        "weight_drift",
        f"the {signal} signal's weight has moved: a refit on the last closed horizon gives "
        + "; ".join(parts),
        {
            "signal": signal,
            "columns": {
                entry.column: {"model": entry.model, "refit": entry.refit, "z": entry.z} for entry in entries
            },
            "critical_z": weights.critical_z,
        },
    )


def _calibration_reason(period: CalibrationPeriod, settings: MonitorSettings) -> Alert:
    parts = []
    for entry in period.tiers:
        if str(entry["tier"]) in period.inconsistent_tiers:
            parts.append(
                f"{entry['tier']} observed {entry['observed']:.1%} (interval {entry['observed_low']:.1%} to "
                f"{entry['observed_high']:.1%}) against {entry['mean_predicted']:.1%} predicted"
            )
    if period.slope_out_of_bounds:
        low, high = settings.calibration_slope_bounds
        parts.append(
            f"calibration slope {period.slope.value:.2f} (95 % interval {period.slope.low:.2f} to "
            f"{period.slope.high:.2f}) outside {low:g} to {high:g}"
        )
    return Alert(
        "calibration",
        f"calibration left its bounds on {period.scoring_date:%Y-%m-%d}: " + "; ".join(parts),
        {
            "scoring_date": period.scoring_date.isoformat(),
            "inconsistent_tiers": period.inconsistent_tiers,
            "slope": period.slope.as_dict(),
        },
    )


def report_alerts(report: MonitorReport, settings: MonitorSettings) -> list[Alert]:
    """Return the alerts of a report: crowded Red + Orange, business bands when enabled, and a retrain."""
    alerts = []
    latest = report.latest_distribution
    if latest is not None and latest.red_orange_share > settings.red_orange_alert_share:
        alerts.append(
            Alert(
                "red_orange_share",
                f"{latest.red_orange_share:.1%} of scored accounts are Red or Orange on {latest.last_date:%Y-%m-%d} "
                f"({latest.counts['Red'] + latest.counts['Orange']:,} of {latest.scores:,}), more than the "
                f"{settings.red_orange_alert_share:.0%} the team can act on",
                {
                    "scoring_date": latest.last_date.isoformat(),
                    "share": latest.red_orange_share,
                    "accounts": latest.counts["Red"] + latest.counts["Orange"],
                    "threshold": settings.red_orange_alert_share,
                },
            )
        )
    if settings.business_alerts:
        for tier in report.business.tiers:
            if tier.in_band is False:
                alerts.append(
                    Alert(
                        "business_band",
                        f"{tier.tier} accounts churned {tier.observed:.1%} within {report.horizon_days} days "
                        f"({tier.churned} of {tier.rows}), outside the expected {tier.band[0]:.0%} to {tier.band[1]:.0%}",
                        {
                            "tier": tier.tier,
                            "observed": tier.observed,
                            "band": list(tier.band),
                            "rows": tier.rows,
                        },
                    )
                )
    if report.retrain_reasons:
        alerts.append(
            Alert(
                "retrain",
                f"retrain model {report.model_version}: "
                + "; ".join(reason.message for reason in report.retrain_reasons),
                {
                    "reasons": [
                        {"kind": reason.kind, "message": reason.message, **reason.details}
                        for reason in report.retrain_reasons
                    ]
                },
            )
        )
    return alerts
