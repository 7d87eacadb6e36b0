"""Benchmark: GET /v1/accounts/{id}/health at a fixed request rate, alone and during a nightly run.

Usage: python bench/api.py [--dir DIR] [--accounts N] [--rate R] [--seconds S] [--workers W]
                           [--connections C] [--port P] [--no-nightly]

Uses the quickstart workspace in DIR, creating it first with `account-health quickstart` when DIR
has none. Starts `account-health serve` on 127.0.0.1 and drives the riskiest account's health
endpoint with `hey` (Debian package `hey`), which runs on the same machine and shares its cores:
C connections (default 10), each capped at R/C requests per second, for S seconds. It then repeats the load
while `account-health run` runs the nightly job for the latest scored date in a loop (ingest
of unchanged exports, signals, score, tier changes, actions, write). Prints one Markdown table row per
phase with p50, p99, the achieved rate, the responses that were not 200, and the load average.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from account_health.config import load_workspace
from account_health.store import operational
from account_health.store.tokens import create_token

CLI = [sys.executable, "-m", "account_health.cli.app"]


@dataclass
class LoadResult:
    phase: str
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    ok: int
    not_ok: int
    errors: list[str]
    load_before: float
    load_after: float
    server_cpu_ms_per_request: float = float("nan")
    nightly_runs: int | None = None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--accounts", type=int, default=2000)
    parser.add_argument("--rate", type=int, default=500, help="Requests per second in all.")
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument(
        "--connections",
        type=int,
        default=10,
        help="hey's connections, each capped at RATE/CONNECTIONS requests/s. hey starts them together, so "
        "each tick sends one request per connection at once: fewer connections give smaller bursts.",
    )
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port.")
    parser.add_argument("--no-nightly", action="store_true", help="Skip the phase during nightly runs.")
    arguments = parser.parse_args()
    if shutil.which("hey") is None:
        sys.exit("hey not found; install it with `apt-get install -y hey`")

    folder = arguments.dir or Path(tempfile.mkdtemp(prefix="account-health-bench-api-"))
    if not (folder / "account-health.toml").exists():
        subprocess.run(
            [*CLI, "quickstart", "--dir", str(folder), "--accounts", str(arguments.accounts)], check=True
        )
    workspace = load_workspace(folder)
    engine = operational.open_operational_store(workspace.operational_store_url)
    token = create_token(engine, "read", "bench/api.py")[1]
    riskiest = operational.read_scores(engine)[0]
    scored = len(operational.read_scores(engine))
    engine.dispose()

    port = arguments.port or _free_port()
    url = f"http://127.0.0.1:{port}/v1/accounts/{riskiest['account_id']}/health"
    server = _start_server(folder, port, arguments.workers)
    try:
        results = []
        for phase in ("alone", "during nightly runs"):
            if phase == "during nightly runs" and arguments.no_nightly:
                continue
            cpu_before = _server_cpu_seconds(server.pid)
            if phase == "alone":
                result = _drive(url, token, arguments, phase)
            else:
                result = _drive_during_nightly_runs(url, token, arguments, folder, riskiest["as_of"])
            served = max(result.ok + result.not_ok, 1)
            result.server_cpu_ms_per_request = 1000 * (_server_cpu_seconds(server.pid) - cpu_before) / served
            results.append(result)
    finally:
        server.terminate()
        server.wait(timeout=30)

    print(
        f"\n{scored:,} accounts scored; {arguments.rate} requests/s requested for {arguments.seconds} s over "
        f"{arguments.connections} connections by hey; {arguments.workers} server worker(s); {os.cpu_count()} cores\n"
    )
    print(
        "| phase | achieved requests/s | p50 | p99 | 200 | other | server CPU per request "
        "| load average before, after |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for result in results:
        phase = result.phase + (f" ({result.nightly_runs} runs)" if result.nightly_runs is not None else "")
        print(
            f"| {phase} | {result.requests_per_second:.0f} | {result.p50_ms:.1f} ms | {result.p99_ms:.1f} ms | "
            f"{result.ok:,} | {result.not_ok:,} | {result.server_cpu_ms_per_request:.2f} ms | "
            f"{result.load_before:.1f}, {result.load_after:.1f} |"
        )
        for error in result.errors:
            print(f"    {error}")


def _drive(url: str, token: str, arguments: argparse.Namespace, phase: str) -> LoadResult:
    load_before = os.getloadavg()[0]
    command = [
        "hey",
        "-z",
        f"{arguments.seconds}s",
        "-c",
        str(arguments.connections),
        "-q",
        f"{arguments.rate / arguments.connections:g}",
        "-H",
        f"Authorization: Bearer {token}",
        url,
    ]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return _parse_hey(output, phase, load_before, os.getloadavg()[0])


def _drive_during_nightly_runs(
    url: str, token: str, arguments: argparse.Namespace, folder: Path, as_of: object
) -> LoadResult:
    stop = threading.Event()
    runs = 0

    def nightly_loop() -> None:
        nonlocal runs
        while not stop.is_set():
            subprocess.run(
                [*CLI, "-w", str(folder), "run", "--as-of", f"{as_of:%Y-%m-%d}"],
                capture_output=True,
                check=True,
            )
            runs += 1

    runner = threading.Thread(target=nightly_loop)
    runner.start()
    try:
        result = _drive(url, token, arguments, "during nightly runs")
    finally:
        stop.set()
        runner.join()
    result.nightly_runs = runs
    return result


def _parse_hey(output: str, phase: str, load_before: float, load_after: float) -> LoadResult:
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p50 = float(re.search(r"50% in ([\d.]+) secs", output).group(1))  # type: ignore[union-attr]
    p99 = float(re.search(r"99% in ([\d.]+) secs", output).group(1))  # type: ignore[union-attr]
    statuses = {int(code): int(count) for code, count in re.findall(r"\[(\d{3})\]\s+(\d+) responses", output)}
    errors = re.findall(r"^\s+\[\d+\]\s+(?!\d+ responses).*$", output.split("Error distribution:")[-1], re.M)
    ok = statuses.get(200, 0)
    not_ok = sum(count for code, count in statuses.items() if code != 200)
    if "Error distribution:" in output:
        not_ok += sum(
            int(count) for count in re.findall(r"^\s+\[(\d+)\]", output.split("Error distribution:")[1], re.M)
        )
    else:
        errors = []
    return LoadResult(phase, rate, 1000 * p50, 1000 * p99, ok, not_ok, errors[:5], load_before, load_after)


def _start_server(folder: Path, port: int, workers: int) -> subprocess.Popen[bytes]:
    server = subprocess.Popen(
        [*CLI, "-w", str(folder), "serve", "--port", str(port), "--workers", str(workers)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/status", timeout=1):
                return server
        except OSError:
            time.sleep(0.3)
    server.terminate()
    sys.exit(f"account-health serve did not answer on port {port} within 60 s")


def _server_cpu_seconds(pid: int) -> float:
    """Return the user plus system CPU seconds of the server process and its worker processes."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # After the command name: state, ppid, ..., utime and stime are the 12th and 13th fields.
        if int(entry.name) == pid or int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


if __name__ == "__main__":
    main()
