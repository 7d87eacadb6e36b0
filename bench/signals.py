"""Benchmark: the point-in-time signal backfill and the nightly update against a bare DuckDB distinct.

Usage: python bench/signals.py [--events N] [--accounts A] [--users U] [--days D] [--seed S]
                               [--repeat R] [--dir DIR] [--memory-limit 3GB] [--pandas-events M]

Generates seeded event data (bench/signal_data.py) once per size under DIR, then R times: builds a
fresh store (small tables through `ingest`, events straight into the canonical table with their
availability instants), and measures on it

  (a) the bare DuckDB statement materialising SELECT DISTINCT account_id, user_id, day of the events;
  (b) the full point-in-time backfill: rebuilding the usage aggregate, then all five signals for every
      account at every midnight of the period (`backfill_signals`);
  (c) the nightly update for one new day of events: the incremental aggregate refresh plus
      `compute_signals` at the next as-of instant, in a new process that opens the store as the
      nightly run does (`--nightly-in-process` measures it in this process instead, right after (b));

with the peak resident memory of the measuring process during each, and the CPU seconds of all its
threads during (a) and (b), which a busy machine changes less than wall time. Then it runs the same
backfill and a plain pandas implementation of the five signals (bench/pandas_signals.py) on a subset
of about `--pandas-events` events (the first accounts), compares their values and reports the time
ratio.
Results go to DIR/results-<size>.json.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pandas_signals import compare, pandas_signals
from signal_data import START, Size, generate

from account_health.config import Workspace, load_workspace
from account_health.signals import compute_signals
from account_health.signals.aggregate import refresh_usage_aggregate
from account_health.signals.backfill import backfill_signals
from account_health.sources.ingest import ingest
from account_health.store.analytical import AnalyticalStore, open_analytical_store

SMALL_SOURCES = {
    "accounts": ("accounts", "accounts.parquet"),
    "tickets": ("tickets", "tickets.parquet"),
    "sentiment": ("sentiment_responses", "sentiment.parquet"),
    "contacts": ("contacts", "contacts.parquet"),
    "changes": ("contact_changes", "contact_changes.parquet"),
    "integrations": ("integrations", "integrations.parquet"),
}
EVENTS_LOAD = 1_000
NEW_DAY_LOAD = 1_001


class PeakMemory:
    """Samples this process's resident memory (VmRSS) every 50 ms; `peak` is the largest since reset."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def reset(self) -> None:
        self.peak = _rss()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, _rss())


def _rss() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def say(message: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {message}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    defaults = Size()
    parser.add_argument("--events", type=int, default=defaults.events)
    parser.add_argument("--accounts", type=int, default=defaults.accounts)
    parser.add_argument("--users", type=int, default=defaults.users)
    parser.add_argument("--days", type=int, default=defaults.days)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--dir", type=Path, default=Path("bench-output"))
    parser.add_argument("--memory-limit", default="3GB", help="DuckDB memory_limit")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--pandas-events", type=int, default=1_000_000, help="0 skips the pandas comparison")
    parser.add_argument("--pandas-repeat", type=int, default=3)
    parser.add_argument(
        "--reuse-store",
        action="store_true",
        help="keep a store loaded by an earlier run instead of loading again",
    )
    parser.add_argument(
        "--nightly-in-process",
        action="store_true",
        help="measure (c) in the process that ran (b) instead of in a new one",
    )
    parser.add_argument("--nightly-child", type=Path, help=argparse.SUPPRESS)
    arguments = parser.parse_args()

    size = Size(arguments.events, arguments.accounts, arguments.users, arguments.days, arguments.seed)
    memory = PeakMemory()
    if arguments.nightly_child is not None:
        settings = {"memory_limit": arguments.memory_limit, "threads": arguments.threads}
        settings["temp"] = arguments.dir / "spill"
        print(json.dumps(nightly_update(arguments.nightly_child, size, settings, memory)))
        return
    say(f"generating or reusing {size.label} under {arguments.dir}")
    data = generate(arguments.dir, size)
    settings = {
        "memory_limit": arguments.memory_limit,
        "threads": arguments.threads,
        "temp": arguments.dir / "spill",
    }

    runs = []
    for run in range(arguments.repeat):
        say(f"run {run + 1} of {arguments.repeat}")
        folder = arguments.dir / f"run-{size.label}"
        runs.append(
            measure(data, folder, size, settings, memory, arguments.reuse_store, arguments.nightly_in_process)
        )
        say(f"run {run + 1}: {json.dumps({k: round(v, 2) for k, v in runs[-1].items()})}")

    summary: dict[str, Any] = {
        "size": size.label,
        "runs": runs,
        "median": {key: statistics.median(run[key] for run in runs) for key in runs[0]},
    }
    median = summary["median"]
    summary["ratio_backfill_to_distinct"] = median["b_backfill_s"] / median["a_distinct_s"]
    summary["ratio_backfill_to_distinct_cpu"] = median["b_cpu_s"] / median["a_cpu_s"]
    if arguments.pandas_events:
        summary["pandas"] = pandas_comparison(
            data, arguments.dir, size, arguments.pandas_events, arguments.pandas_repeat, settings
        )
    summary["ru_maxrss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    output = arguments.dir / f"results-{size.label}.json"
    output.write_text(json.dumps(summary, indent=2, default=str))
    say(f"medians: {json.dumps({k: round(v, 2) for k, v in median.items()})}")
    say(
        f"(b) / (a) = {summary['ratio_backfill_to_distinct']:.2f} in wall time, "
        f"{summary['ratio_backfill_to_distinct_cpu']:.2f} in CPU time; results in {output}"
    )


def measure(
    data: Path,
    folder: Path,
    size: Size,
    settings: dict[str, Any],
    memory: PeakMemory,
    reuse: bool = False,
    nightly_in_process: bool = False,
) -> dict[str, float]:
    """Run (a), (b) and (c) on one store and return their seconds and peak resident bytes."""
    workspace = write_workspace(folder, data)
    reuse = reuse and workspace.analytical_store_path.exists()
    if not reuse:
        workspace.analytical_store_path.unlink(missing_ok=True)
    result: dict[str, float] = {}
    with open_store(workspace, settings) as store:
        started = time.perf_counter()
        if reuse:
            store.connection.execute(f"DELETE FROM usage_events WHERE _load_id = {NEW_DAY_LOAD}")
        else:
            load_small_tables(workspace, store)
            load_events(store, str(data / "events-*.parquet"), EVENTS_LOAD, None)
        result["load_s"] = time.perf_counter() - started
        say(f"loaded {count(store, 'usage_events'):,} events in {result['load_s']:.1f} s")

        memory.reset()
        started = time.perf_counter()
        # CPU seconds of every thread of this process: on a shared machine, wall time also counts waiting.
        cpu_started = time.process_time()
        store.connection.execute(
            "CREATE OR REPLACE TEMP TABLE _bare AS SELECT DISTINCT account_id, user_id, CAST(occurred_at AS DATE) AS day "
            "FROM usage_events"
        )
        result["a_distinct_s"] = time.perf_counter() - started
        result["a_cpu_s"] = time.process_time() - cpu_started
        result["a_peak_bytes"] = memory.peak
        result["distinct_rows"] = count(store, "_bare")
        store.connection.execute("DROP TABLE _bare")
        say(
            f"(a) distinct (account, user, day): {result['a_distinct_s']:.1f} s, {result['distinct_rows']:,.0f} rows"
        )

        memory.reset()
        started = time.perf_counter()
        cpu_started = time.process_time()
        aggregate = refresh_usage_aggregate(workspace, store, rebuild=True)
        result["b_aggregate_s"] = time.perf_counter() - started
        for step, seconds in aggregate.steps.items():
            result[f"b_aggregate_{step.replace(' ', '_').replace('-', '_')}_s"] = seconds
        say(f"(b) aggregate rebuilt: {aggregate.user_days:,} user-days in {result['b_aggregate_s']:.1f} s")
        instants = [START + timedelta(days=day) for day in range(1, size.days + 1)]
        report = backfill_signals(workspace, store, instants, progress=_progress)
        result["b_backfill_s"] = time.perf_counter() - started
        result["b_cpu_s"] = time.process_time() - cpu_started
        result["b_peak_bytes"] = memory.peak
        result["b_rows"] = report.rows
        result["b_dirty_pairs"] = report.dirty_pairs
        for step, seconds in report.seconds.items():
            result[f"b_{step.replace(' ', '_')}_s"] = seconds
        say(
            f"(b) backfill: {report.rows:,} rows in {result['b_backfill_s']:.1f} s ({report.dirty_pairs:,} dirty pairs)"
        )

        new_day_available = START + timedelta(days=size.days + 1, hours=2)
        load_events(store, str(data / "new-day.parquet"), NEW_DAY_LOAD, new_day_available)
        if nightly_in_process:
            result.update(nightly_update(folder, size, settings, memory, store))
    if not nightly_in_process:
        result.update(nightly_in_new_process(folder, size, settings))
    say(
        f"(c) nightly update: {result['c_new_events']:,.0f} new events, refresh {result['c_refresh_s']:.1f} s, "
        f"with signals for {result['c_accounts']:,.0f} accounts {result['c_update_s']:.1f} s"
    )
    return result


def nightly_update(
    folder: Path,
    size: Size,
    settings: dict[str, Any],
    memory: PeakMemory,
    store: AnalyticalStore | None = None,
) -> dict[str, float]:
    """Refresh the aggregate with the new day and compute the signals at the next midnight: step (c).

    Opens the store in `folder` unless given one; opening it is not part of the time.
    """
    workspace = load_workspace(folder)
    with open_store(workspace, settings) if store is None else nullcontext(store) as opened:
        memory.reset()
        started = time.perf_counter()
        # CPU seconds of every thread of this process: on a shared machine, wall time also counts waiting.
        cpu_started = time.process_time()
        update = refresh_usage_aggregate(workspace, opened)
        refreshed = time.perf_counter() - started
        refreshed_cpu = time.process_time() - cpu_started
        frame = compute_signals(workspace, opened, [START + timedelta(days=size.days + 2)])
        return {
            "c_refresh_s": refreshed,
            "c_update_s": time.perf_counter() - started,
            "c_refresh_cpu_s": refreshed_cpu,
            "c_update_cpu_s": time.process_time() - cpu_started,
            "c_peak_bytes": memory.peak,
            "c_new_events": update.new_events,
            "c_accounts": len(frame),
        }


def nightly_in_new_process(folder: Path, size: Size, settings: dict[str, Any]) -> dict[str, float]:
    """Run `nightly_update` in a new Python process, as the nightly run would, and return its result."""
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        f"--nightly-child={folder}",
        f"--events={size.events}",
        f"--accounts={size.accounts}",
        f"--users={size.users}",
        f"--days={size.days}",
        f"--seed={size.seed}",
        f"--dir={Path(settings['temp']).parent}",
        f"--memory-limit={settings['memory_limit']}",
        f"--threads={settings['threads']}",
    ]
    child = subprocess.run(command, check=True, capture_output=True, text=True)
    result: dict[str, float] = json.loads(child.stdout.strip().splitlines()[-1])
    return result


def _progress(step: str, done: int, total: int) -> None:
    say(f"    {step}: {done} of {total} instants")


def write_workspace(folder: Path, data: Path, subset: Path | None = None) -> Workspace:
    folder.mkdir(parents=True, exist_ok=True)
    source = subset or data
    lines = ['[workspace]\nanalytical_store = "analytical.duckdb"\n']
    for name, (table, file) in SMALL_SOURCES.items():
        lines.append(f'[sources.{name}]\ntable = "{table}"\nfiles = ["{source / file}"]\n')
    lines.append(f'[sources.events]\ntable = "usage_events"\nfiles = ["{source / "events-*.parquet"}"]\n')
    (folder / "account-health.toml").write_text("\n".join(lines))
    return load_workspace(folder)


@contextmanager
def open_store(workspace: Workspace, settings: dict[str, Any]) -> Iterator[AnalyticalStore]:
    with open_analytical_store(workspace.analytical_store_path) as store:
        settings["temp"].mkdir(parents=True, exist_ok=True)
        store.connection.execute(f"SET memory_limit = '{settings['memory_limit']}'")
        store.connection.execute(f"SET threads = {int(settings['threads'])}")
        store.connection.execute(f"SET temp_directory = '{settings['temp']}'")
        store.connection.execute("SET preserve_insertion_order = false")
        yield store


def load_small_tables(workspace: Workspace, store: AnalyticalStore) -> None:
    ingest(workspace, store, sources=list(SMALL_SOURCES), backfill=True)


def load_events(store: AnalyticalStore, pattern: str, load_id: int, available_at: datetime | None) -> None:
    """Write events into the canonical table as a load would: the first version's columns plus metadata.

    With `available_at` None, rows are available at max(occurred_at, loaded_at) (a backfill with a
    `loaded_at` column); otherwise at max(occurred_at, available_at).
    """
    if available_at is None:
        available = "greatest(occurred_at, coalesce(loaded_at, occurred_at))"
    else:
        available = f"greatest(occurred_at, TIMESTAMP '{available_at:%Y-%m-%d %H:%M:%S}')"
    store.connection.execute(
        textwrap.dedent(
            f"""INSERT INTO usage_events
            SELECT event_id, account_id, user_id, occurred_at, event, {available}, now()::TIMESTAMP, {load_id},
                   'events', filename, file_row_number, '', FALSE
            FROM read_parquet(?, filename = true, file_row_number = true)"""
        ),
        [pattern],
    )


def count(store: AnalyticalStore, table: str) -> int:
    return int(store.connection.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0])


def pandas_comparison(
    data: Path, folder: Path, size: Size, target_events: int, repeat: int, settings: dict[str, Any]
) -> dict[str, Any]:
    """Backfill and the pandas implementation on the first accounts holding about `target_events` events."""
    subset = folder / f"subset-{size.label}-{target_events}"
    accounts = _subset_accounts(data, target_events)
    if not (subset / "done").exists():
        _write_subset(data, subset, accounts)
    say(f"pandas comparison on {len(accounts)} accounts")
    workspace = write_workspace(folder / f"run-subset-{size.label}", data, subset)
    workspace.analytical_store_path.unlink(missing_ok=True)
    instants = [START + timedelta(days=day) for day in range(1, size.days + 1)]
    ours, theirs = [], []
    for _run in range(repeat):
        workspace.analytical_store_path.unlink(missing_ok=True)
        with open_store(workspace, settings) as store:
            load_small_tables(workspace, store)
            load_events(store, str(subset / "events-*.parquet"), EVENTS_LOAD, None)
            events = count(store, "usage_events")
            started = time.perf_counter()
            refresh_usage_aggregate(workspace, store, rebuild=True)
            backfill_signals(workspace, store, instants)
            ours.append(time.perf_counter() - started)
            backfilled = store.connection.execute("SELECT * FROM signal_backfill").df()
        started = time.perf_counter()
        expected = pandas_signals(subset, instants)
        theirs.append(time.perf_counter() - started)
        say(f"  subset of {events:,} events: account-health {ours[-1]:.1f} s, pandas {theirs[-1]:.1f} s")
    differences = compare(backfilled, expected)
    return {
        "events": events,
        "accounts": len(accounts),
        "account_health_s": ours,
        "pandas_s": theirs,
        "ratio_pandas_to_ours": statistics.median(theirs) / statistics.median(ours),
        "largest_differences": differences,
    }


def _subset_accounts(data: Path, target_events: int) -> list[str]:
    counts = duckdb.sql(
        f"SELECT account_id, count(*) AS n FROM read_parquet('{data}/events-*.parquet') GROUP BY 1 "
        "ORDER BY CAST(split_part(account_id, '-', 2) AS INTEGER)"
    ).fetchall()
    running = np.cumsum([row[1] for row in counts])
    last = int(np.searchsorted(running, target_events)) + 1
    return [row[0] for row in counts[:last]]


def _write_subset(data: Path, subset: Path, accounts: list[str]) -> None:
    subset.mkdir(parents=True, exist_ok=True)
    connection = duckdb.connect()
    connection.execute("CREATE TABLE chosen (account_id VARCHAR)")
    connection.executemany("INSERT INTO chosen VALUES (?)", [[account] for account in accounts])
    contacts = f"read_parquet('{data}/contacts.parquet')"
    for _, file in SMALL_SOURCES.values():
        source = f"read_parquet('{data / file}')"
        if file == "contact_changes.parquet":
            query = f"SELECT * FROM {source} WHERE contact_id IN (SELECT contact_id FROM {contacts} WHERE account_id IN (SELECT account_id FROM chosen))"
        else:
            query = f"SELECT * FROM {source} WHERE account_id IN (SELECT account_id FROM chosen)"
        connection.execute(f"COPY ({query}) TO '{subset / file}' (FORMAT parquet)")
    for name in ("events-*.parquet", "new-day.parquet"):
        target = "events-0000.parquet" if name.startswith("events") else name
        connection.execute(
            f"COPY (SELECT * FROM read_parquet('{data / name}') WHERE account_id IN (SELECT account_id FROM chosen)) "
            f"TO '{subset / target}' (FORMAT parquet)"
        )
    (subset / "done").write_text("")


if __name__ == "__main__":
    main()
