"""The sections of the training report, built from a model artifact as report blocks.

Values that could not be computed (None in the JSON, NaN in memory) show as "n/a", and fields that a
model file lacks (one written by an earlier release, say) give a note in place of their section.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from typing import Any

from account_health.training.report_document import (
    Block,
    FigureBlock,
    Heading,
    Items,
    Paragraph,
    TableBlock,
)

NOT_AVAILABLE = "n/a"
TIER_CUT_OFFS = (("Red", "red"), ("Orange", "orange"), ("Yellow", "yellow"), ("Green", "green"))


def report_blocks(artifact: dict[str, Any], figures: dict[str, str], skipped: dict[str, str]) -> list[Block]:
    """Build the report's content; `figures` maps a plot name to its file name, `skipped` to a note."""
    return [
        *_verdict(artifact),
        *_training_data(artifact),
        *_holdout(artifact),
        *_calibration(artifact, figures, skipped),
        *_lift(artifact, figures, skipped),
        *_weights(artifact, figures, skipped),
        *_regularisation(artifact),
        *_cutoffs(artifact),
        *_caveats(artifact),
        *_versions(artifact),
    ]


def _verdict(artifact: dict[str, Any]) -> list[Block]:
    css_class = "validated" if artifact["validated"] else "not-validated"
    return [Heading(str(artifact["validation_reason"]), 1, css_class)]


def _training_data(artifact: dict[str, Any]) -> list[Block]:
    horizon = artifact["horizon_days"]
    snapshots = artifact.get("snapshots") or [artifact["training_start"]]
    used = ", ".join(artifact.get("signals_used", [])) or "none"
    missing = ", ".join(artifact.get("signals_missing", [])) or "none"
    return [
        Heading("Training data", 2),
        Items(
            [
                f"model {artifact['model_version']}, created {artifact.get('created_at', NOT_AVAILABLE)}",
                f"training window: {len(snapshots)} snapshots from {artifact['training_start'][:10]} to "
                f"{snapshots[-1][:10]}, every {artifact.get('snapshot_every_days', NOT_AVAILABLE)} days; "
                f"data up to {artifact['training_end'][:10]}",
                f"label: churned within {horizon} days of the snapshot",
                f"rows: {artifact['rows']:,} account-snapshots of {artifact['accounts']:,} accounts",
                f"churn events in the training window: {artifact['churn_events']:,}",
                f"base rate: {_percent(artifact.get('base_rate'))} of account-snapshots churned within "
                f"{horizon} days",
                f"signals used: {used}",
                f"signals missing (no source configured, or no data in the window): {missing}",
            ]
        ),
    ]


def _holdout(artifact: dict[str, Any]) -> list[Block]:
    metrics = artifact["metrics"]
    horizon = artifact["horizon_days"]
    holdout = artifact.get("holdout_snapshots") or []
    window = f"{holdout[0][:10]} to {holdout[-1][:10]}" if holdout else NOT_AVAILABLE
    blocks: list[Block] = [
        Heading("Out-of-time hold-out", 2),
        Paragraph(
            f"The {len(holdout)} latest snapshots ({window}): {metrics.get('rows', 0):,} account-snapshots, "
            f"{metrics.get('churned', 0):,} of them churned within {horizon} days. The model evaluated here "
            "was fitted on earlier snapshots only; intervals are 95 % bootstrap intervals resampled by "
            "account."
        ),
    ]
    if "roc_auc" not in metrics:
        reason = metrics.get("error", "the hold-out could not be evaluated")
        return [*blocks, Paragraph(f"No hold-out metrics: {reason}.", note=True)]

    chance = _percent(metrics.get("observed_rate"))
    rows = [
        ("ROC AUC", *_interval_cells(metrics["roc_auc"], 3), "0.5 is chance, 1 is perfect ranking"),
        (
            "PR AUC (average precision)",
            *_interval_cells(metrics["pr_auc"], 3),
            f"chance is the churn rate, {chance}",
        ),
        (
            "log loss",
            _fixed(metrics.get("log_loss"), 4),
            "",
            f"nats per account-snapshot; base rate alone {_fixed(metrics.get('log_loss_base_rate'), 4)}",
        ),
        (
            "log-loss improvement over the base rate",
            *_interval_cells(metrics["log_loss_improvement"], 4),
            "nats per account-snapshot; a low end above "
            f"{_fixed(metrics.get('log_loss_improvement_needed', 0.0), 4)} (0.1 % of the base rate's) beats it",
        ),
        (
            "Brier score",
            _fixed(metrics.get("brier"), 4),
            "",
            "mean squared error of the probability; base rate alone "
            f"{_fixed(metrics.get('brier_base_rate'), 4)}",
        ),
        (
            "top-decile lift",
            _fixed(metrics.get("top_decile_lift"), 2),
            "",
            "churn rate in the riskiest 10 % of rows, as a multiple of the hold-out churn rate",
        ),
        (
            "calibration slope",
            _fixed(metrics.get("calibration_slope"), 2),
            "",
            "1 is ideal; below 1, too extreme",
        ),
        (
            "calibration intercept",
            _fixed(metrics.get("calibration_intercept"), 2),
            "",
            "log-odds; 0 is ideal, above 0 the model under-predicts",
        ),
    ]
    blocks.append(
        TableBlock(
            f"Hold-out metrics ({metrics['rows']:,} account-snapshots, churn within {horizon} days)",
            ("metric", "value", "95 % interval", "unit and reading"),
            rows,
            (False, True, True, False),
        )
    )
    blocks.extend(_baselines(metrics))
    return blocks


def _baselines(metrics: dict[str, Any]) -> list[Block]:
    baselines = metrics.get("baselines") or {}
    if not baselines:
        return [Paragraph("No baseline could be computed on this hold-out.", note=True)]
    rows = [("this model", *_interval_cells(metrics["roc_auc"], 3))]
    rows += [(name, *_interval_cells(entry.get("roc_auc"), 3)) for name, entry in baselines.items()]
    return [
        TableBlock(
            f"ROC AUC of simple alternatives on the same {metrics['rows']:,} hold-out account-snapshots",
            ("scores", "ROC AUC", "95 % interval"),
            rows,
            (False, True, True),
        )
    ]


def _calibration(artifact: dict[str, Any], figures: dict[str, str], skipped: dict[str, str]) -> list[Block]:
    metrics = artifact["metrics"]
    horizon = artifact["horizon_days"]
    blocks: list[Block] = [Heading("Calibration", 2)]
    tiers = metrics.get("tiers")
    if tiers:
        rows = [_tier_row(entry, artifact.get("tiers") or {}) for entry in tiers]
        blocks.append(
            TableBlock(
                f"Calibration per tier on the hold-out (churn within {horizon} days; Wilson interval of the "
                f"observed rate, Bonferroni-corrected over {len(tiers)} tiers)",
                ("tier", "churn probability", "rows", "mean predicted", "observed", "interval", "consistent"),
                rows,
                (False, False, True, True, True, True, False),
            )
        )
    else:
        blocks.append(Paragraph("No calibration per tier: the hold-out was not evaluated.", note=True))
    blocks.append(_figure_or_note("calibration", figures, skipped, _calibration_caption(artifact)))
    return blocks


def _lift(artifact: dict[str, Any], figures: dict[str, str], skipped: dict[str, str]) -> list[Block]:
    caption = (
        f"Cumulative lift on the hold-out: the churn rate within {artifact['horizon_days']} days among the "
        "riskiest fraction of account-snapshots, as a multiple of the hold-out churn rate; 1 is random "
        "targeting."
    )
    return [Heading("Lift", 2), _figure_or_note("lift", figures, skipped, caption)]


def _weights(artifact: dict[str, Any], figures: dict[str, str], skipped: dict[str, str]) -> list[Block]:
    weights = artifact.get("weights") or {}
    intervals = artifact.get("coefficient_intervals")
    blocks: list[Block] = [
        Heading("Learned weights", 2),
        Paragraph(
            "Coefficients are standardised: log-odds of churn within "
            f"{artifact['horizon_days']} days per standard deviation of the column, from the final model "
            "fitted on every snapshot; + raises churn risk. A signal's share is its part of the total "
            "absolute standardised weight. Intervals are 95 % cluster-robust (by account) sandwich intervals "
            "around the fitted coefficients; they show sampling variance, not the L2 penalty's pull towards zero."
        ),
    ]
    if intervals is None:
        blocks.append(Paragraph("This model file has no coefficient intervals.", note=True))

    blocks.append(
        TableBlock(
            "Weights per signal and model column",
            (
                "signal",
                "share of weight",
                "model column",
                "coefficient",
                "interval centre",
                "95 % interval",
                "interval spans 0",
            ),
            _weight_rows(weights, intervals or {}),
            (False, True, False, True, True, True, False),
        )
    )
    flagged = [signal for signal, entry in weights.items() if entry.get("flagged")]
    if flagged:
        blocks.append(
            Paragraph(
                f"Flagged signals: {', '.join(flagged)}. The 95 % interval of every coefficient of these "
                "signals spans zero, so their weight may be noise."
            )
        )

    caption = "Standardised coefficient per model column (bars, coloured by signal) with its 95 % interval."
    blocks.append(_figure_or_note("weights", figures, skipped, caption))
    return blocks


def _weight_rows(weights: dict[str, Any], intervals: dict[str, Any]) -> list[tuple[str, ...]]:
    """Build one row per model column; signals by share, largest first, each named on its first row."""
    rows: list[tuple[str, ...]] = []
    for signal, entry in sorted(
        weights.items(), key=lambda item: -(finite_number(item[1].get("share")) or 0.0)
    ):
        label = f"{signal} (every interval spans 0)" if entry.get("flagged") else signal
        for position, (column, coefficient) in enumerate(entry.get("coefficients", {}).items()):
            interval = intervals.get(column) or {}
            rows.append(
                (
                    label if position == 0 else "",
                    _percent(entry.get("share"), 0) if position == 0 else "",
                    column,
                    _signed(coefficient),
                    _signed(interval.get("value")),
                    _range(interval.get("low"), interval.get("high"), _signed),
                    _yes_no(interval.get("spans_zero")),
                )
            )
    return rows


def _regularisation(artifact: dict[str, Any]) -> list[Block]:
    blocks: list[Block] = [Heading("Regularisation", 2)]
    choice = artifact.get("regularisation")
    if not choice:
        model_c = _fixed((artifact.get("model") or {}).get("C"), 4)
        return [
            *blocks,
            Paragraph(
                f"This model file records no choice of C; the model was fitted with C = {model_c}.", note=True
            ),
        ]

    chosen = choice.get("chosen_c")
    source = choice.get("source")
    if source == "config":
        text = f"C = {_general(chosen)} (inverse L2 strength), set in [training] regularisation_c."
    elif source == "fallback":
        text = (
            f"C = {_general(chosen)} (inverse L2 strength), the fallback: no validation fold had both "
            "churned and retained rows, so no candidate could be compared."
        )
    else:
        text = (
            f"C = {_general(chosen)} (inverse L2 strength), the candidate with the lowest mean validation "
            "log loss on time-ordered folds grouped by account."
        )
    blocks.append(Paragraph(text))
    candidates = choice.get("candidates") or []
    if candidates:
        rows = [
            (
                _general(entry.get("C")),
                _fixed(entry.get("log_loss"), 4),
                "yes" if finite_number(entry.get("C")) == finite_number(chosen) else "",
            )
            for entry in candidates
        ]
        blocks.append(
            TableBlock(
                "Candidates of C",
                ("C", "mean validation log loss (nats per account-snapshot)", "chosen"),
                rows,
                (True, True, False),
            )
        )
    return blocks


def _cutoffs(artifact: dict[str, Any]) -> list[Block]:
    tiers = artifact.get("tiers") or {}
    fitted = artifact.get("tiers_fitted")
    rows = [
        (name.capitalize(), _percent(tiers.get(name), 2)) for name in ("red", "orange", "yellow", "green")
    ]
    blocks: list[Block] = [
        Heading("Tier cut-offs", 2),
        TableBlock(
            "Lower bound of churn probability for each tier (Dark-Green is below Green)",
            ("tier", "cut-off"),
            rows,
            (False, True),
        ),
    ]
    if not fitted:
        blocks.append(Paragraph("These are the configured cut-offs from [tiers]; they were not fitted."))
        return blocks
    configured = fitted.get("configured") or {}
    met = (
        "met every band"
        if fitted.get("all_bands_met")
        else f"missed the bands of {', '.join(map(str, fitted.get('missed') or []))}"
    )
    blocks.append(
        Paragraph(
            "These cut-offs were fitted (train --fit-cutoffs) on the hold-out predictions so that each tier's "
            f"observed churn falls in its [tiers.bands] band; the fit {met}. Configured cut-offs: "
            + ", ".join(f"{name} {_cutoff(value)}" for name, value in configured.items())
            + ". The calibration per tier above uses the fitted cut-offs on the same hold-out they were fitted "
            "on, so it is optimistic."
        )
    )
    return blocks


def _caveats(artifact: dict[str, Any]) -> list[Block]:
    caveats = artifact.get("caveats") or []
    return [Heading("Caveats", 2), Items(list(caveats)) if caveats else Paragraph("None.")]


def _versions(artifact: dict[str, Any]) -> list[Block]:
    versions = artifact.get("versions") or {}
    if not versions:
        return []
    text = ", ".join(f"{name} {version}" for name, version in versions.items())
    return [Heading("Software", 2), Paragraph(f"Trained with {text}.")]


def _figure_or_note(name: str, figures: dict[str, str], skipped: dict[str, str], caption: str) -> Block:
    if name in figures:
        return FigureBlock(figures[name], f"{name} plot", caption)
    return Paragraph(skipped.get(name, f"No {name} plot."), note=True)


def _calibration_caption(artifact: dict[str, Any]) -> str:
    curve = artifact["metrics"].get("calibration_curve") or []
    return (
        f"Calibration curve on the hold-out: {len(curve)} equal-count bins of the predicted probability; "
        f"mean predicted against observed churn within {artifact['horizon_days']} days, with the diagonal "
        "of perfect calibration."
    )


def _tier_row(entry: dict[str, Any], cut_offs: dict[str, Any]) -> tuple[str, ...]:
    bounds = {name: finite_number(cut_offs.get(key)) for name, key in TIER_CUT_OFFS}
    tier = entry["tier"]
    if tier in bounds:
        band = f"at least {_cutoff(bounds[tier])}"
    else:
        band = f"below {_cutoff(bounds.get('Green'))}"
    if not entry.get("rows"):
        return (tier, band, "0", NOT_AVAILABLE, NOT_AVAILABLE, NOT_AVAILABLE, NOT_AVAILABLE)
    return (
        tier,
        band,
        f"{entry['rows']:,}",
        _percent(entry.get("mean_predicted")),
        f"{_percent(entry.get('observed'))} ({entry.get('churned', 0):,} churned)",
        _range(entry.get("observed_low"), entry.get("observed_high"), _percent),
        _yes_no(entry.get("consistent")),
    )


# Formatting: every helper accepts None and NaN, which become "n/a".


def finite_number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _fixed(value: Any, digits: int) -> str:
    number = finite_number(value)
    return NOT_AVAILABLE if number is None else f"{number:.{digits}f}"


def _signed(value: Any) -> str:
    number = finite_number(value)
    return NOT_AVAILABLE if number is None else f"{number:+.3f}"


def _general(value: Any) -> str:
    number = finite_number(value)
    return NOT_AVAILABLE if number is None else f"{number:g}"


def _percent(value: Any, digits: int = 1) -> str:
    number = finite_number(value)
    return NOT_AVAILABLE if number is None else f"{number:.{digits}%}"


def _cutoff(value: Any) -> str:
    """Format a cut-off as a percentage with the digits it has: 8%, 5.97%, 2.18%."""
    number = finite_number(value)
    return NOT_AVAILABLE if number is None else f"{number * 100:.4g}%"


def _range(low: Any, high: Any, text: Callable[[Any], str]) -> str:
    if finite_number(low) is None or finite_number(high) is None:
        return NOT_AVAILABLE
    return f"{text(low)} to {text(high)}"


def _interval_cells(entry: dict[str, Any] | None, digits: int) -> tuple[str, str]:
    entry = entry or {}
    value = _fixed(entry.get("value"), digits)
    return value, _range(entry.get("low"), entry.get("high"), partial(_fixed, digits=digits))


def _yes_no(value: Any) -> str:
    if value is None:
        return NOT_AVAILABLE
    return "yes" if value else "no"
