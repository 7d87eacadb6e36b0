"""bench/signals.py runs end to end at a tiny size, and its pandas baseline agrees with the backfill."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "signals.py"


def test_signal_benchmark_runs_at_a_tiny_size(tmp_path: Path) -> None:
    arguments = ["--events", "30000", "--accounts", "12", "--users", "600", "--days", "45"]
    arguments += [
        "--dir",
        str(tmp_path),
        "--memory-limit",
        "500MB",
        "--pandas-events",
        "8000",
        "--pandas-repeat",
        "1",
    ]

    result = subprocess.run(
        [sys.executable, str(BENCH), *arguments], capture_output=True, text=True, timeout=600
    )

    assert result.returncode == 0, result.stderr
    (output,) = tmp_path.glob("results-*.json")
    summary = json.loads(output.read_text())
    median = summary["median"]
    assert median["b_rows"] == 12 * 45
    assert median["distinct_rows"] > 0
    differences = summary["pandas"]["largest_differences"]
    assert differences["unmatched_rows"] == 0
    assert max(differences.values()) < 1e-9, differences
