"""`account-health sources`: each configured source with its last load and the span of its events."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from account_health.cli.app import app
from vendor_workspace import json_lines, make_workspace

runner = CliRunner()
CONFIG = """\
[sources.accounts]
table = "accounts"
files = ["accounts.csv"]

[sources.events]
table = "usage_events"
format = "segment"
files = ["events.jsonl"]

[sources.tickets]
table = "tickets"
files = ["tickets.csv"]
"""


def _events() -> str:
    return json_lines(
        [
            {
                "type": "group",
                "messageId": "g",
                "userId": "u1",
                "groupId": "acme",
                "timestamp": "2024-01-01T00:00:00Z",
            },
            {
                "type": "track",
                "messageId": "t1",
                "userId": "u1",
                "event": "A",
                "timestamp": "2024-01-02T03:04:00Z",
            },
            {
                "type": "track",
                "messageId": "t2",
                "userId": "u9",
                "event": "A",
                "timestamp": "2024-03-05T06:07:00Z",
            },
            {"type": "track", "messageId": "t3", "userId": "u1", "event": "A", "timestamp": "yesterday"},
        ]
    )


def test_sources_lists_counts_and_event_span(tmp_path: Path) -> None:
    files = {
        "accounts.csv": "account_id\nacme\n",
        "events.jsonl": _events(),
        "tickets.csv": "ticket_id,account_id,created_at\n",
    }
    make_workspace(tmp_path, CONFIG, files)
    ingested = runner.invoke(
        app, ["-w", str(tmp_path), "ingest", "--source", "accounts", "--source", "events"]
    )
    assert ingested.exit_code == 0, ingested.output
    assert "events: unattributed rows include account ids (no account id)" in ingested.output
    assert "events: skipped records this table does not take: group message (1)" in ingested.output

    result = runner.invoke(app, ["-w", str(tmp_path), "sources"])

    assert result.exit_code == 0, result.output
    lines = {line.split()[1]: line for line in result.output.splitlines() if line.startswith("│")}
    cells = [cell.strip() for cell in lines["events"].split("│")[1:-1]]
    assert cells[4:] == ["3", "2", "0", "0", "1", "2", "1", "2024-01-02", "2024-03-05"], cells
    assert "never" in lines["tickets"]
    assert "events: unattributed rows include account ids (no account id)" in result.output


def test_sources_counts_stored_unattributed_after_reingest(tmp_path: Path) -> None:
    files = {
        "accounts.csv": "account_id\nacme\n",
        "events.jsonl": _events(),
        "tickets.csv": "ticket_id,account_id,created_at\nt1,acme,2024-01-02\nt2,nosuch,2024-01-02\nt3,nosuch,2024-01-03\n",
    }
    make_workspace(tmp_path, CONFIG, files)
    for _ in range(2):
        ingested = runner.invoke(
            app, ["-w", str(tmp_path), "ingest", "--source", "accounts", "--source", "tickets"]
        )
        assert ingested.exit_code == 0, ingested.output

    result = runner.invoke(app, ["-w", str(tmp_path), "sources"])

    assert result.exit_code == 0, result.output
    lines = {line.split()[1]: line for line in result.output.splitlines() if line.startswith("│")}
    cells = [cell.strip() for cell in lines["tickets"].split("│")[1:-1]]
    # The last load changed nothing, but two stored tickets still have no known account.
    assert cells[4:10] == ["3", "0", "0", "3", "0", "3"], cells
    assert cells[10] == "2", cells
    assert "tickets: unattributed rows include account ids 'nosuch'" in result.output
