"""Read the outbox for people: counts per destination and status, and the messages themselves."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from account_health.store.outbox import SENT, STATUSES, outbox


@dataclass(frozen=True)
class OutboxEntry:
    """One outbox row without its payload."""

    message_id: int
    destination: str
    kind: str
    dedupe_key: str
    account_id: str | None
    as_of: datetime | None
    status: str
    attempts: int
    in_doubt: bool
    last_error: str | None
    last_attempt_at: datetime | None
    sent_at: datetime | None


def outbox_counts(engine: Engine) -> dict[tuple[str, str], int]:
    """Return the number of outbox rows per (destination, status)."""
    query = sa.select(outbox.c.destination, outbox.c.status, sa.func.count()).group_by(
        outbox.c.destination, outbox.c.status
    )
    with engine.connect() as connection:
        return {(destination, status): count for destination, status, count in connection.execute(query)}


def outbox_entries(engine: Engine, status: str | None = None, limit: int = 100) -> list[OutboxEntry]:
    """Return outbox rows with `status` (every unsent row when None), oldest first, at most `limit`."""
    if status is not None and status not in STATUSES:
        raise ValueError(f"status {status!r} is not one of {', '.join(STATUSES)}")
    condition = outbox.c.status == status if status is not None else outbox.c.status != SENT
    order = outbox.c.message_id.desc() if status == SENT else outbox.c.message_id
    columns = [outbox.c[name] for name in OutboxEntry.__dataclass_fields__]
    query = sa.select(*columns).where(condition).order_by(order).limit(limit)
    with engine.connect() as connection:
        return [OutboxEntry(**dict(row._mapping)) for row in connection.execute(query)]
