"""Opening the analytical store while another process writes to it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from account_health.errors import ConfigError
from account_health.store.analytical import open_analytical_store

HOLD = "import duckdb, sys; connection = duckdb.connect(sys.argv[1]); print('ready', flush=True); sys.stdin.read()"


def test_store_held_by_another_process(tmp_path: Path) -> None:
    path = tmp_path / "analytical.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(ConfigError) as raised:
            open_analytical_store(path)
    finally:
        holder.communicate("", timeout=60)

    message = str(raised.value)
    assert "because another process is using it" in message
    assert "wait for that process" in message
    assert "point [workspace] analytical_store" not in message
