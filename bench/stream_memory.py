"""Benchmark: peak memory of ingesting one large export, as the file grows.

Usage: python bench/stream_memory.py --sizes-mb 500 2000 [--format csv|segment] [--dir DIR]
       [--memory-limit 2GB]

For each size it writes a seeded file of that many megabytes (a usage_events CSV, or Segment track
messages as JSON lines with one group call per user), then ingests it in a fresh Python process
into a fresh DuckDB store. The store's memory is capped with DuckDB's memory_limit, so DuckDB spills
to its temp folder instead of growing. The child reports its own peak resident set size (ru_maxrss).
When reading streams, peak RSS stays about the same while the file grows.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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


def write_csv(path: Path, size_bytes: int, rng: random.Random) -> None:
    with path.open("w", encoding="utf-8") as handle:
        handle.write("event_id,account_id,user_id,occurred_at,event\n")
        number = 0
        while handle.tell() < size_bytes:
            lines = []
            for _ in range(10_000):
                number += 1
                account = rng.randrange(2000)
                day = 1 + number % 28
                lines.append(
                    f"e{number},A{account},U{account}-{rng.randrange(30)},2024-03-{day:02d}T{number % 24:02d}:00:00Z,"
                    f"feature_{rng.randrange(40)}\n"
                )
            handle.write("".join(lines))


def write_segment(path: Path, size_bytes: int, rng: random.Random) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for user in range(20_000):
            group = {
                "type": "group",
                "messageId": f"g{user}",
                "userId": f"U{user}",
                "groupId": f"A{user % 2000}",
                "timestamp": "2024-01-01T00:00:00Z",
            }
            handle.write(json.dumps(group) + "\n")
        number = 0
        while handle.tell() < size_bytes:
            lines = []
            for _ in range(10_000):
                number += 1
                message = {
                    "type": "track",
                    "messageId": f"t{number}",
                    "userId": f"U{rng.randrange(20_000)}",
                    "event": f"feature_{rng.randrange(40)}",
                    "timestamp": f"2024-03-{1 + number % 28:02d}T{number % 24:02d}:00:00Z",
                    "properties": {"plan": "pro", "seats": rng.randrange(100)},
                }
                lines.append(json.dumps(message) + "\n")
            handle.write("".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes-mb", type=int, nargs="+", default=[500, 2000])
    parser.add_argument("--format", choices=("csv", "segment"), default="csv")
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--memory-limit", default="2GB")
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
            writer(export, size << 20, random.Random(size))
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
        result = subprocess.run(
            [sys.executable, "-c", CHILD, str(folder), arguments.memory_limit],
            capture_output=True,
            text=True,
            check=True,
        )
        rows, seconds, peak = result.stdout.split()
        print(
            f"{arguments.format} {export.stat().st_size / 2**20:,.0f} MB: {int(rows):,} rows in {float(seconds):.0f} s, "
            f"peak RSS {float(peak):,.0f} MB (DuckDB memory_limit {arguments.memory_limit})"
        )
        (folder / "analytical.duckdb").unlink(missing_ok=True)


if __name__ == "__main__":
    main()
