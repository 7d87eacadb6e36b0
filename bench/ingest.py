"""Benchmark: ingest of the quickstart company's exports into a fresh DuckDB store.

Usage: python bench/ingest.py [--accounts N] [--seed S] [--repeat R] [--dir DIR]

Generates the company once, or reuses DIR when it already contains one. Then, R times each and
alternating, it ingests the company into a new store and loads the same files with plain DuckDB as
the baseline (read_csv or read_parquet into a table, with no mapping, checks or versioning). Prints
wall-clock seconds per run, the medians and their ratio.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import duckdb

from account_health.config import Workspace, load_workspace
from account_health.sources.files import expand_files
from account_health.sources.ingest import ingest
from account_health.store.analytical import open_analytical_store
from account_health.synthetic import generate_company


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=None)
    arguments = parser.parse_args()

    folder = arguments.dir or Path(tempfile.mkdtemp(prefix="account-health-bench-"))
    if not (folder / "account-health.toml").exists():
        generate_company(folder, accounts=arguments.accounts, seed=arguments.seed)
    workspace = load_workspace(folder)

    ours, baseline = [], []
    for run in range(arguments.repeat):
        store_path = Path(tempfile.mkdtemp(prefix="account-health-store-")) / "analytical.duckdb"
        with open_analytical_store(store_path) as store:
            started = time.perf_counter()
            report = ingest(workspace, store)
            ours.append(time.perf_counter() - started)
        rows = sum(counts.read for counts in report.sources)
        baseline.append(_plain_duckdb_load(workspace))
        print(
            f"run {run + 1}: account-health {ours[-1]:.2f} s, plain DuckDB {baseline[-1]:.2f} s, {rows:,} rows"
        )
    ours_median, baseline_median = statistics.median(ours), statistics.median(baseline)
    print(
        f"median over {len(ours)} runs: account-health {ours_median:.2f} s, plain DuckDB {baseline_median:.2f} s, "
        f"ratio {ours_median / baseline_median:.1f}"
    )


def _plain_duckdb_load(workspace: Workspace) -> float:
    """Load every source file into its own table with DuckDB's readers alone; return the seconds taken."""
    connection = duckdb.connect(str(Path(tempfile.mkdtemp(prefix="account-health-plain-")) / "plain.duckdb"))
    connection.execute("SET enable_progress_bar = false")
    started = time.perf_counter()
    for index, name in enumerate(workspace.config.sources):
        for number, path in enumerate(expand_files(workspace.source_files(name), workspace.root, name)):
            reader = "read_parquet" if path.suffix == ".parquet" else "read_csv"
            connection.execute(f"CREATE TABLE t{index}_{number} AS SELECT * FROM {reader}(?)", [str(path)])
    elapsed = time.perf_counter() - started
    connection.close()
    return elapsed


if __name__ == "__main__":
    main()
