"""Run one nightly run and stop inside a chosen step, so that a test can SIGKILL the process there.

Usage: python nightly_child.py WORKSPACE AS_OF STEP. The process prints "PAUSED STEP" and sleeps once
the step is under way: at the step's first progress report for the ingest (inside the DuckDB
transaction) and the write (inside the operational store's transaction, after the scores), at the
step's start for the others.
"""

from __future__ import annotations

import sys
import time
from datetime import datetime

from account_health.config import load_workspace
from account_health.nightly import RunObserver, run_nightly
from account_health.workspace import open_stores

PAUSE_SECONDS = 120
PAUSE_ON_PROGRESS = ("ingest", "write")


class PausingObserver(RunObserver):
    def __init__(self, step: str) -> None:
        self.step = step

    def step_started(self, step: str) -> None:
        if step == self.step and step not in PAUSE_ON_PROGRESS:
            self._pause()

    def progress(self, step: str, label: str, done: int, total: int) -> None:
        if step == self.step:
            self._pause()

    def _pause(self) -> None:
        print(f"PAUSED {self.step}", flush=True)
        time.sleep(PAUSE_SECONDS)


def main() -> None:
    folder, as_of, step = sys.argv[1:4]
    workspace = load_workspace(folder)
    with open_stores(workspace, create=False) as (store, engine):
        run_nightly(workspace, store, engine, datetime.fromisoformat(as_of), observer=PausingObserver(step))
    print("FINISHED", flush=True)


if __name__ == "__main__":
    main()
