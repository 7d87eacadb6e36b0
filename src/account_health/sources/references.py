"""Rewrite staged ids that name a row of another canonical table into the form that table stores.

A Salesforce id has a 15-character case-sensitive form and an 18-character form (see
`salesforce_ids`). A job-change feed may carry either form, whatever form the contacts table holds:
a Salesforce adapter stores 18 characters, while a plain CSV of a report export keeps 15. A staged id
that is no stored id, but another form of exactly one stored id, becomes that stored id, so the change
joins its contact. Ids that are not Salesforce ids, such as HubSpot's numbers, are left as they are.
"""

from __future__ import annotations

import pyarrow as pa

from account_health.sources.canonical import TableSpec
from account_health.sources.salesforce_ids import forms
from account_health.sources.sql import identifier
from account_health.store.analytical import AnalyticalStore

# Table -> (its column of ids, the table those ids name, that table's id column).
REFERENCES: dict[str, tuple[str, str, str]] = {
    "contact_changes": ("contact_id", "contacts", "contact_id"),
}
# The shape of either form of a Salesforce id. `forms` then checks the suffix of an 18-character one.
_SALESFORCE_SHAPE = "'[a-zA-Z0-9]{15}([a-zA-Z0-9]{3})?'"


def rewritten_column(spec: TableSpec) -> str | None:
    """Return the staged column that `match_id_forms` may update for this table, if any."""
    reference = REFERENCES.get(spec.name)
    return reference[0] if reference is not None else None


def match_id_forms(store: AnalyticalStore, spec: TableSpec) -> None:
    """Replace staged ids that are another Salesforce form of a stored id by the stored id."""
    reference = REFERENCES.get(spec.name)
    if reference is None:
        return
    column, table, key = (identifier(name) for name in reference)
    connection = store.connection

    stored = f"(SELECT {key} FROM {table} WHERE {key} IS NOT NULL)"
    unknown = connection.execute(
        f"""SELECT DISTINCT {column} FROM _stage
            WHERE {column} IS NOT NULL AND regexp_full_match({column}, {_SALESFORCE_SHAPE})
              AND {column} NOT IN {stored}"""
    ).fetchall()

    pairs = [(value, form) for (value,) in unknown for form in forms(value) if form != value]
    if not pairs:
        return

    candidates = pa.table(
        {
            "staged": pa.array([staged for staged, _ in pairs], pa.string()),
            "form": pa.array([form for _, form in pairs], pa.string()),
        }
    )
    connection.register("_id_forms", candidates)
    try:
        # Two stored ids that are forms of one record (both loaded, from different sources) both
        # name it, so the smaller one is taken, which keeps a reload of the feed unchanged.
        connection.execute(
            f"""UPDATE _stage SET {column} = found.stored
                FROM (SELECT f.staged, min(t.{key}) AS stored
                      FROM _id_forms f JOIN (SELECT DISTINCT {key} FROM {table}) t ON t.{key} = f.form
                      GROUP BY f.staged) AS found
                WHERE _stage.{column} = found.staged"""
        )
    finally:
        connection.unregister("_id_forms")
