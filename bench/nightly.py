"""Benchmark: the nightly run on the quickstart company, step by step, against `score` alone.

Usage: python bench/nightly.py [--accounts N] [--seed S] [--repeat R] [--dir DIR]

Generates, ingests and trains the company once, or reuses DIR when it already contains a trained
workspace. Then, R times and alternating, it runs `score` for the default as-of date (the baseline:
signals, model and one write of the scores) and the nightly run for the same date (an ingest that
finds every row unchanged, signals, score, tier changes, actions with contact reads, and one
transaction for everything). Prints wall-clock seconds per run and per step, the medians and their
ratio. DuckDB's memory is capped at 3 GB.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from account_health.asof import default_as_of
from account_health.config import load_workspace
from account_health.nightly import STEPS, run_nightly
from account_health.scoring.score import score
from account_health.sources.ingest import ingest
from account_health.synthetic import generate_company
from account_health.training.train import train
from account_health.workspace import open_stores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=None)
    arguments = parser.parse_args()

    folder = arguments.dir or Path(tempfile.mkdtemp(prefix="account-health-bench-"))
    if not (folder / "models").is_dir():
        _prepare(folder, arguments.accounts, arguments.seed)
    workspace = load_workspace(folder)

    scored, nightly, steps = [], [], {step: [] for step in STEPS}
    with open_stores(workspace, create=False) as (store, engine):
        store.connection.execute("SET memory_limit = '3GB'")
        as_of = default_as_of(store)
        for run in range(arguments.repeat):
            started = time.perf_counter()
            result = score(workspace, store, engine, as_of)
            scored.append(time.perf_counter() - started)

            started = time.perf_counter()
            nightly_result = run_nightly(workspace, store, engine, as_of)
            nightly.append(time.perf_counter() - started)
            for step, seconds in nightly_result.timings.items():
                steps[step].append(seconds)
            timings = ", ".join(f"{step} {seconds:.2f}" for step, seconds in nightly_result.timings.items())
            print(
                f"run {run + 1}: score {scored[-1]:.2f} s, nightly {nightly[-1]:.2f} s ({timings}), "
                f"{len(result.scores):,} accounts, {nightly_result.summary()['tasks']}"
            )
    score_median, nightly_median = statistics.median(scored), statistics.median(nightly)
    print(
        f"median over {len(scored)} runs: score {score_median:.2f} s, nightly {nightly_median:.2f} s, "
        f"ratio {nightly_median / score_median:.1f}"
    )
    print(
        "median per step: "
        + ", ".join(f"{step} {statistics.median(values):.2f} s" for step, values in steps.items())
    )


def _prepare(folder: Path, accounts: int, seed: int) -> None:
    generate_company(folder, accounts=accounts, seed=seed)
    workspace = load_workspace(folder)
    with open_stores(workspace) as (store, engine):
        store.connection.execute("SET memory_limit = '3GB'")
        ingest(workspace, store)
        train(workspace, store, engine)


if __name__ == "__main__":
    main()
