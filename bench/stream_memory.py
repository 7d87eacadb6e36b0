"""Benchmark: peak memory and temp disk of ingesting one large export, as the file grows.

Usage: python bench/stream_memory.py --sizes-mb 500 2000 [--format csv|segment] [--dir DIR]
       [--memory-limit 2GB] [--min-free-gb 15]

For each size it writes a seeded file of that many megabytes (a usage_events CSV, or Segment track
messages as JSON lines with one group call per user), then ingests it in a fresh Python process
into a fresh DuckDB store. The store's memory is capped with DuckDB's memory_limit, so DuckDB spills
to its temp folder instead of growing. The child reports its own peak resident set size (ru_maxrss).
While it runs, the parent samples once a second the disk space allocated in the ingest's temp
folders: DuckDB's temp folder beside the store (`analytical.duckdb.tmp`) and the ingest's spill
folder. It stops the child when the free space on that disk falls below --min-free-gb.
When reading streams, peak RSS stays about the same while the file grows.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

from account_health.sources.ingest import STAGE_PREFIX

CHILD = """
import resource, sys, time
from pathlib import Path
from account_health.config import load_workspace
from account_health.sources.ingest import ingest
from account_health.store.analytical import open_analytical_store

folder, limit = Path(sys.argv[1]), sys.argv[2]
workspace = load_workspace(folder)
with open_analytical_store(folder / "analytical.duckdb") as store:
    store.connection.execute(f"SET memory_limit = '{limit}'")
    store.connection.execute("SET threads = 2")
    started = time.perf_counter()
    report = ingest(workspace, store)
    seconds = time.perf_counter() - started
counts = report.sources[-1]
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"{counts.read} {seconds:.1f} {peak_mb:.0f}")
"""


# Average bytes of a written row, to size a file: about 54 for CSV at these sizes, 190 for a track call.
CSV_ROW_BYTES = 54
SEGMENT_ROW_BYTES = 190


def write_csv(path: Path, size_bytes: int, seed: int) -> None:
    """Write about `size_bytes` of usage_events CSV, each row's fields drawn from a hash of its number.

    DuckDB writes it in a minute where a Python loop took half an hour for 5 GB.
    """
    rows = size_bytes // CSV_ROW_BYTES
    _copy(
        f"""SELECT 'e' || i AS event_id, 'A' || a AS account_id,
                  'U' || a || '-' || hash(i, {seed}, 'user') % 30 AS user_id,
                  printf('2024-03-%02dT%02d:00:00Z', 1 + i % 28, i % 24) AS occurred_at,
                  'feature_' || hash(i, {seed}, 'event') % 40 AS event
           FROM (SELECT i, hash(i, {seed}) % 2000 AS a FROM range(1, {rows + 1}) AS t(i))""",
        path,
        "(HEADER, DELIMITER ',')",
    )


def _copy(query: str, path: Path, options: str) -> None:
    connection = duckdb.connect()
    connection.execute("SET preserve_insertion_order = true")
    target = str(path).replace("'", "''")
    connection.execute(f"COPY ({query}) TO '{target}' {options}")
    connection.close()


def write_segment(path: Path, size_bytes: int, seed: int) -> None:
    """Write one group call per user, then track calls with properties, as about `size_bytes` of JSON lines."""
    rows = size_bytes // SEGMENT_ROW_BYTES
    groups = """SELECT 'group' AS type, 'g' || u AS messageId, 'U' || u AS userId, 'A' || u % 2000 AS groupId,
                        '2024-01-01T00:00:00Z' AS timestamp, NULL::VARCHAR AS event,
                        NULL::STRUCT(plan VARCHAR, seats BIGINT) AS properties
                 FROM range(20000) AS t(u)"""
    tracks = f"""SELECT 'track', 't' || i, 'U' || hash(i, {seed}, 'user') % 20000, NULL,
                        printf('2024-03-%02dT%02d:00:00Z', 1 + i % 28, i % 24),
                        'feature_' || hash(i, {seed}, 'event') % 40,
                        {{'plan': 'pro', 'seats': (hash(i, {seed}, 'seats') % 100)::BIGINT}}
                 FROM range(1, {rows + 1}) AS t(i)"""
    _copy(f"{groups} UNION ALL {tracks}", path, "(FORMAT json)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes-mb", type=int, nargs="+", default=[500, 2000])
    parser.add_argument("--format", choices=("csv", "segment"), default="csv")
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--memory-limit", default="2GB")
    parser.add_argument(
        "--min-free-gb",
        type=float,
        default=15,
        help="stop the ingest when the disk has less free space, in GB",
    )
    arguments = parser.parse_args()

    root = arguments.dir or Path(tempfile.mkdtemp(prefix="account-health-stream-"))
    for size in arguments.sizes_mb:
        folder = root / f"{arguments.format}-{size}mb"
        folder.mkdir(parents=True, exist_ok=True)
        name = "events.csv" if arguments.format == "csv" else "events.jsonl"
        export = folder / name
        if not export.exists():
            started = time.perf_counter()
            writer = write_csv if arguments.format == "csv" else write_segment
            writer(export, size << 20, size)
            print(
                f"wrote {export} ({export.stat().st_size / 2**20:,.0f} MB) in {time.perf_counter() - started:.0f} s"
            )
        fmt = "" if arguments.format == "csv" else 'format = "segment"\n'
        (folder / "account-health.toml").write_text(
            f'[workspace]\nanalytical_store = "analytical.duckdb"\n\n'
            f'[sources.events]\ntable = "usage_events"\n{fmt}files = ["{name}"]\n',
            encoding="utf-8",
        )
        (folder / "analytical.duckdb").unlink(missing_ok=True)
        load_before = os.getloadavg()
        rows, seconds, peak, peak_temp = _run_child(folder, arguments.memory_limit, arguments.min_free_gb)
        load_after = os.getloadavg()
        print(
            f"{arguments.format} {export.stat().st_size / 2**20:,.0f} MB: {rows:,} rows in {seconds:.0f} s, "
            f"peak RSS {peak:,.0f} MB, peak temp disk {peak_temp / 2**20:,.0f} MB "
            f"(DuckDB memory_limit {arguments.memory_limit}; load average "
            f"{load_before[0]:.1f} before, {load_after[0]:.1f} after)",
            flush=True,
        )
        (folder / "analytical.duckdb").unlink(missing_ok=True)


def _run_child(folder: Path, memory_limit: str, min_free_gb: float) -> tuple[int, float, float, int]:
    """Ingest the folder's workspace in a child process; return rows, seconds, peak RSS (MB) and peak temp bytes."""
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(folder), memory_limit],
        stdout=subprocess.PIPE,
        text=True,
    )
    peak_temp = 0
    while child.poll() is None:
        peak_temp = max(peak_temp, _temp_bytes(folder))
        if shutil.disk_usage(folder).free < min_free_gb * 2**30:
            child.kill()
            child.wait()
            shutil.rmtree(folder / "analytical.duckdb.tmp", ignore_errors=True)
            raise SystemExit(f"stopped the ingest: under {min_free_gb} GB free on the disk of {folder}")
        time.sleep(1)
    stdout, _ = child.communicate()
    if child.returncode != 0:
        raise SystemExit(f"the ingest failed with exit code {child.returncode}; its error is printed above")
    rows, seconds, peak = stdout.split()
    return int(rows), float(seconds), float(peak), peak_temp


def _temp_bytes(folder: Path) -> int:
    """Disk space allocated to the files of DuckDB's temp folder and of the ingest's spill folders."""
    roots = [folder / "analytical.duckdb.tmp", *folder.glob(f"{STAGE_PREFIX}*")]
    total = 0
    for root in roots:
        for path in root.rglob("*"):
            try:
                total += path.stat().st_blocks * 512
            except FileNotFoundError:
                # DuckDB and the ingest delete their temp files while this walks the folder.
                continue
    return total


if __name__ == "__main__":
    main()
