"""Status of each configured source: last ingest, its row counts and the span of its event times."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from account_health.config import Workspace
from account_health.sources.canonical import TABLES
from account_health.sources.identity import NOTES_TABLE
from account_health.sources.sql import identifier
from account_health.store.analytical import LOADS_TABLE, AnalyticalStore

COUNT_NAMES = ("read", "inserted", "new_version", "unchanged", "quarantined", "unattributed")


@dataclass
class SourceStatus:
    """One configured source: its last load's counts and the rows it has stored."""

    source: str
    table: str
    format: str
    last_ingest: datetime | None = None
    # The last load's counts, in the order of COUNT_NAMES; empty before the first load.
    counts: dict[str, int] = field(default_factory=dict)
    stored_rows: int = 0
    # Oldest and newest event time (the table's event time or day) among the rows the source stored.
    oldest_event: datetime | None = None
    newest_event: datetime | None = None
    unattributed_examples: list[str] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    dismissed: int = 0


def source_status(workspace: Workspace, store: AnalyticalStore) -> list[SourceStatus]:
    """Return the status of every configured source, in config order."""
    notes = _has_table(store, NOTES_TABLE)
    statuses = []
    for name, config in workspace.config.sources.items():
        status = SourceStatus(name, config.table, config.format)
        _add_last_load(store, status, notes)
        _add_stored_span(store, status)
        statuses.append(status)
    return statuses


def _has_table(store: AnalyticalStore, name: str) -> bool:
    rows = store.connection.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]
    ).fetchall()
    return bool(rows[0][0])


def _add_last_load(store: AnalyticalStore, status: SourceStatus, notes: bool) -> None:
    row = store.connection.execute(
        f"""SELECT load_id, finished_at, {", ".join(COUNT_NAMES)} FROM {LOADS_TABLE}
            WHERE source = ? ORDER BY load_id DESC LIMIT 1""",
        [status.source],
    ).fetchone()
    if row is None:
        return
    load_id, status.last_ingest = row[0], row[1]
    status.counts = {name: int(value) for name, value in zip(COUNT_NAMES, row[2:], strict=True)}
    if not notes:
        return
    for kind, detail, count in store.connection.execute(
        f"SELECT kind, detail, count FROM {NOTES_TABLE} WHERE load_id = ? AND source = ? ORDER BY detail",
        [load_id, status.source],
    ).fetchall():
        if kind == "skipped":
            status.skipped[detail] = int(count)
        elif kind == "dismissed":
            status.dismissed = int(count)
        else:
            status.unattributed_examples.append(detail)


def _add_stored_span(store: AnalyticalStore, status: SourceStatus) -> None:
    spec = TABLES[status.table]
    column = spec.event_time or spec.event_day
    span = f"min({identifier(column)}), max({identifier(column)})" if column else "NULL, NULL"
    row = store.connection.execute(
        f"SELECT count(*), {span} FROM {identifier(spec.name)} WHERE _source = ?", [status.source]
    ).fetchone()
    if row is None:
        return
    status.stored_rows = int(row[0])
    status.oldest_event, status.newest_event = _instant(row[1]), _instant(row[2])


def _instant(value: object) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))
