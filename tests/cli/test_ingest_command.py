"""`account-health ingest`: the quarantine query it prints, run as printed, after first and later loads."""

from __future__ import annotations

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
    """Run `ingest`, then run the printed quarantine command; return the output and the rows it selects."""
    result = runner.invoke(app, ["-w", str(folder), "ingest"])
    assert result.exit_code == 0, result.output
    commands = [line.strip() for line in result.stdout.splitlines() if line.strip().startswith("duckdb ")]
    assert len(commands) == 1, result.stdout
    program, database, sql = shlex.split(commands[0])
    assert program == "duckdb"
    assert Path(database) == folder / "analytical.duckdb"
    with duckdb.connect(database, read_only=True) as connection:
        selected = connection.execute(sql).fetchall()
        names = [column[0] for column in connection.description or []]
    picked = [names.index(name) for name in ("source", "row_number", "column", "value")]
    return result.stdout, [tuple(row[index] for index in picked) for row in selected]


def test_quarantine_query_finds_this_load(tmp_path: Path) -> None:
    tickets = "ticket_id,account_id,created_at\nT1,A1,2025-01-01\nT2,A1,soon\nT3,A1,later\n"
    make_workspace(tmp_path, CONFIG, {"accounts.csv": ACCOUNTS, "tickets.csv": tickets})

    output, first = _ingest_and_query(tmp_path)
    assert "2 rows quarantined" in output, output
    assert first == [("tickets", 2, "created_at", "soon"), ("tickets", 3, "created_at", "later")]

    # The same export again: the rows are rejected again and the new load's query finds them.
    output, again = _ingest_and_query(tmp_path)
    assert "2 rows quarantined" in output, output
    assert again == first

    # A fixed row drops out of the query; a newly broken one appears.
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


def test_quarantine_query_quotes_workspace_path(tmp_path: Path) -> None:
    folder = tmp_path / "it's a workspace"
    folder.mkdir()
    tickets = "ticket_id,account_id,created_at\nT1,A1,soon\n"
    make_workspace(folder, CONFIG, {"accounts.csv": ACCOUNTS, "tickets.csv": tickets})

    _output, selected = _ingest_and_query(folder)

    assert selected == [("tickets", 1, "created_at", "soon")]
