"""`account-health quickstart`: a generated company run through the whole main job."""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from sklearn.metrics import roc_auc_score

from account_health.cli.render import ingest_table, riskiest_table, tier_table, training_report
from account_health.config import load_workspace
from account_health.errors import NotValidatedWarning
from account_health.scoring.score import score
from account_health.signals.registry import signal_of
from account_health.sources.ingest import ingest
from account_health.training.train import TrainingResult, train
from account_health.workspace import open_stores


def run_quickstart(
    console: Console, directory: Path, accounts: int, seed: int, progress_factory: Callable[[], Progress]
) -> None:
    """Generate, ingest, train and score; print the report, the tiers and the riskiest accounts."""
    from account_health.synthetic import generate_company

    started = time.perf_counter()
    with progress_factory() as progress:
        task = progress.add_task(f"generating {accounts:,} accounts", total=None)
        # Every source but churn events is written in a vendor's format, usage events as Segment track
        # calls, so the ingest runs the same adapters as on a company's real exports.
        company = generate_company(directory, accounts=accounts, seed=seed, layout="vendor")
        progress.update(task, completed=1, total=1)
    console.print(f"generated a synthetic company in {directory} ({time.perf_counter() - started:.0f} s)")

    workspace = load_workspace(directory)
    with open_stores(workspace) as (store, engine):
        with progress_factory() as progress:
            tasks: dict[str, Any] = {}

            def advance(source: str, file: str, done: int, total: int) -> None:
                if source not in tasks:
                    tasks[source] = progress.add_task(f"ingesting {source}", total=total)
                progress.update(tasks[source], completed=done, total=total)

            report = ingest(workspace, store, progress=advance)
        console.print(ingest_table(report))

        console.print("[dim]training...[/dim]")
        with warnings.catch_warnings():
            # The training report's first line carries the verdict.
            warnings.simplefilter("ignore", NotValidatedWarning)
            result = train(workspace, store, engine)
        training_report(console, result.artifact)
        report_files = result.report.paths() if result.report is not None else []
        for path in [result.path, *report_files]:
            console.print(f"saved {path}", markup=False)
        truth_comparison(console, company.truth_dir, result)

        scored = score(workspace, store, engine)
    console.print(f"scored {len(scored.scores):,} accounts as of {scored.as_of:%Y-%m-%d}")
    console.print(tier_table(scored.scores, scored.validated))
    console.print(riskiest_table(scored.scores, result.artifact["signal_settings"], scored.validated))
    console.print(f"finished in {time.perf_counter() - started:.0f} s; workspace: {directory.resolve()}")
    console.print(f"next: account-health -w {directory} explain {scored.scores['account_id'].iloc[0]}")


def truth_comparison(console: Console, truth_dir: Path, result: TrainingResult) -> None:
    """Print the hold-out AUC next to the AUC of the true probabilities, and learned next to true weight shares."""
    truth = json.loads((truth_dir / "truth.json").read_text(encoding="utf-8"))
    labels = pd.read_csv(truth_dir / "labels.csv", parse_dates=["as_of"])
    holdout = result.frame.merge(
        labels[["account_id", "as_of", "true_probability"]], on=["account_id", "as_of"]
    )
    table = Table(title="Against the generator's truth", title_justify="left")
    table.add_column("measure")
    table.add_column("learned", justify="right")
    table.add_column("true", justify="right")
    if holdout["label"].nunique() == 2:
        table.add_row(
            f"hold-out ROC AUC ({len(holdout):,} rows)",
            f"{roc_auc_score(holdout['label'], holdout['probability']):.3f}",
            f"{roc_auc_score(holdout['label'], holdout['true_probability']):.3f}",
        )
    for signal, (learned, true) in weight_shares_against_truth(result.artifact, truth).items():
        table.add_row(f"weight share: {signal}", f"{learned:.0%}", f"{true:.0%}")
    console.print(table)


def weight_shares_against_truth(
    artifact: dict[str, Any], truth: dict[str, Any]
) -> dict[str, tuple[float, float]]:
    """Learned and true share of each signal, both on the model's standardised columns.

    The truth fills a missing feature with a fixed value, so on the model's columns its weight on a
    signal's missing-value indicator is the sum over the signal's features of
    coefficient x (fill value - the model's imputation value).
    """
    columns = artifact["model"]["features"]
    imputed = {column["source"]: column["impute"] for column in columns if column["kind"] == "value"}
    true_weights: dict[str, float] = {}
    for column in columns:
        signal = column["signal"]
        if column["kind"] == "value":
            raw = float(truth["coefficients"].get(column["source"], 0.0))
        else:
            raw = sum(
                float(truth["coefficients"].get(feature, 0.0))
                * (float(truth["fill_values"].get(feature, imputed[feature])) - imputed[feature])
                for feature in imputed
                if signal_of(feature).name == signal
            )
        true_weights[signal] = true_weights.get(signal, 0.0) + abs(raw * column["scale"])
    total = sum(true_weights.values()) or 1.0
    return {
        signal: (artifact["weights"][signal]["share"], true_weights.get(signal, 0.0) / total)
        for signal in artifact["weights"]
    }


__all__ = ["run_quickstart", "truth_comparison", "weight_shares_against_truth"]
