"""Rich rendering of `account-health sources` and of the ingest's per-source notes."""

from __future__ import annotations

import shlex
from datetime import datetime
from pathlib import Path

from rich.markup import escape
from rich.table import Table

from account_health.sources.ingest import IngestReport
from account_health.sources.status import COUNT_NAMES, SourceStatus

# The last load's counts that `sources` shows. Its unattributed count is left out, because the table
# shows how many stored rows are unattributed, which a re-ingest of unchanged files does not reset.
LAST_LOAD_COUNTS = tuple(name for name in COUNT_NAMES if name != "unattributed")


def sources_table(statuses: list[SourceStatus]) -> Table:
    table = Table(
        title=(
            "Sources: row counts of the last ingest, then the rows stored, how many of them are unattributed, "
            "and the UTC days of the oldest and newest stored event"
        ),
        title_justify="left",
    )
    for column in (
        "source",
        "table",
        "format",
        "last ingest (UTC)",
        *[name.replace("_", " ") for name in LAST_LOAD_COUNTS],
    ):
        table.add_column(
            column,
            justify="left" if column in ("source", "table", "format", "last ingest (UTC)") else "right",
        )
    table.add_column("stored rows", justify="right")
    table.add_column("unattributed", justify="right")
    table.add_column("oldest event")
    table.add_column("newest event")
    for status in statuses:
        counts = [f"{status.counts[name]:,}" if status.counts else "-" for name in LAST_LOAD_COUNTS]
        table.add_row(
            escape(status.source),
            status.table,
            status.format,
            _when(status.last_ingest) if status.last_ingest else "never",
            *counts,
            f"{status.stored_rows:,}",
            f"{status.stored_unattributed:,}",
            _day(status.oldest_event),
            _day(status.newest_event),
        )
    return table


def source_notes(statuses: list[SourceStatus] | IngestReport) -> list[str]:
    """Return one line per source note (unattributed examples, skipped records, dismissed responses)."""
    entries = statuses.sources if isinstance(statuses, IngestReport) else statuses
    lines = []
    for entry in entries:
        examples = entry.unattributed_examples
        if examples:
            lines.append(f"{entry.source}: unattributed rows include account ids {', '.join(examples)}")
        if entry.dismissed:
            lines.append(
                f"{entry.source}: {entry.dismissed:,} dismissed or blank responses stored without a score "
                "(neither detractors nor zeros)"
            )
        if entry.skipped:
            kinds = ", ".join(f"{kind} ({total:,})" for kind, total in sorted(entry.skipped.items()))
            lines.append(f"{entry.source}: skipped records this table does not take: {kinds}")
    return lines


def quarantine_command(report: IngestReport, workspace_dir: Path) -> str:
    """Return the command that lists the values this ingest quarantined, quoted to run as printed."""
    return f"account-health -w {shlex.quote(str(workspace_dir))} quarantine --load {report.load_id}"


def _day(value: datetime | None) -> str:
    return "-" if value is None else f"{value:%Y-%m-%d}"


def _when(value: datetime | None) -> str:
    return "-" if value is None else f"{value:%Y-%m-%d %H:%M}"
