"""The job_changes table: contact job changes received by `POST /v1/job-changes`, one row each.

The batch feed (`[sources.contact_changes]`) lands in the analytical store, which the API never opens
for writing. So a change received over HTTP is kept here, in the operational store, with the
watch-list entry and the outbox message it caused. The nightly run copies these rows into the
analytical store's contact_changes table (`sources.received`).

A change is identified by its account, contact, kind and change instant (`dedupe_key`): the same
change received again is not stored again.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from account_health.store.operational import metadata

job_changes = sa.Table(
    "job_changes",
    metadata,
    sa.Column("job_change_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("account_id", sa.String(255), nullable=False),
    sa.Column("contact_id", sa.String(255), nullable=False),
    # "left_company", "title_change" or "email_bounced".
    sa.Column("change", sa.String(32), nullable=False),
    # When the change happened, as sent; NULL when the sender left it out.
    sa.Column("changed_at", sa.DateTime),
    sa.Column("note", sa.Text),
    sa.Column("received_at", sa.DateTime, nullable=False),
    sa.Column("received_by", sa.String(255)),
    sa.Column("watch_id", sa.Integer, sa.ForeignKey("watch_list.watch_id")),
    # The outbox row of the Slack message, when one was queued.
    sa.Column("message_id", sa.Integer),
    # SHA-256 of the change's identity (see `dedupe_key`); NULL only for repeats stored before
    # migration 0007 made the key unique.
    sa.Column("dedupe_key", sa.String(64)),
    # Why the change did not re-score the account; NULL when it did (see provisional_scores).
    sa.Column("rescore_note", sa.Text),
)

sa.Index("ix_job_changes_account_id", job_changes.c.account_id)
sa.Index("uq_job_changes_dedupe_key", job_changes.c.dedupe_key, unique=True)


def dedupe_key(account_id: str, contact_id: str, change: str, changed_at: datetime | None) -> str:
    """Return the key that makes a change received twice one change: account, contact, kind and instant.

    `changed_at` is naive UTC. Two undated changes of the same kind for the same contact are the same change.
    """
    changed = changed_at.isoformat() if changed_at is not None else "undated"
    identity = "\x1f".join((account_id, contact_id, change, changed))
    return hashlib.sha256(identity.encode()).hexdigest()


def insert_job_change(
    connection: Connection,
    account_id: str,
    contact_id: str,
    change: str,
    changed_at: datetime | None,
    note: str | None,
    received_at: datetime,
    received_by: str | None,
    watch_id: int | None,
) -> int:
    """Insert a received job change inside the caller's transaction; return its id.

    Raises sqlalchemy.exc.IntegrityError when the same change (same `dedupe_key`) is already stored.
    """
    result = connection.execute(
        job_changes.insert().values(
            account_id=account_id,
            contact_id=contact_id,
            change=change,
            changed_at=changed_at,
            note=note,
            received_at=received_at,
            received_by=received_by,
            watch_id=watch_id,
            dedupe_key=dedupe_key(account_id, contact_id, change, changed_at),
        )
    )
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def set_outcome(
    connection: Connection, job_change_id: int, message_id: int | None, rescore_note: str | None
) -> None:
    """Record the outbox message a change queued and why it did not re-score, in the caller's transaction."""
    connection.execute(
        job_changes.update()
        .where(job_changes.c.job_change_id == job_change_id)
        .values(message_id=message_id, rescore_note=rescore_note)
    )


def find_job_change(bind: Engine | Connection, key: str) -> dict[str, Any] | None:
    """Return the stored change with this `dedupe_key`, or None."""
    return first_row(bind, sa.select(job_changes).where(job_changes.c.dedupe_key == key))


def first_row(bind: Engine | Connection, query: Any) -> dict[str, Any] | None:
    """Return the first row of `query` as a dict, or None; `bind` is an engine or an open connection."""
    if isinstance(bind, Connection):
        row = bind.execute(query).first()
    else:
        with bind.connect() as connection:
            row = connection.execute(query).first()
    return dict(row._mapping) if row is not None else None


def read_job_changes(engine: Engine, account_id: str | None = None) -> list[dict[str, Any]]:
    """Return the received job changes (of one account when given), oldest first."""
    query = sa.select(job_changes).order_by(job_changes.c.job_change_id)
    if account_id is not None:
        query = query.where(job_changes.c.account_id == account_id)
    with engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(query)]


def received_departures(connection: Connection, account_id: str) -> list[dict[str, Any]]:
    """Return the account's received left_company changes, oldest first, inside the caller's transaction."""
    query = (
        sa.select(job_changes)
        .where(job_changes.c.account_id == account_id, job_changes.c.change == "left_company")
        .order_by(job_changes.c.job_change_id)
    )
    return [dict(row._mapping) for row in connection.execute(query)]


__all__ = [
    "dedupe_key",
    "find_job_change",
    "insert_job_change",
    "job_changes",
    "read_job_changes",
    "received_departures",
    "set_outcome",
]
