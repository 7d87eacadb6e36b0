"""Benchmark: rows per second of the Segment adapter and of a whole Segment ingest.

Usage: python bench/segment_ingest.py [--rows N] [--repeat R] [--dir DIR] [--baseline-python PATH]

Writes a seeded Segment export once, as the quickstart writes it: a group call and an identify call
per user, then N track calls as JSON lines, none with a groupId, so each track call takes its
account from the user's group call. Then, R times, a fresh Python process reads the export through
the adapter alone (rows out of `SegmentAdapter.read`), and another ingests it into a fresh DuckDB
store. With --baseline-python (the interpreter of a checkout of the code to compare against), each
run of this checkout alternates with a run of the baseline on the same files. Prints the seconds and
rows/s of every run, the medians, and the ratio of the medians.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ACCOUNTS = 2000
USERS = 30_000
EVENTS = ("dashboard.viewed", "report.exported", "comment.added", "alert.created", "search.run")

CHILD = """
import sys, time
from pathlib import Path
from account_health.config import load_workspace
from account_health.sources.ingest import ingest
from account_health.sources.vendors import adapter_for
from account_health.store.analytical import open_analytical_store

folder, what = Path(sys.argv[1]), sys.argv[2]
workspace = load_workspace(folder)
started = time.perf_counter()
if what == "adapter":
    config = workspace.config.sources["usage"]
    paths = [folder / name for name in config.files]
    rows = sum(part.batch.table.num_rows for part in adapter_for("segment").read(paths, config, "usage_events"))
else:
    with open_analytical_store(folder / "store.duckdb") as store:
        report = ingest(workspace, store)
    rows = next(counts.read for counts in report.sources if counts.source == "usage")
print(rows, time.perf_counter() - started)
"""


def write_export(folder: Path, rows: int, rng: random.Random) -> None:
    """Write accounts.csv, users.jsonl (group and identify calls) and tracks.jsonl (track calls)."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "accounts.csv").open("w", encoding="utf-8") as handle:
        handle.write("account_id,name\n")
        handle.writelines(f"acct-{number:05d},Account {number}\n" for number in range(ACCOUNTS))
    with (folder / "users.jsonl").open("w", encoding="utf-8") as handle:
        for number in range(USERS):
            user = f"u-{number:06d}"
            group = {
                "type": "group",
                "messageId": f"grp-{user}",
                "userId": user,
                "groupId": f"acct-{number % ACCOUNTS:05d}",
                "timestamp": "2000-01-01T00:00:00Z",
            }
            identify = {
                "type": "identify",
                "messageId": f"idn-{user}",
                "userId": user,
                "traits": {"email": f"{user}@example.com", "is_internal": False},
                "timestamp": "2000-01-01T00:00:01Z",
            }
            handle.write(json.dumps(group) + "\n" + json.dumps(identify) + "\n")
    with (folder / "tracks.jsonl").open("w", encoding="utf-8") as handle:
        for start in range(0, rows, 10_000):
            lines = []
            for number in range(start, min(rows, start + 10_000)):
                second = number * 7
                day, rest = divmod(second, 86_400)
                instant = f"2024-{1 + day // 28 % 12:02d}-{1 + day % 28:02d}T{rest // 3600:02d}:{rest // 60 % 60:02d}:{rest % 60:02d}Z"
                message = {
                    "type": "track",
                    "messageId": f"ev-{number}",
                    "userId": f"u-{rng.randrange(USERS):06d}",
                    "event": rng.choice(EVENTS),
                    "timestamp": instant,
                    "receivedAt": instant,
                }
                lines.append(json.dumps(message) + "\n")
            handle.write("".join(lines))
    (folder / "account-health.toml").write_text(
        '[workspace]\nanalytical_store = "store.duckdb"\n\n'
        '[sources.accounts]\ntable = "accounts"\nfiles = ["accounts.csv"]\n\n'
        '[sources.usage]\ntable = "usage_events"\nformat = "segment"\n'
        'files = ["tracks.jsonl", "users.jsonl"]\nloaded_at = "received_at"\n',
        encoding="utf-8",
    )


def run_child(python: str, folder: Path, what: str) -> tuple[int, float]:
    (folder / "store.duckdb").unlink(missing_ok=True)
    result = subprocess.run(
        [python, "-c", CHILD, str(folder), what], capture_output=True, text=True, check=True
    )
    rows, seconds = result.stdout.split()
    (folder / "store.duckdb").unlink(missing_ok=True)
    return int(rows), float(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="track calls in the export")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--baseline-python", default=None, help="interpreter of the checkout to compare")
    arguments = parser.parse_args()

    folder = arguments.dir or Path(tempfile.mkdtemp(prefix="account-health-segment-"))
    if not (folder / "tracks.jsonl").exists():
        write_export(folder, arguments.rows, random.Random(0))
    pythons = {"this checkout": sys.executable}
    if arguments.baseline_python:
        pythons["baseline"] = arguments.baseline_python

    seconds: dict[tuple[str, str], list[float]] = {}
    for run in range(1, arguments.repeat + 1):
        for label, python in pythons.items():
            for what in ("adapter", "ingest"):
                rows, elapsed = run_child(python, folder, what)
                seconds.setdefault((label, what), []).append(elapsed)
                print(
                    f"run {run} {label} {what}: {rows:,} rows in {elapsed:.1f} s, {rows / elapsed:,.0f} rows/s, "
                    f"load average {os.getloadavg()[0]:.1f}"
                )
    for (label, what), values in seconds.items():
        median = statistics.median(values)
        print(f"median {label} {what}: {median:.1f} s, {rows / median:,.0f} rows/s")
    if arguments.baseline_python:
        for what in ("adapter", "ingest"):
            ratio = statistics.median(seconds[("baseline", what)]) / statistics.median(
                seconds[("this checkout", what)]
            )
            print(f"{what}: this checkout is {ratio:.1f} times as fast as the baseline")


if __name__ == "__main__":
    main()
