"""The values that ingests rejected, read back from the quarantine table with their file, row and reason."""

from __future__ import annotations

from typing import Any

from account_health.sources.sql import identifier
from account_health.store.analytical import QUARANTINE_TABLE, AnalyticalStore

# The quarantine's columns in the order `quarantined_values` returns them.
COLUMNS = (
    "last_load_id",
    "load_id",
    "source",
    "table",
    "file",
    "row_number",
    "column",
    "value",
    "reason",
    "quarantined_at",
)


def quarantined_values(
    store: AnalyticalStore, load_id: int | None = None, source: str | None = None
) -> list[dict[str, Any]]:
    """Return the quarantined values as dictionaries keyed by COLUMNS, newest rejecting load first.

    Parameters
    ----------
    load_id
        Only the values this load rejected: the quarantine keeps each value once, and its
        `last_load_id` is the latest load that rejected it.
    source
        Only the values of this source.
    """
    conditions = ["TRUE"]
    parameters: list[Any] = []
    if load_id is not None:
        conditions.append("last_load_id = ?")
        parameters.append(load_id)
    if source is not None:
        conditions.append("source = ?")
        parameters.append(source)
    selected = ", ".join(identifier(column) for column in COLUMNS)
    rows = store.connection.execute(
        f"""SELECT {selected} FROM {QUARANTINE_TABLE} WHERE {" AND ".join(conditions)}
            ORDER BY last_load_id DESC, source, file, row_number, "column", value""",
        parameters,
    ).fetchall()
    return [dict(zip(COLUMNS, row, strict=True)) for row in rows]
