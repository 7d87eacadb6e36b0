"""PNG plots of the monitoring report: tiers by month, calibration over time, drift.

Drawn on matplotlib's Agg canvas through the training report's figure helpers, so no display is
needed. Each function takes the report's dataclasses and returns PNG bytes.
"""

from __future__ import annotations

import math

from account_health.config import DistributionBands
from account_health.monitor.calibration import CalibrationPeriod
from account_health.monitor.distribution import TierDistribution
from account_health.monitor.drift import FeatureDrift, WeightDrift
from account_health.training.evaluate import TIER_NAMES
from account_health.training.plots import _figure, _png

TIER_COLOURS = {
    "Red": "#d1242f",
    "Orange": "#fb8f44",
    "Yellow": "#e3b341",
    "Green": "#4ac26b",
    "Dark-Green": "#116329",
}

LEVEL_COLOURS = {"drifted": "#d1242f", "moved": "#fb8f44", "stable": "#4ac26b"}


def tiers_png(months: list[TierDistribution], bands: DistributionBands, alert_share: float) -> bytes:
    """Stack each month's tier shares, with the Red + Orange band and alert line."""
    figure = _figure(8.0, 4.8)
    axes = figure.add_subplot()
    labels = [month.period for month in months]
    bottom = [0.0] * len(months)
    for tier in TIER_NAMES:
        heights = [100 * month.shares[tier] for month in months]
        axes.bar(labels, heights, bottom=bottom, color=TIER_COLOURS[tier], label=tier, width=0.7)
        bottom = [base + height for base, height in zip(bottom, heights, strict=True)]
    low, high = bands.red_orange
    axes.axhspan(100 * low, 100 * high, color="grey", alpha=0.2, label="healthy Red + Orange band")
    axes.axhline(
        100 * alert_share, color="black", linestyle="--", label=f"Red + Orange alert ({alert_share:.0%})"
    )
    axes.set_ylim(0, 100)
    axes.set_ylabel("share of scores in the month (%)")
    axes.set_title("Declared tiers by month (Red at the bottom)")
    axes.tick_params(axis="x", labelrotation=45)
    figure.legend(loc="outside right upper", fontsize="small")
    return _png(figure)


def calibration_png(periods: list[CalibrationPeriod], slope_bounds: tuple[float, float]) -> bytes:
    """Plot the latest period's observed churn per tier against its prediction, and the slope over time."""
    figure = _figure(11.0, 4.8)
    tiers_axes, slope_axes = figure.subplots(1, 2)
    latest = periods[-1]
    rows = [entry for entry in latest.tiers if entry["rows"]]
    limit = max(
        [0.05] + [max(float(entry["observed_high"]), float(entry["mean_predicted"])) for entry in rows]
    )
    limit = min(1.0, 1.05 * limit)
    tiers_axes.plot([0, limit], [0, limit], linestyle="--", color="grey", label="perfect calibration")
    for entry in rows:
        observed = float(entry["observed"])
        tiers_axes.errorbar(
            float(entry["mean_predicted"]),
            observed,
            # Rounding can put a Wilson bound a hair beyond the observed share at 0 % or 100 %.
            yerr=[
                [max(0.0, observed - float(entry["observed_low"]))],
                [max(0.0, float(entry["observed_high"]) - observed)],
            ],
            fmt="o",
            color=TIER_COLOURS[str(entry["tier"])],
            capsize=3,
            label=f"{entry['tier']} ({entry['rows']:,})",
        )
    tiers_axes.set_xlim(0, limit)
    tiers_axes.set_ylim(0, limit)
    tiers_axes.set_xlabel("mean predicted churn probability")
    tiers_axes.set_ylabel(f"observed churn within {latest.horizon_days} days")
    tiers_axes.set_title(f"Tiers scored {latest.scoring_date:%Y-%m-%d}")
    tiers_axes.legend(fontsize="small", loc="upper left")
    tiers_axes.grid(alpha=0.3)

    shown = [period for period in periods if math.isfinite(period.slope.value)]
    labels = [period.period for period in shown]
    values = [period.slope.value for period in shown]
    lows = [period.slope.value - period.slope.low for period in shown]
    highs = [period.slope.high - period.slope.value for period in shown]
    slope_axes.axhspan(*slope_bounds, color="grey", alpha=0.2, label="slope bounds")
    slope_axes.axhline(1.0, color="grey", linestyle="--")
    if shown:
        slope_axes.errorbar(
            labels, values, yerr=[lows, highs], fmt="o-", capsize=3, label="slope, 95 % interval"
        )
    slope_axes.set_ylabel("calibration slope (1 is ideal)")
    slope_axes.set_title("Calibration slope per month")
    slope_axes.tick_params(axis="x", labelrotation=45)
    slope_axes.legend(fontsize="small")
    slope_axes.grid(alpha=0.3)
    return _png(figure)


def drift_png(
    features: list[FeatureDrift], weights: list[WeightDrift], warning: float, alert: float
) -> bytes:
    """Plot each feature's PSI with the two thresholds, and each weight of the model against the refit."""
    figure = _figure(11.0, 1.6 + 0.45 * max(len(features), len(weights), 1))
    psi_axes, weight_axes = figure.subplots(1, 2)
    names = [entry.feature for entry in features]
    values = [entry.psi if math.isfinite(entry.psi) else 0.0 for entry in features]
    colours = [LEVEL_COLOURS[entry.level] for entry in features]
    psi_axes.barh(names, values, color=colours)
    psi_axes.axvline(warning, color="#fb8f44", linestyle="--", label=f"moved ({warning:g})")
    psi_axes.axvline(alert, color="#d1242f", linestyle="--", label=f"drifted ({alert:g})")
    psi_axes.invert_yaxis()
    psi_axes.set_xlabel("PSI, latest scores against training")
    psi_axes.set_title("Signal distribution drift")
    psi_axes.legend(fontsize="small", loc="lower right")

    positions = list(range(len(weights)))
    for position, entry in zip(positions, weights, strict=True):
        if entry.model_low is not None and entry.model_high is not None:
            weight_axes.errorbar(
                entry.model,
                position - 0.15,
                xerr=[[entry.model - entry.model_low], [entry.model_high - entry.model]],
                fmt="o",
                color="tab:blue",
                capsize=3,
            )
        if entry.refit is not None and entry.refit_low is not None and entry.refit_high is not None:
            weight_axes.errorbar(
                entry.refit,
                position + 0.15,
                xerr=[[entry.refit - entry.refit_low], [entry.refit_high - entry.refit]],
                fmt="s",
                color="#d1242f" if entry.changed else "tab:grey",
                capsize=3,
            )
    weight_axes.axvline(0, color="black", linewidth=0.8)
    weight_axes.set_yticks(positions, [entry.column for entry in weights])
    weight_axes.invert_yaxis()
    weight_axes.set_xlabel("standardised coefficient, 95 % intervals")
    weight_axes.set_title("Weights: model (circles), refit (squares; red: changed)")
    weight_axes.grid(axis="x", alpha=0.3)
    return _png(figure)
