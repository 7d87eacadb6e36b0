from __future__ import annotations

import json
import re
from pathlib import Path

from account_health.config import load_workspace
from console import run_cli


def test_quickstart_matches_truth(tmp_path: Path):
    folder = tmp_path / "quickstart"
    result = run_cli("quickstart", "--dir", str(folder), "--accounts", "500", "--seed", "3")
    assert result.returncode == 0, result.stderr
    output = result.stdout

    assert re.search(r"^validated: beats the base rate", output, re.MULTILINE), output
    learned, true = re.search(
        r"hold-out ROC AUC \([\d,]+ rows\)\s*│\s*([\d.]+)\s*│\s*([\d.]+)", output
    ).groups()
    assert abs(float(learned) - float(true)) < 0.05
    for signal in ("usage", "sentiment", "support", "champion", "integrations"):
        assert f"weight share: {signal}" in output
    for tier in ("Red", "Orange", "Yellow", "Green", "Dark-Green"):
        assert tier in output
    assert "The 10 riskiest accounts" in output
    assert (folder / "truth" / "truth.json").is_file()
    assert list((folder / "models").glob("*.json"))

    riskiest = re.search(r"account-health -w \S+ explain (\S+)", output).group(1)
    explained = run_cli("-w", str(folder), "explain", riskiest)
    assert explained.returncode == 0, explained.stderr
    assert explained.stdout.startswith(f"{riskiest}: ")
    assert "DAU/MAU" in explained.stdout

    # Every source but churn events goes through a vendor adapter, usage as Segment track calls.
    formats = {name: source.format for name, source in load_workspace(folder).config.sources.items()}
    assert formats["usage_events"] == "segment"
    assert [name for name, format_name in formats.items() if format_name in ("auto", "csv", "parquet")] == [
        "churn_events",
        "integrations",
    ]

    # The nightly run re-reads the same exports and finds every row unchanged.
    nightly = run_cli("-w", str(folder), "run", "--json")
    assert nightly.returncode == 0, nightly.stderr
    ingested = json.loads(nightly.stdout)["ingest"]["sources"]
    assert ingested, nightly.stdout
    for source in ingested:
        assert source["read"] == source["unchanged"] > 0, source


def test_quickstart_refuses_a_folder_it_did_not_make(tmp_path):
    workspace = tmp_path / "mine"
    workspace.mkdir()
    (workspace / "account-health.toml").write_text("# my own workspace\n")

    result = run_cli("quickstart", "--dir", str(workspace), "--accounts", "500")

    assert result.returncode == 1
    assert "not empty and was not made by quickstart" in result.stderr
    assert (workspace / "account-health.toml").read_text() == "# my own workspace\n"


def test_quickstart_names_a_file_given_as_folder(tmp_path):
    file_path = tmp_path / "notes.txt"
    file_path.write_text("mine\n")

    result = run_cli("quickstart", "--dir", str(file_path), "--accounts", "500")

    assert result.returncode == 1
    assert f"{file_path} is a file, not a folder" in result.stderr
    assert file_path.read_text() == "mine\n"
