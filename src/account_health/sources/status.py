"""Status of each configured source: last ingest, its row counts, its stored rows and the span of their event times."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from account_health.config import Workspace
from account_health.sources.canonical import TABLES
from account_health.sources.identity import EXAMPLES, NOTES_TABLE
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
    # Stored rows (every version) of the source still flagged unattributed, whichever load stored them.
    stored_unattributed: int = 0
    # Oldest and newest event time (the table's event time or day) among the rows the source stored.
    oldest_event: datetime | None = None
    newest_event: datetime | None = None
    # Up to EXAMPLES distinct account ids of the stored unattributed rows.
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
        _add_stored_unattributed(store, status)
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


def _add_stored_unattributed(store: AnalyticalStore, status: SourceStatus) -> None:
    """Count the source's stored rows flagged unattributed, and list a few of their account ids.

    These come from the stored rows, not from the last load's notes, because a re-ingest of unchanged
    files stores nothing, so its notes list no example while the rows stay unattributed.
    """
    spec = TABLES[status.table]
    if spec.account_column is None:
        return
    table = identifier(spec.name)
    account = f"CAST({identifier(spec.account_column)} AS VARCHAR)"
    counted = store.connection.execute(
        f"SELECT count(*) FROM {table} WHERE _source = ? AND _unattributed", [status.source]
    ).fetchone()
    status.stored_unattributed = int(counted[0]) if counted else 0
    if not status.stored_unattributed:
        return
    accounts = store.connection.execute(
        f"""SELECT DISTINCT {account} FROM {table} WHERE _source = ? AND _unattributed
            ORDER BY 1 NULLS FIRST LIMIT {EXAMPLES}""",
        [status.source],
    ).fetchall()
    noted = _noted_examples(store, status.source)
    examples: list[str] = []
    for (value,) in accounts:
        text = repr(value) if value is not None else "(no account id)"
        # A load's note adds the email that was tried, as in "'org-9' with email 'x@example.com'", or
        # the identity column the files lack.
        examples += [note for note in noted if note == text or note.startswith(text + " ")] or [text]
    status.unattributed_examples = examples[:EXAMPLES]


def _noted_examples(store: AnalyticalStore, source: str) -> list[str]:
    """Return the unattributed examples noted by the source's newest load that noted any."""
    if not _has_table(store, NOTES_TABLE):
        return []
    rows = store.connection.execute(
        f"""SELECT detail FROM {NOTES_TABLE}
            WHERE source = ? AND kind = 'unattributed_example' AND load_id = (
                SELECT max(load_id) FROM {NOTES_TABLE} WHERE source = ? AND kind = 'unattributed_example')
            ORDER BY detail""",
        [source, source],
    ).fetchall()
    return [str(row[0]) for row in rows]


def _instant(value: object) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))
