"""The console script's entry point, which handles a Ctrl-C even while the CLI's libraries load."""

from __future__ import annotations

import sys


def main() -> None:
    """Import the CLI and run it; a Ctrl-C during the import (about a second) exits as one later would."""
    try:
        from account_health.cli.app import main as run
    except KeyboardInterrupt:
        sys.stderr.write("interrupted; nothing half-written was kept\n")
        raise SystemExit(130) from None
    run()
