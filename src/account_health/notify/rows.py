"""Outbox rows as the senders see them."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import httpx

from account_health.notify.transport import Counters, SendResult


@dataclass(frozen=True)
class OutboxRow:
    """One unsent outbox row, read while the delivering process holds its lease."""

    message_id: int
    dedupe_key: str
    payload: dict[str, Any]
    attempts: int
    in_doubt: bool
    created_at: datetime
    last_attempt_at: datetime | None

    @classmethod
    def from_mapping(cls, row: Mapping[str, Any]) -> OutboxRow:
        return cls(
            message_id=row["message_id"],
            dedupe_key=row["dedupe_key"],
            payload=json.loads(row["payload"]),
            attempts=row["attempts"],
            in_doubt=bool(row["in_doubt"]),
            created_at=row["created_at"],
            last_attempt_at=row["last_attempt_at"],
        )


class Sender(Protocol):
    """A destination's protocol: how rows are batched, sent, and found again after a lost response."""

    destination: str
    batch_size: int
    # True when the destination can tell whether an earlier request whose response was lost succeeded.
    can_recover: bool
    # Secret values (tokens, URLs) to keep out of stored errors and logs.
    secrets: tuple[str, ...]

    def record_key(self, row: OutboxRow) -> str | None:
        """Return the receiver's record that `row` changes; one request carries each record at most once."""
        ...

    def send(self, client: httpx.Client, rows: list[OutboxRow], counters: Counters) -> SendResult: ...

    def recover(
        self, client: httpx.Client, rows: list[OutboxRow], counters: Counters, after: str | None
    ) -> SendResult:
        """Return, as delivered, the rows the receiver already has; a Retry when it cannot be asked now.

        `after` is the receiver's reference of the last row delivered before these rows' attempts began,
        or None; nothing older than it needs to be searched.
        """
        ...
