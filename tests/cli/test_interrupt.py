"""Ctrl-C during an ingest: one line, exit code 130, and nothing stored."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb

from account_health.sources.ingest import STAGE_PREFIX
from account_health.store import operational
from action_company import copy_workspace

EVENTS = 2_000_000


def _workspace(folder: Path) -> None:
    (folder / "account-health.toml").write_text(
        '[workspace]\nanalytical_store = "analytical.duckdb"\noperational_store = "sqlite:///operational.sqlite"\n\n'
        '[sources.usage]\ntable = "usage_events"\nfiles = ["events.csv"]\n',
        encoding="utf-8",
    )
    with (folder / "events.csv").open("w", encoding="utf-8") as handle:
        handle.write("event_id,account_id,user_id,occurred_at\n")
        for start in range(0, EVENTS, 100_000):
            handle.writelines(
                f"E{number},A{number % 50},U{number % 900},2025-03-{1 + number % 28:02d}T10:00:00Z\n"
                for number in range(start, start + 100_000)
            )


def test_ctrl_c_during_ingest_exits_130(tmp_path: Path) -> None:
    _workspace(tmp_path)
    child = subprocess.Popen(
        [sys.executable, "-m", "account_health.cli.app", "-w", str(tmp_path), "ingest"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # The stage folder appears once the ingest is reading rows, after the signal handler is in place.
    deadline = time.monotonic() + 120
    while not any(tmp_path.glob(f"{STAGE_PREFIX}*")) and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    child.send_signal(signal.SIGINT)
    _, stderr = child.communicate(timeout=120)

    assert child.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1] == "interrupted; nothing half-written was kept"
    assert "Traceback" not in stderr
    with duckdb.connect(str(tmp_path / "analytical.duckdb"), read_only=True) as connection:
        assert connection.execute("SELECT count(*) FROM loads").fetchone() == (0,)


def test_ctrl_c_while_train_writes_leaves_no_files(template: Path, tmp_path: Path) -> None:
    workspace = copy_workspace(template, tmp_path / "company")
    before = {path.name for path in workspace.models_dir.iterdir()}
    child = subprocess.Popen(
        [sys.executable, "-m", "account_health.cli.app", "-w", str(workspace.root), "train"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # The model file is written first; the report's plots take a moment more, before the registration.
    deadline = time.monotonic() + 300
    while child.poll() is None and time.monotonic() < deadline:
        if any(path.suffix == ".json" and path.name not in before for path in workspace.models_dir.iterdir()):
            break
        time.sleep(0.01)
    child.send_signal(signal.SIGINT)
    _, stderr = child.communicate(timeout=300)

    new = {path.name for path in workspace.models_dir.iterdir()} - before
    assert child.returncode == 130, stderr
    assert "Traceback" not in stderr
    # No file of the new model is left, unless the Ctrl-C came after its registration.
    if new:
        engine = operational.connect(workspace.operational_store_url)
        try:
            version = min(new).split(".")[0]
            assert operational.model_row(engine, version) is not None, new
        finally:
            engine.dispose()


# Sends the process a SIGINT when the CLI's import reaches DuckDB, then runs the console script's entry.
EARLY_INTERRUPT = """
import os, signal, sys

fired = []

def hook(event, arguments):
    if event == "import" and arguments[0] == "duckdb" and not fired:
        fired.append(True)
        os.kill(os.getpid(), signal.SIGINT)

sys.addaudithook(hook)
sys.argv = ["account-health", "--help"]
from account_health.cli.entry import main
main()
"""


def test_ctrl_c_while_cli_loads_exits_130() -> None:
    child = subprocess.run(
        [sys.executable, "-c", EARLY_INTERRUPT], capture_output=True, text=True, timeout=120
    )

    assert child.returncode == 130, child.stderr
    assert child.stderr == "interrupted; nothing half-written was kept\n"
