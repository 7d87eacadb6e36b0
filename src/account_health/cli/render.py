"""Rich rendering of ingest counts, training reports, tiers and explanations."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
from rich.console import Console
from rich.table import Table

from account_health.scoring.explain import Explanation, reasons_for
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
            counts.source,
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
    """Print the training report; its first line says whether the model beats the base rate."""
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
    metrics = artifact["metrics"]
    if "roc_auc" in metrics:
        table = Table(
            title=f"Out-of-time hold-out ({len(artifact['holdout_snapshots'])} latest snapshots, {metrics['rows']:,} rows, {metrics['churned']:,} churned)",
            title_justify="left",
        )
        table.add_column("metric")
        table.add_column("value (95 % interval, resampled by account)", justify="right")
        table.add_row("ROC AUC", _interval(metrics["roc_auc"]))
        table.add_row("PR AUC", _interval(metrics["pr_auc"]))
        table.add_row(
            "log loss (base rate)", f"{metrics['log_loss']:.4f} ({metrics['log_loss_base_rate']:.4f})"
        )
        table.add_row("log-loss improvement over base rate", _interval(metrics["log_loss_improvement"], 4))
        table.add_row("Brier score (base rate)", f"{metrics['brier']:.4f} ({metrics['brier_base_rate']:.4f})")
        table.add_row("top-decile lift", f"{metrics['top_decile_lift']:.2f}")
        table.add_row(
            "calibration slope / intercept",
            f"{metrics['calibration_slope']:.2f} / {metrics['calibration_intercept']:.2f}",
        )
        for name, baseline in metrics.get("baselines", {}).items():
            table.add_row(f"baseline ROC AUC: {name}", _interval(baseline["roc_auc"]))
        console.print(table)
        console.print(tier_calibration_table(metrics["tiers"]))
    weights = Table(
        title="Learned weights (standardised coefficients; + raises churn risk)", title_justify="left"
    )
    weights.add_column("signal")
    weights.add_column("share of weight", justify="right")
    weights.add_column("coefficients")
    for signal, entry in sorted(artifact["weights"].items(), key=lambda item: -item[1]["share"]):
        coefficients = ", ".join(f"{name} {value:+.3f}" for name, value in entry["coefficients"].items())
        weights.add_row(signal, f"{entry['share']:.0%}", coefficients)
    console.print(weights)
    for caveat in artifact.get("caveats", []):
        console.print(f"[yellow]caveat:[/yellow] {caveat}")


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
    table.add_column("top reasons (log-odds)")
    for record in scores.head(limit).to_dict("records"):
        reasons = reasons_for(_plain_signals(record), record["contributions"], settings)
        pushing = [reason for reason in reasons if not math.isnan(reason.log_odds) and reason.log_odds > 0][
            :2
        ]
        text = "; ".join(f"{reason.text}, {reason.log_odds:+.2f}" for reason in pushing) or "-"
        table.add_row(
            str(record["account_id"]),
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


def explanation(console: Console, result: Explanation, horizon_days: int | None) -> None:
    mark = "" if result.validated else f" [bold red]{NOT_VALIDATED}[/bold red]:"
    window = f" within {horizon_days} days" if horizon_days else ""
    console.print(
        f"{result.account_id}:{mark} [{TIER_STYLES[result.tier]}]{result.tier}[/], churn probability "
        f"{result.probability:.1%}{window} (as of {result.as_of:%Y-%m-%d}, model {result.model_version})"
    )
    for reason in result.reasons:
        if math.isnan(reason.log_odds):
            console.print(f"  {reason.text}")
        else:
            console.print(f"  {reason.text}, {reason.log_odds:+.2f}")
    console.print(
        "[dim]Contributions are in log-odds against an average training account; + raises churn risk.[/dim]"
    )
