"""The monitoring report's content as report blocks, rendered to Markdown and HTML by the training report's renderer."""

from __future__ import annotations

from typing import Any

from account_health.monitor.distribution import BAND_LABELS, BAND_TIERS
from account_health.monitor.drift import WeightDrift
from account_health.monitor.report import MonitorReport
from account_health.training.report_document import Block, FigureBlock, Heading, Items, Paragraph, TableBlock
from account_health.training.report_sections import NOT_AVAILABLE, finite_number


def report_blocks(report: MonitorReport, figures: dict[str, str]) -> list[Block]:
    """Build the report's content; `figures` maps a plot name to its PNG file name."""
    return [
        *_verdict(report),
        *_alerts(report),
        *_distribution(report, figures),
        *_calibration(report, figures),
        *_business(report),
        *_arr(report),
        *_drift(report, figures),
        *_age(report),
    ]


def _verdict(report: MonitorReport) -> list[Block]:
    if report.retrain_recommended:
        heading = Heading(f"Retrain recommended: {len(report.retrain_reasons)} reason(s)", 1, "not-validated")
    else:
        heading = Heading(f"No retrain needed: {report.verdict()}", 1, "validated")
    blocks: list[Block] = [
        heading,
        Paragraph(
            f"Monitoring report as of {report.as_of:%Y-%m-%d}, model {report.model_version}, churn within "
            f"{report.horizon_days} days."
        ),
    ]
    if not report.validated:
        blocks.append(Paragraph("NOT VALIDATED: this model was not shown to beat the base rate.", note=True))
    if report.retrain_reasons:
        blocks.append(Items([f"{reason.kind}: {reason.message}" for reason in report.retrain_reasons]))
    return blocks


def _alerts(report: MonitorReport) -> list[Block]:
    if not report.alerts:
        return [Heading("Alerts", 2), Paragraph("None.")]
    return [Heading("Alerts", 2), Items([f"{alert.kind}: {alert.message}" for alert in report.alerts])]


def _distribution(report: MonitorReport, figures: dict[str, str]) -> list[Block]:
    bands = report.settings["distribution_bands"]
    alert = report.settings["red_orange_alert_share"]
    band_text = ", ".join(
        f"{BAND_LABELS[band]} {_percent(low, 0)} to {_percent(high, 0)}"
        for band, (low, high) in bands.items()
    )
    blocks: list[Block] = [
        Heading("Tier distribution", 2),
        Paragraph(
            f"Declared tiers (after hysteresis). Healthy bands: {band_text}. An alert fires when Red + Orange "
            f"exceeds {_percent(alert, 0)} on the latest scoring date. A month pools every score of its "
            "scoring dates."
        ),
    ]
    rows = []
    for month in report.monthly_distributions:
        rows.append(
            (
                month.period,
                str(month.scoring_dates),
                f"{month.scores:,}",
                *[_percent(month.band_shares[band]) for band in BAND_TIERS],
                ", ".join(BAND_LABELS[band] for band in month.outside_bands) or "none",
            )
        )
    columns = (
        "month",
        "scoring dates",
        "scores",
        *[BAND_LABELS[band] for band in BAND_TIERS],
        "outside band",
    )
    blocks.append(
        TableBlock("Tier shares by month", columns, rows, (False, True, True, True, True, True, True, False))
    )
    if "tiers" in figures:
        blocks.append(
            FigureBlock(figures["tiers"], "tiers by month", "Share of each declared tier by month.")
        )
    return blocks


def _calibration(report: MonitorReport, figures: dict[str, str]) -> list[Block]:
    blocks: list[Block] = [
        Heading("Calibration over time", 2),
        Paragraph(
            "Does the model tell the truth? For each month, its latest scoring date whose horizon has closed: "
            "observed churn within the horizon against the mean predicted probability, per raw tier (the "
            "model's cut-offs), with a Wilson interval corrected for five tiers (Bonferroni). A tier is "
            "consistent when its interval contains its mean prediction. The calibration slope and intercept "
            "come from a logistic fit of the label on the model's log-odds (slope 1 and intercept 0 are ideal)."
        ),
    ]
    if not report.calibration:
        return [*blocks, Paragraph("No scoring date's horizon has closed yet.", note=True)]
    rows = [
        (
            period.period,
            f"{period.scoring_date:%Y-%m-%d}",
            f"{period.accounts:,}",
            _percent(period.mean_predicted),
            _percent(period.observed),
            _interval(period.slope.as_dict(), 2),
            _interval(period.intercept.as_dict(), 2),
            _fixed(period.roc_auc, 3),
            ", ".join(period.inconsistent_tiers) or "none",
        )
        for period in report.calibration
    ]
    blocks.append(
        TableBlock(
            "Calibration per month",
            (
                "month",
                "scoring date",
                "accounts",
                "mean predicted",
                "observed",
                "slope (95 %)",
                "intercept (95 %)",
                "ROC AUC",
                "inconsistent tiers",
            ),
            rows,
            (False, False, True, True, True, True, True, True, False),
        )
    )
    latest = report.calibration[-1]
    blocks.append(
        TableBlock(
            f"Tiers scored {latest.scoring_date:%Y-%m-%d} (model {latest.model_version})",
            ("tier", "accounts", "mean predicted", "observed", "interval", "consistent"),
            [
                (
                    str(entry["tier"]),
                    f"{entry['rows']:,}",
                    _percent(entry["mean_predicted"]),
                    _percent(entry["observed"]),
                    f"{_percent(entry['observed_low'])} to {_percent(entry['observed_high'])}"
                    if entry["rows"]
                    else NOT_AVAILABLE,
                    "yes" if entry["consistent"] else "NO",
                )
                for entry in latest.tiers
            ],
            (False, True, True, True, True, False),
        )
    )
    if "calibration" in figures:
        blocks.append(
            FigureBlock(
                figures["calibration"],
                "calibration",
                "Left: the latest closed month per tier. Right: calibration slope by month.",
            )
        )
    return blocks


def _business(report: MonitorReport) -> list[Block]:
    business = report.business
    period = (
        f"{business.scoring_dates} closed scoring date(s) from {business.first_date:%Y-%m-%d} to {business.last_date:%Y-%m-%d}"
        if business.first_date is not None and business.last_date is not None
        else "no closed scoring date in the period"
    )
    alerting = (
        "Misses are alerts ([monitor] business_alerts = true)."
        if business.alerts_enabled
        else ("Misses are reported, not alerted (set [monitor] business_alerts = true to alert).")
    )
    blocks: list[Block] = [
        Heading("Business expectations (a separate check from calibration)", 2),
        Paragraph(
            "Rules of thumb from customer-success practice about how often each tier churns, measured on the "
            f"declared tiers pooled over {period}, with a 95 % Wilson interval. {alerting}"
        ),
        TableBlock(
            f"Observed churn within {report.horizon_days} days per declared tier",
            ("tier", "accounts", "churned", "observed", "95 % interval", "band", "in band"),
            [
                (
                    tier.tier,
                    f"{tier.rows:,}",
                    f"{tier.churned:,}",
                    _percent(tier.observed),
                    f"{_percent(tier.observed_low)} to {_percent(tier.observed_high)}"
                    if tier.rows
                    else NOT_AVAILABLE,
                    f"{_percent(tier.band[0], 0)} to {_percent(tier.band[1], 0)}",
                    _yes_no(tier.in_band),
                )
                for tier in business.tiers
            ],
            (False, True, True, True, True, False, False),
        ),
    ]
    if business.conflicts:
        blocks.append(
            Paragraph(
                "Why these bands and calibrated cut-offs cannot all hold at once: a calibrated tier churns at the "
                "mean of its predicted probabilities, which lie between its cut-offs. With this model's cut-offs, "
                + "; ".join(business.conflicts)
                + ". Meeting those bands would take a model that is not calibrated, or other cut-offs "
                "(`account-health train --fit-cutoffs` fits them to [tiers.bands])."
            )
        )
    return blocks


def _arr(report: MonitorReport) -> list[Block]:
    date = f"{report.arr_scoring_date:%Y-%m-%d}" if report.arr_scoring_date else NOT_AVAILABLE
    rows = [
        (entry.currency, entry.tier, f"{entry.accounts:,}", _money(entry.arr), _money(entry.arr_at_risk))
        for entry in report.arr
    ]
    blocks: list[Block] = [
        Heading("ARR", 2),
        TableBlock(
            f"ARR by declared tier on {date}; ARR at risk is the sum of churn probability x ARR",
            ("currency", "tier", "accounts", "ARR", "ARR at risk"),
            rows,
            (False, False, True, True, True),
        ),
    ]
    items = []
    for caught in report.churned_arr:
        share = _percent(caught.caught_share)
        days = NOT_AVAILABLE if caught.median_days_before is None else f"{caught.median_days_before:.0f}"
        items.append(
            f"{caught.currency}: {caught.churn_events} churn events from {caught.window_start:%Y-%m-%d} to "
            f"{caught.window_end:%Y-%m-%d} with {_money(caught.churned_arr)} ARR; {caught.caught_events} of them "
            f"({_money(caught.caught_arr)}, {share} of the churned ARR) were Red or Orange in a score within "
            f"{caught.lookback_days} days before churning, a median of {days} days before; "
            f"{caught.not_scored_events} had no score in those days"
        )
    blocks.append(Items(items or ["No churn event in the window."]))
    return blocks


def _drift(report: MonitorReport, figures: dict[str, str]) -> list[Block]:
    settings = report.settings
    date = f"{report.drift_scoring_date:%Y-%m-%d}" if report.drift_scoring_date else NOT_AVAILABLE
    weights = report.weights
    snapshots = ", ".join(f"{moment:%Y-%m-%d}" for moment in weights.snapshots)
    blocks: list[Block] = [
        Heading("Drift", 2),
        Paragraph(
            f"Population stability index of each feature: the scores of {date} against the model's training "
            f"snapshots, in {settings['psi_bins']} bins at the training deciles plus one for missing values. "
            f"At or above {settings['psi_warning']:g} a feature has moved; at or above {settings['psi_alert']:g} it "
            "has drifted and calls for a retrain."
        ),
        TableBlock(
            "Signal distribution drift",
            ("signal", "feature", "PSI", "missing in training", "missing now", "level"),
            [
                (
                    entry.signal,
                    entry.feature,
                    _fixed(entry.psi, 3),
                    _percent(entry.training_missing),
                    _percent(entry.current_missing),
                    entry.level,
                )
                for entry in report.feature_drift
            ],
            (False, False, True, True, True, False),
        ),
        Paragraph(
            f"Weights: the model's coefficients refitted on the last closed horizon (snapshots "
            f"{snapshots or 'none'}; {weights.rows:,} account-snapshots, {weights.churned:,} churned), with the "
            "model's imputation and scaler, so both are standardised on the model's scale, and C scaled so "
            "each row carries the model's L2 penalty. A weight has changed when the refit lies outside the "
            "model's 95 % interval and the difference exceeds "
            f"z = {_fixed(weights.critical_z, 2)} ({settings['weight_alpha']:g} split over the compared columns)."
        ),
    ]
    if weights.note:
        blocks.append(Paragraph(weights.note, note=True))
    blocks.append(
        TableBlock(
            "Weight drift per model column",
            ("signal", "column", "model", "model 95 %", "refit", "refit 95 %", "z", "changed"),
            [
                (
                    entry.signal,
                    entry.column,
                    _signed(entry.model),
                    _pair(entry.model_low, entry.model_high),
                    _signed(entry.refit),
                    _pair(entry.refit_low, entry.refit_high),
                    _fixed(entry.z, 2),
                    _changed_cell(entry),
                )
                for entry in weights.columns
            ],
            (False, False, True, True, True, True, True, False),
        )
    )
    if "drift" in figures:
        blocks.append(
            FigureBlock(
                figures["drift"], "drift", "Left: PSI per feature. Right: model weights against the refit."
            )
        )
    return blocks


def _age(report: MonitorReport) -> list[Block]:
    age = report.model_age
    state = "older than" if age.too_old else "within"
    return [
        Heading("Model age", 2),
        Paragraph(
            f"Model {age.model_version}: training data ends {age.training_end:%Y-%m-%d}, {age.age_days} days "
            f"before {report.as_of:%Y-%m-%d}, {state} the {age.max_age_days}-day limit."
        ),
    ]


def _yes_no(value: bool | None) -> str:
    if value is None:
        return NOT_AVAILABLE
    return "yes" if value else "no"


def _changed_cell(entry: WeightDrift) -> str:
    if entry.changed:
        return "YES"
    return entry.note or "no"


def _percent(value: Any, digits: int = 1) -> str:
    number = finite_number(value)
    return NOT_AVAILABLE if number is None else f"{number:.{digits}%}"


def _fixed(value: Any, digits: int) -> str:
    number = finite_number(value)
    return NOT_AVAILABLE if number is None else f"{number:.{digits}f}"


def _signed(value: Any) -> str:
    number = finite_number(value)
    return NOT_AVAILABLE if number is None else f"{number:+.3f}"


def _pair(low: Any, high: Any) -> str:
    if finite_number(low) is None or finite_number(high) is None:
        return NOT_AVAILABLE
    return f"{low:+.3f} to {high:+.3f}"


def _interval(entry: dict[str, float], digits: int) -> str:
    if finite_number(entry.get("value")) is None:
        return NOT_AVAILABLE
    return f"{entry['value']:.{digits}f} ({_fixed(entry.get('low'), digits)} to {_fixed(entry.get('high'), digits)})"


def _money(value: float) -> str:
    return f"{value:,.0f}"


__all__ = ["report_blocks"]
