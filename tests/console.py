"""Run the account-health console command in a child process, as a user's shell would."""

from __future__ import annotations

import subprocess
import sys


def run_cli(*arguments: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "account_health.cli.app", *arguments],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
