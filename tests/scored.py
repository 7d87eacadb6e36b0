"""Helpers shared by the API tests: the scoring dates, tier cut-offs and bearer headers."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa

from account_health.store import operational

SCORING_DATES = (datetime(2025, 10, 1), datetime(2025, 11, 15), datetime(2025, 12, 31))
# The test company's probabilities stay below about 0.35, so lower cut-offs give every tier members.
TIERS = """
[tiers]
red = 0.22
orange = 0.15
yellow = 0.08
green = 0.04
"""


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def latest_scores(engine: sa.Engine) -> list[dict]:
    """Return the latest date's scores, riskiest first."""
    return operational.read_scores(engine)


def rewrite_scores(url: str, seconds: float, ready_file: str) -> int:
    """Re-score the latest date again and again for `seconds`, as a nightly run would; return the count.

    Each pass replaces every score of the date in one transaction, with probabilities nudged so each
    pass really changes the rows. `ready_file` is created after the first pass, so a reader can start.
    """
    import time
    from pathlib import Path

    engine = operational.connect(url)
    rows = operational.read_scores(engine)
    as_of, model_version = rows[0]["as_of"], rows[0]["model_version"]
    passes = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        run_id = operational.start_run(engine, "score", as_of)
        nudge = 0.001 * (passes % 3)
        fresh = [
            {**row, "run_id": run_id, "probability": min(row["probability"] + nudge, 1.0)} for row in rows
        ]
        operational.replace_scores(engine, as_of, model_version, fresh)
        operational.finish_run(engine, run_id, "succeeded", {"accounts": len(fresh)})
        passes += 1
        if passes == 1:
            Path(ready_file).touch()
    engine.dispose()
    return passes


@contextmanager
def serve(folder: Path, *options: str) -> Iterator[str]:
    """Run `account-health serve` for the workspace on a free loopback port; yield its base URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    command = [
        sys.executable,
        "-m",
        "account_health.cli.app",
        "-w",
        str(folder),
        "serve",
        "--port",
        str(port),
    ]
    # A session of its own, so that stopping the server also stops its worker processes, which would
    # otherwise keep the output pipe open and block the read below.
    process = subprocess.Popen(
        [*command, *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    # Worker processes import the whole product before they answer, which takes long on a busy machine.
    deadline = time.monotonic() + 180
    try:
        while True:
            try:
                with urllib.request.urlopen(f"{base}/v1/status", timeout=1):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    _stop_group(process, signal.SIGKILL)
                    output = process.communicate(timeout=30)[0]
                    raise RuntimeError(f"account-health serve did not start on {base}: {output}") from None
                time.sleep(0.2)
        yield base
    finally:
        _stop_group(process, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            _stop_group(process, signal.SIGKILL)
            process.wait(timeout=30)


def _stop_group(process: subprocess.Popen[str], sig: signal.Signals) -> None:
    """Send `sig` to the server and every process of its session, if any is still running."""
    with suppress(ProcessLookupError):
        os.killpg(process.pid, sig)
