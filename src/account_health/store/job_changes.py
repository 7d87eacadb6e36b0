"""The job_changes table: contact job changes received by `POST /v1/job-changes`, one row each.

The batch feed (`[sources.contact_changes]`) lands in the analytical store, which the API never opens
for writing. So a change received over HTTP is kept here, in the operational store, with the
watch-list entry and the outbox message it caused.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from account_health.store.operational import metadata, now

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
)

sa.Index("ix_job_changes_account_id", job_changes.c.account_id)


def insert_job_change(
    connection: Connection,
    account_id: str,
    contact_id: str,
    change: str,
    changed_at: datetime | None,
    note: str | None,
    received_by: str | None,
    watch_id: int | None,
    message_id: int | None,
) -> int:
    """Insert a received job change inside the caller's transaction; return its id."""
    result = connection.execute(
        job_changes.insert().values(
            account_id=account_id,
            contact_id=contact_id,
            change=change,
            changed_at=changed_at,
            note=note,
            received_at=now(),
            received_by=received_by,
            watch_id=watch_id,
            message_id=message_id,
        )
    )
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def read_job_changes(engine: Engine, account_id: str | None = None) -> list[dict[str, Any]]:
    """Return the received job changes (of one account when given), oldest first."""
    query = sa.select(job_changes).order_by(job_changes.c.job_change_id)
    if account_id is not None:
        query = query.where(job_changes.c.account_id == account_id)
    with engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(query)]


__all__ = ["insert_job_change", "job_changes", "read_job_changes"]
