"""Check the model against the generator's truth on a large synthetic company.

Usage: python bench/truth.py [--accounts N] [--seed S] [--dir DIR]

Generates the company (default 5,000 accounts), ingests it and trains with the generated config.
Prints the hold-out ROC AUC of the model and of the true probabilities on the same rows, and each
signal's learned and true weight share. For each tier it prints whether the corrected interval of
observed churn contains the tier's mean predicted probability. Takes a few minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import warnings
from pathlib import Path

import pandas as pd
from sklearn.metrics import roc_auc_score

from account_health.cli.quickstart import weight_shares_against_truth
from account_health.config import load_workspace
from account_health.errors import NotValidatedWarning
from account_health.sources.ingest import ingest
from account_health.synthetic import generate_company
from account_health.training.train import train
from account_health.workspace import open_stores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dir", type=Path, default=None)
    arguments = parser.parse_args()

    folder = arguments.dir or Path(tempfile.mkdtemp(prefix="account-health-truth-"))
    started = time.perf_counter()
    if not (folder / "account-health.toml").exists():
        generate_company(folder, accounts=arguments.accounts, seed=arguments.seed)
    workspace = load_workspace(folder)
    with open_stores(workspace) as (store, engine), warnings.catch_warnings():
        warnings.simplefilter("ignore", NotValidatedWarning)
        ingest(workspace, store)
        result = train(workspace, store, engine)
    print(f"{arguments.accounts:,} accounts, seed {arguments.seed}: {time.perf_counter() - started:.0f} s")
    print(result.artifact["validation_reason"])

    labels = pd.read_csv(folder / "truth" / "labels.csv", parse_dates=["as_of"])
    holdout = result.frame.merge(
        labels[["account_id", "as_of", "true_probability"]], on=["account_id", "as_of"]
    )
    learned_auc = roc_auc_score(holdout["label"], holdout["probability"])
    true_auc = roc_auc_score(holdout["label"], holdout["true_probability"])
    print(
        f"hold-out ROC AUC on {len(holdout):,} rows: model {learned_auc:.3f}, truth {true_auc:.3f}, "
        f"difference {learned_auc - true_auc:+.3f}"
    )

    truth = json.loads((folder / "truth" / "truth.json").read_text(encoding="utf-8"))
    print("signal          learned  true   difference")
    for signal, (learned, true) in weight_shares_against_truth(result.artifact, truth).items():
        print(f"{signal:<15} {learned:6.3f}  {true:6.3f}  {learned - true:+.3f}")

    print("tier         rows   mean predicted  observed  corrected interval   contains the mean")
    for tier in result.artifact["metrics"]["tiers"]:
        if not tier["rows"]:
            print(f"{tier['tier']:<11} {0:>6}")
            continue
        print(
            f"{tier['tier']:<11} {tier['rows']:>6}   {tier['mean_predicted']:13.3f}  {tier['observed']:8.3f}  "
            f"{tier['observed_low']:.3f} to {tier['observed_high']:.3f}   {'yes' if tier['consistent'] else 'no'}"
        )


if __name__ == "__main__":
    main()
