"""Rich rendering of ingest counts, training reports, tiers and explanations."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import pandas as pd
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from account_health.scoring.explain import Explanation, Reason, ScoreChange, SignalChange, reasons_for
from account_health.scoring.score import tier_distribution
from account_health.sources.ingest import IngestReport

TIER_STYLES = {
    "Red": "bold red",
    "Orange": "dark_orange",
    "Yellow": "yellow",
    "Green": "green",
    "Dark-Green": "dark_green",
}
NOT_VALIDATED = "NOT VALIDATED"


def as_of_text(as_of: datetime) -> str:
    """Return an as-of instant as its date, with the time when it is not midnight UTC, so that two score
    sets of one day print apart."""
    if as_of.hour or as_of.minute or as_of.second or as_of.microsecond:
        return f"{as_of:%Y-%m-%d %H:%M:%S} UTC"
    return f"{as_of:%Y-%m-%d}"


def ingest_table(report: IngestReport) -> Table:
    table = Table(title=f"Ingest {report.load_id}", title_justify="left")
    for column in (
        "source",
        "table",
        "load",
        "read",
        "inserted",
        "new version",
        "unchanged",
        "quarantined",
        "unattributed",
    ):
        table.add_column(column, justify="left" if column in ("source", "table", "load") else "right")
    for counts in report.sources:
        table.add_row(
            escape(counts.source),
            counts.table,
            "backfill" if counts.backfill else "incremental",
            f"{counts.read:,}",
            f"{counts.inserted:,}",
            f"{counts.new_version:,}",
            f"{counts.unchanged:,}",
            f"[red]{counts.quarantined:,}[/red]" if counts.quarantined else "0",
            f"[yellow]{counts.unattributed:,}[/yellow]" if counts.unattributed else "0",
        )
    return table


def _interval(entry: dict[str, float], digits: int = 3) -> str:
    return f"{entry['value']:.{digits}f} ({entry['low']:.{digits}f} to {entry['high']:.{digits}f})"


def training_report(console: Console, artifact: dict[str, Any]) -> None:
    """Print the training report; its first line states whether the model beats the base rate."""
    _print_summary(console, artifact)

    metrics = artifact["metrics"]
    if "roc_auc" in metrics:
        console.print(_holdout_table(artifact, metrics))
        console.print(tier_calibration_table(metrics["tiers"]))
    fitted = artifact.get("tiers_fitted")
    if fitted:
        console.print(_fitted_cutoffs_line(fitted))

    console.print(_weights_table(artifact))
    if artifact.get("regularisation"):
        console.print(escape(_regularisation_line(artifact["regularisation"])))
    for caveat in artifact.get("caveats", []):
        console.print(f"[yellow]caveat:[/yellow] {escape(caveat)}")


def _print_summary(console: Console, artifact: dict[str, Any]) -> None:
    validated = artifact["validated"]
    style = "bold green" if validated else "bold red"
    console.print(f"[{style}]{artifact['validation_reason']}[/{style}]")
    console.print(
        f"model {artifact['model_version']}: {artifact['rows']:,} account-snapshots of {artifact['accounts']:,} accounts, "
        f"{artifact['churn_events']:,} churn events, snapshots {artifact['training_start'][:10]} to "
        f"{artifact['snapshots'][-1][:10]} every {artifact['snapshot_every_days']} days, horizon {artifact['horizon_days']} days"
    )
    console.print(
        f"signals used: {', '.join(artifact['signals_used'])}"
        + (
            f"; missing (no source or no data): {', '.join(artifact['signals_missing'])}"
            if artifact["signals_missing"]
            else ""
        )
    )


def _holdout_table(artifact: dict[str, Any], metrics: dict[str, Any]) -> Table:
    table = Table(
        title=f"Out-of-time hold-out ({len(artifact['holdout_snapshots'])} latest snapshots, {metrics['rows']:,} rows, {metrics['churned']:,} churned)",
        title_justify="left",
    )
    table.add_column("metric")
    table.add_column("value (95 % interval, resampled by account)", justify="right")
    table.add_row("ROC AUC", _interval(metrics["roc_auc"]))
    table.add_row("PR AUC", _interval(metrics["pr_auc"]))
    table.add_row("log loss (base rate)", f"{metrics['log_loss']:.4f} ({metrics['log_loss_base_rate']:.4f})")
    table.add_row("log-loss improvement over base rate", _interval(metrics["log_loss_improvement"], 4))
    table.add_row("Brier score (base rate)", f"{metrics['brier']:.4f} ({metrics['brier_base_rate']:.4f})")
    table.add_row("top-decile lift", f"{metrics['top_decile_lift']:.2f}")
    table.add_row(
        "calibration slope / intercept",
        f"{metrics['calibration_slope']:.2f} / {metrics['calibration_intercept']:.2f}",
    )
    for name, baseline in metrics.get("baselines", {}).items():
        table.add_row(f"baseline ROC AUC: {name}", _interval(baseline["roc_auc"]))
    return table


def _weights_table(artifact: dict[str, Any]) -> Table:
    weights = Table(
        title="Learned weights (standardised coefficients; + raises churn risk)", title_justify="left"
    )
    weights.add_column("signal")
    weights.add_column("share of weight", justify="right")
    weights.add_column("coefficients")
    # Model files written before coefficient intervals existed have none; the column is left out.
    intervals = artifact.get("coefficient_intervals")
    if intervals is not None:
        weights.add_column("95 % intervals (clustered by account)")
    for signal, entry in sorted(artifact["weights"].items(), key=lambda item: -item[1]["share"]):
        coefficients = ", ".join(f"{name} {value:+.3f}" for name, value in entry["coefficients"].items())
        label = (
            f"{signal} [yellow](flagged: every interval spans 0)[/yellow]" if entry.get("flagged") else signal
        )
        row = [label, f"{entry['share']:.0%}", coefficients]
        if intervals is not None:
            row.append(
                ", ".join(_coefficient_interval(name, intervals.get(name)) for name in entry["coefficients"])
            )
        weights.add_row(*row)
    return weights


def _coefficient_interval(name: str, entry: dict[str, Any] | None) -> str:
    low, high = (entry or {}).get("low"), (entry or {}).get("high")
    if low is None or high is None or math.isnan(low) or math.isnan(high):
        return f"{name} n/a"
    return f"{name} {low:+.3f} to {high:+.3f}"


def _regularisation_line(choice: dict[str, Any]) -> str:
    sources = {
        "config": "set in [training] regularisation_c",
        "cross-validation": "lowest mean validation log loss on time-ordered folds grouped by account",
        "fallback": "the fallback, because no validation fold had both churned and retained rows",
    }
    chosen = choice.get("chosen_c")
    value = "n/a" if chosen is None else f"{chosen:g}"
    return f"regularisation: C = {value} (inverse L2 strength; {sources.get(str(choice.get('source')), 'chosen')})"


def _fitted_cutoffs_line(fitted: dict[str, Any]) -> str:
    def cutoffs(values: dict[str, float]) -> str:
        return ", ".join(f"{name} {value:.4g}" for name, value in values.items())

    verdict = (
        "every tier's hold-out churn is in its band"
        if fitted["all_bands_met"]
        else f"[yellow]bands missed: {', '.join(fitted['missed'])}[/yellow]"
    )
    return (
        f"tier cut-offs fitted to {escape('[tiers.bands]')} on {fitted['rows']:,} hold-out rows: {cutoffs(fitted['cutoffs'])} "
        f"(configured: {cutoffs(fitted['configured'])}); {verdict}"
    )


def tier_calibration_table(tiers: list[dict[str, Any]]) -> Table:
    table = Table(
        title="Calibration per tier on the hold-out (Wilson interval, Bonferroni-corrected over 5 tiers)",
        title_justify="left",
    )
    for column in ("tier", "rows", "mean predicted", "observed churn", "interval", "consistent"):
        table.add_column(column, justify="left" if column == "tier" else "right")
    for entry in tiers:
        if not entry["rows"]:
            table.add_row(entry["tier"], "0", "-", "-", "-", "-")
            continue
        table.add_row(
            f"[{TIER_STYLES[entry['tier']]}]{entry['tier']}[/]",
            f"{entry['rows']:,}",
            f"{entry['mean_predicted']:.1%}",
            f"{entry['observed']:.1%}",
            f"{entry['observed_low']:.1%} to {entry['observed_high']:.1%}",
            "yes" if entry["consistent"] else "[red]no[/red]",
        )
    return table


def tier_table(scores: pd.DataFrame, validated: bool) -> Table:
    suffix = "" if validated else f" [red]({NOT_VALIDATED})[/red]"
    table = Table(title=f"Tiers{suffix}", title_justify="left")
    table.add_column("tier")
    table.add_column("accounts", justify="right")
    table.add_column("share", justify="right")
    for name, count, share in tier_distribution(scores):
        table.add_row(f"[{TIER_STYLES[name]}]{name}[/]", f"{count:,}", f"{share:.1%}")
    return table


def riskiest_table(scores: pd.DataFrame, settings: dict[str, Any], validated: bool, limit: int = 10) -> Table:
    suffix = "" if validated else f" [red]({NOT_VALIDATED})[/red]"
    table = Table(title=f"The {limit} riskiest accounts{suffix}", title_justify="left")
    table.add_column("account")
    table.add_column("tier")
    table.add_column("churn probability", justify="right")
    table.add_column("top reasons (log-odds, percentage points of churn probability)")
    for record in scores.head(limit).to_dict("records"):
        reasons = reasons_for(
            _plain_signals(record), record["contributions"], settings, record.get("probability_points")
        )
        pushing = [reason for reason in reasons if not math.isnan(reason.log_odds) and reason.log_odds > 0][
            :2
        ]
        text = "; ".join(f"{escape(reason.text)}, {_push(reason)}" for reason in pushing) or "-"
        table.add_row(
            escape(str(record["account_id"])),
            f"[{TIER_STYLES[record['tier']]}]{record['tier']}[/]",
            f"{record['probability']:.1%}",
            text,
        )
    return table


def _plain_signals(record: dict[str, Any]) -> dict[str, Any]:
    return {
        key: (None if isinstance(value, float) and math.isnan(value) else value)
        for key, value in record.items()
    }


def _push(reason: Reason) -> str:
    """Format a contribution as log-odds, with probability points when they are known."""
    if math.isnan(reason.points):
        return f"{reason.log_odds:+.2f} log-odds"
    return f"{reason.log_odds:+.2f} log-odds ({reason.points:+.1f} points)"


def _tier(name: str) -> str:
    return f"[{TIER_STYLES[name]}]{name}[/]"


def _held_note(result: Explanation) -> str:
    """Say when hysteresis keeps the declared tier away from the tier of the cut-offs alone."""
    if result.raw_tier is None or result.raw_tier == result.tier:
        return ""
    return f" (the cut-offs alone give {_tier(result.raw_tier)}; the tier holds until a cut-off is crossed by the margin)"


def explanation(console: Console, result: Explanation, horizon_days: int | None) -> None:
    mark = "" if result.validated else f" [bold red]{NOT_VALIDATED}[/bold red]:"
    window = f" within {horizon_days} days" if horizon_days else ""
    console.print(
        f"{escape(result.account_id)}:{mark} {_tier(result.tier)}, churn probability "
        f"{result.probability:.1%}{window} (as of {as_of_text(result.as_of)}, model {result.model_version})"
        f"{_held_note(result)}"
    )
    for reason in result.reasons:
        if math.isnan(reason.log_odds):
            console.print(f"  {escape(reason.text)}")
        else:
            console.print(f"  {escape(reason.text)}, {_push(reason)}")
    console.print(
        "[dim]Contributions are in log-odds against an average training account, and in percentage points of "
        "churn probability against the same account with that signal at its training average; + raises churn "
        "risk. Points of several signals do not add up exactly.[/dim]"
    )


def score_change(console: Console, change: ScoreChange, horizon_days: int | None) -> None:
    """Print why an account's score moved between two stored scores, largest signal move first."""
    before, after = change.before, change.after
    window = f" within {horizon_days} days" if horizon_days else ""
    unvalidated = [result.model_version for result in (before, after) if not result.validated]
    marks = [f"{NOT_VALIDATED} ({version})" for version in dict.fromkeys(unvalidated)]
    mark = f" [bold red]{', '.join(marks)}[/bold red]:" if marks else ""
    move = 100 * (after.probability - before.probability)
    console.print(
        f"{escape(after.account_id)}:{mark} {_tier(before.tier)} -> {_tier(after.tier)}, churn probability "
        f"{before.probability:.1%} -> {after.probability:.1%}{window} ({move:+.1f} points), "
        f"{as_of_text(before.as_of)} -> {as_of_text(after.as_of)}{_held_note(after)}"
    )
    if change.model_changed:
        console.print(
            f"[bold yellow]model changed from {before.model_version} to {after.model_version} between these "
            "dates; part of the move is the model[/bold yellow]"
        )
    for signal_change in change.changes:
        console.print(f"  {escape(_change_line(signal_change))}")
    console.print(
        "[dim]Each line: the signal's value then and now, then its contribution then -> now in log-odds and "
        "in percentage points of churn probability, with the change in brackets.[/dim]"
    )


def _change_line(change: SignalChange) -> str:
    if math.isnan(change.log_odds_move):
        return f"{change.text} (not used by either model)"

    def value(number: float, digits: int) -> str:
        return "unused" if math.isnan(number) else f"{number:+.{digits}f}"

    return (
        f"{change.text}: {value(change.log_odds_before, 2)} -> {value(change.log_odds_after, 2)} log-odds "
        f"({change.log_odds_move:+.2f}), {value(change.points_before, 1)} -> {value(change.points_after, 1)} "
        f"points ({change.points_move:+.1f})"
    )


def monitor_summary(console: Console, report: Any) -> None:
    """Print the monitoring report's verdict, alerts and the latest tier distribution."""
    if report.retrain_recommended:
        console.print(
            f"[bold red]Retrain recommended[/bold red] (model {escape(report.model_version)}, as of {report.as_of:%Y-%m-%d}):"
        )
        for reason in report.retrain_reasons:
            console.print(f"  {reason.kind}: {escape(reason.message)}")
    else:
        console.print(
            f"[green]No retrain needed[/green] (model {escape(report.model_version)}, as of {report.as_of:%Y-%m-%d}): "
            f"{escape(report.verdict())}"
        )
    for alert in report.alerts:
        if alert.kind != "retrain":
            console.print(f"[yellow]alert[/yellow] {alert.kind}: {escape(alert.message)}")
    latest = report.latest_distribution
    if latest is not None:
        shares = ", ".join(f"{tier} {latest.shares[tier]:.1%}" for tier in TIER_STYLES)
        console.print(f"tiers on {latest.last_date:%Y-%m-%d} ({latest.scores:,} accounts): {shares}")
