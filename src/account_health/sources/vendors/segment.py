"""Segment: batch payloads, JSON lines of messages, and the warehouse tables Segment writes.

Every input becomes a stream of Segment messages (track, page, screen, identify, group, alias). A
first pass over all of the source's files collects each user's group calls and identified emails; the
second pass emits one flat row per message of the kinds the canonical table takes. A message without
a groupId gets its account from the user's latest group call at or before the message's timestamp.
When there is none, `account` stays empty and the ingest stores the row flagged unattributed.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from account_health.config import SourceConfig
from account_health.sources.vendors.base import (
    Adapter,
    BatchBuilder,
    FileBatch,
    JsonRecord,
    TableDefaults,
    flatten,
    is_tabular,
    iter_json_records,
    records_from_tables,
    scalar_text,
)
from account_health.sources.vendors.timeparse import parse_instant

MESSAGE_TYPES = ("track", "page", "screen", "identify", "group", "alias")
# Warehouse table names (file stems) and the message type of their rows.
WAREHOUSE_TABLES = {
    "tracks": "track",
    "pages": "page",
    "screens": "screen",
    "identifies": "identify",
    "groups": "group",
    "aliases": "alias",
}
# Which message types feed each canonical table.
KINDS = {
    "usage_events": ("track", "page", "screen"),
    "users": ("identify", "group"),
    "accounts": ("group",),
}


@dataclass
class _Timeline:
    """Each user's group calls and identified emails, sorted by instant, for lookups at or before a time."""

    groups: dict[str, list[tuple[datetime, int, str]]] = field(default_factory=lambda: defaultdict(list))
    emails: dict[str, list[tuple[datetime, int, str]]] = field(default_factory=lambda: defaultdict(list))
    sequence: int = 0

    def add(self, message: dict[str, str | None]) -> None:
        user = message.get("user_id")
        instant = parse_instant(message.get("timestamp"))
        if user is None or instant is None:
            return
        self.sequence += 1
        if message.get("type") == "group" and message.get("group_id"):
            self.groups[user].append((instant, self.sequence, str(message["group_id"])))
        if message.get("email"):
            self.emails[user].append((instant, self.sequence, str(message["email"])))

    def freeze(self) -> None:
        for calls in (*self.groups.values(), *self.emails.values()):
            calls.sort()

    def group_at(self, user: str | None, instant: datetime | None) -> str | None:
        return self._latest(self.groups, user, instant)

    def email_at(self, user: str | None, instant: datetime | None) -> str | None:
        return self._latest(self.emails, user, instant)

    @staticmethod
    def _latest(
        index: dict[str, list[tuple[datetime, int, str]]], user: str | None, instant: datetime | None
    ) -> str | None:
        if user is None or instant is None or user not in index:
            return None
        calls = index[user]
        # The last call at or before the instant; among calls at the same instant, the last one read.
        position = bisect.bisect_right(calls, (instant, float("inf"), ""))
        return calls[position - 1][2] if position else None


class SegmentAdapter(Adapter):
    name = "segment"
    tables: ClassVar[dict[str, TableDefaults]] = {
        "usage_events": TableDefaults(
            columns={
                "event_id": "message_id",
                "account_id": "account",
                "user_id": "user",
                "occurred_at": "timestamp",
                "event": "event",
            }
        ),
        "users": TableDefaults(
            columns={"user_id": "user", "account_id": "account", "email": "email"},
            duplicate_keys="latest",
            latest_by="timestamp",
        ),
        "accounts": TableDefaults(
            columns={"account_id": "group_id", "name": "traits.name"},
            duplicate_keys="latest",
            latest_by="timestamp",
        ),
    }

    def read(self, paths: list[Path], config: SourceConfig, table: str) -> Iterator[FileBatch]:
        timeline = _Timeline()
        for path in paths:
            for record in _messages(path, config):
                if record.error is None:
                    timeline.add(record.value)
        timeline.freeze()

        kinds = KINDS[table]
        for index, path in enumerate(paths):
            builder = BatchBuilder(index, path.stat().st_size)
            for record in _messages(path, config):
                if record.error is not None:
                    builder.reject(record.row_number, record.text, record.error)
                elif record.value.get("type") not in kinds:
                    builder.skip(f"{record.value.get('type')} message")
                else:
                    builder.add(record.row_number, _flat_row(record.value, timeline))
                if builder.full:
                    yield from builder.emit()
            yield from builder.emit(final=True)


def _flat_row(message: dict[str, str | None], timeline: _Timeline) -> dict[str, str | None]:
    instant = parse_instant(message.get("timestamp"))
    user = message.get("user_id")
    row = dict(message)
    row["user"] = user or message.get("anonymous_id")
    row["account"] = message.get("group_id") or timeline.group_at(user, instant)
    row["email"] = message.get("email") or timeline.email_at(user, instant)
    if row.get("event") is None and message.get("type") in ("page", "screen"):
        row["event"] = message.get("name") or message.get("type")
    return row


def _messages(path: Path, config: SourceConfig) -> Iterator[JsonRecord]:
    """Yield each message of a file as a flat dictionary with Segment's fields in snake case."""
    if is_tabular(path):
        kind = WAREHOUSE_TABLES.get(path.name.split(".")[0].lower())
        for record in records_from_tables(path, config):
            if record.error is None:
                record.value = _from_warehouse(record.value, kind)
            yield record
        return
    for record in iter_json_records(path, ("batch",)):
        if record.error is None:
            message = _from_json(record.value)
            if isinstance(message, str):
                record.error, record.value = message, None
            else:
                record.value = message
        yield record


def _from_json(value: Any) -> dict[str, str | None] | str:
    """A flat message from a Segment API message, or the reason it is not one."""
    if not isinstance(value, dict):
        return f"expected a Segment message object, found {type(value).__name__}"
    kind = value.get("type")
    if kind not in MESSAGE_TYPES:
        return f"not a Segment message: type {kind!r} is not one of {', '.join(MESSAGE_TYPES)}"
    flat = flatten({key: item for key, item in value.items() if isinstance(item, dict)})
    traits = _object(value.get("traits"))
    context = _object(value.get("context"))
    context_traits = _object(context.get("traits"))
    flat.update(
        {
            "type": kind,
            "message_id": scalar_text(value.get("messageId")),
            "user_id": scalar_text(value.get("userId")),
            "anonymous_id": scalar_text(value.get("anonymousId")),
            "group_id": scalar_text(value.get("groupId") or context.get("groupId")),
            "event": scalar_text(value.get("event")),
            "name": scalar_text(value.get("name")),
            "previous_id": scalar_text(value.get("previousId")),
            "timestamp": scalar_text(
                value.get("timestamp") or value.get("originalTimestamp") or value.get("receivedAt")
            ),
            "email": scalar_text(traits.get("email") or context_traits.get("email")),
            # Named as the warehouse tables name them, so `loaded_at = "received_at"` reads both.
            "received_at": scalar_text(value.get("receivedAt")),
            "sent_at": scalar_text(value.get("sentAt")),
        }
    )
    return flat


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _from_warehouse(row: dict[str, Any], kind: str | None) -> dict[str, str | None]:
    """A flat message from a row of a Segment warehouse table (tracks, identifies, groups, ...)."""
    if kind is None:
        if row.get("event") is not None or "event" in row:
            kind = "track"
        elif "group_id" in row:
            kind = "group"
        elif "previous_id" in row:
            kind = "alias"
        else:
            kind = "identify"
    flat: dict[str, str | None] = {name: scalar_text(value) for name, value in row.items()}
    flat.update(
        {
            "type": kind,
            "message_id": flat.get("id") or flat.get("message_id"),
            "group_id": flat.get("group_id") or flat.get("context_group_id"),
            "timestamp": flat.get("timestamp") or flat.get("original_timestamp") or flat.get("received_at"),
            "email": flat.get("email") or flat.get("context_traits_email"),
        }
    )
    if kind == "group":
        # The warehouse writes group traits as plain columns; the JSON path names the same trait.
        flat.setdefault("traits.name", flat.get("name"))
    return flat
