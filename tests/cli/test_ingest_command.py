"""`account-health ingest` and `quarantine`: the command `ingest` prints, run as printed, after first and later loads."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import duckdb
from typer.testing import CliRunner

from account_health.cli.app import app
from vendor_workspace import make_workspace

runner = CliRunner()
CONFIG = """\
[sources.accounts]
table = "accounts"
files = ["accounts.csv"]

[sources.tickets]
table = "tickets"
files = ["tickets.csv"]
"""
ACCOUNTS = "account_id\nA1\n"


def _ingest_and_query(folder: Path) -> tuple[str, list[tuple[object, ...]]]:
    """Run `ingest`, then the quarantine command it printed; return the output and the values listed."""
    result = runner.invoke(app, ["-w", str(folder), "ingest"])
    assert result.exit_code == 0, result.output
    commands = [
        line.strip() for line in result.stdout.splitlines() if line.strip().startswith("account-health ")
    ]
    assert len(commands) == 1, result.stdout
    words = shlex.split(commands[0])
    assert words[:2] == ["account-health", "-w"]
    assert Path(words[2]) == folder
    listed = runner.invoke(app, [*words[1:], "--format", "json"])
    assert listed.exit_code == 0, listed.output
    values = json.loads(listed.stdout)
    return result.stdout, [
        (value["source"], value["row_number"], value["column"], value["value"]) for value in values
    ]


def test_quarantine_command_lists_this_load(tmp_path: Path) -> None:
    tickets = "ticket_id,account_id,created_at\nT1,A1,2025-01-01\nT2,A1,soon\nT3,A1,later\n"
    make_workspace(tmp_path, CONFIG, {"accounts.csv": ACCOUNTS, "tickets.csv": tickets})

    output, first = _ingest_and_query(tmp_path)
    assert "2 rows quarantined" in output, output
    assert first == [("tickets", 2, "created_at", "soon"), ("tickets", 3, "created_at", "later")]

    # The same export again: the rows are rejected again and the new load's command lists them.
    output, again = _ingest_and_query(tmp_path)
    assert "2 rows quarantined" in output, output
    assert again == first

    # A fixed row drops out of the list; a newly broken one appears.
    (tmp_path / "tickets.csv").write_text(
        "ticket_id,account_id,created_at\nT1,A1,2025-01-01\nT2,A1,2025-01-02\nT3,A1,later\nT4,A1,never\n"
    )
    output, fixed = _ingest_and_query(tmp_path)
    assert "2 rows quarantined" in output, output
    assert fixed == [("tickets", 3, "created_at", "later"), ("tickets", 4, "created_at", "never")]

    with duckdb.connect(str(tmp_path / "analytical.duckdb"), read_only=True) as connection:
        stored = connection.execute("SELECT count(*) FROM quarantine").fetchall()
    # Each rejected value is stored once, however many loads reject it.
    assert stored == [(3,)]


def test_quarantine_command_quotes_workspace(tmp_path: Path) -> None:
    folder = tmp_path / "it's a workspace"
    folder.mkdir()
    tickets = "ticket_id,account_id,created_at\nT1,A1,soon\n"
    make_workspace(folder, CONFIG, {"accounts.csv": ACCOUNTS, "tickets.csv": tickets})

    _output, selected = _ingest_and_query(folder)

    assert selected == [("tickets", 1, "created_at", "soon")]


def test_quarantine_formats_and_filters(tmp_path: Path) -> None:
    tickets = "ticket_id,account_id,created_at\nT1,A1,=HYPERLINK(1)\nT2,A1,soon\n"
    make_workspace(tmp_path, CONFIG, {"accounts.csv": ACCOUNTS, "tickets.csv": tickets})
    assert runner.invoke(app, ["-w", str(tmp_path), "ingest"]).exit_code == 0

    table = runner.invoke(app, ["-w", str(tmp_path), "quarantine"])
    as_csv = runner.invoke(app, ["-w", str(tmp_path), "quarantine", "--source", "tickets", "--format", "csv"])
    other = runner.invoke(app, ["-w", str(tmp_path), "quarantine", "--source", "accounts"])
    unknown = runner.invoke(app, ["-w", str(tmp_path), "quarantine", "--source", "nope"])
    missing = runner.invoke(app, ["-w", str(tmp_path), "quarantine", "--load", "99"])

    assert table.exit_code == 0, table.output
    assert "soon" in table.stdout
    assert "tickets.csv" in table.stdout
    lines = as_csv.stdout.splitlines()
    assert lines[0].startswith("last_load_id,load_id,source,table,file,row_number,column,value,reason")
    assert len(lines) == 3
    # A formula-like value is written so that a spreadsheet shows it as text.
    assert ",'=HYPERLINK(1)," in lines[1]
    assert other.stdout.strip() == "no quarantined values"
    assert unknown.exit_code != 0
    assert "'nope' is not a configured source" in unknown.output
    assert missing.stdout.startswith("no quarantined values for load 99;")


def test_quarantine_csv_escapes_nul(tmp_path: Path) -> None:
    tickets = "ticket_id,account_id,created_at,status\nT1,A1,2025-01-01,op\x00en\n"
    make_workspace(tmp_path, CONFIG, {"accounts.csv": ACCOUNTS, "tickets.csv": tickets})
    assert runner.invoke(app, ["-w", str(tmp_path), "ingest"]).exit_code == 0

    as_csv = runner.invoke(app, ["-w", str(tmp_path), "quarantine", "--format", "csv"])

    assert as_csv.exit_code == 0, as_csv.output
    assert "\x00" not in as_csv.stdout
    assert "op\\x00en" in as_csv.stdout
