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
from collections.abc import Callable, Iterator
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

    def knows(self, user: str | None) -> bool:
        """Return whether the user has any group call or email, so a lookup can find something."""
        return user in self.groups or user in self.emails

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
        if len(calls) == 1:
            return calls[0][2] if calls[0][0] <= instant else None
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
            for record in _messages(path, config, _may_place_user):
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
                    builder.add(record.row_number, _place(record.value, timeline))
                if builder.full:
                    yield from builder.emit()
            yield from builder.emit(final=True)


def _may_place_user(line: bytes) -> bool:
    """Return whether a JSON line may contain a group call or an email, which are all the timeline keeps.

    A group call's type is the JSON string "group", and an email sits under a key named email. A line
    with a backslash may spell either with escapes, so it is parsed too.
    """
    return b'"group"' in line or b"email" in line or b"\\" in line


def _place(message: dict[str, str | None], timeline: _Timeline) -> dict[str, str | None]:
    """Add the user, account and email columns to a flat message, in place, and return it."""
    user = message.get("user_id")
    group = message.get("group_id")
    email = message.get("email")
    message["user"] = user or message.get("anonymous_id")
    if (not group or not email) and timeline.knows(user):
        instant = parse_instant(message.get("timestamp"))
        group = group or timeline.group_at(user, instant)
        email = email or timeline.email_at(user, instant)
    message["account"] = group or None
    message["email"] = email or None
    if message.get("event") is None and message.get("type") in ("page", "screen"):
        message["event"] = message.get("name") or message.get("type")
    return message


def _messages(
    path: Path, config: SourceConfig, line_filter: Callable[[bytes], bool] | None = None
) -> Iterator[JsonRecord]:
    """Yield each message of a file as a flat dictionary with Segment's fields in snake case.

    `line_filter` drops JSON lines unparsed (see `iter_json_records`); tables are read whole.
    """
    if is_tabular(path):
        kind = WAREHOUSE_TABLES.get(path.name.split(".")[0].lower())
        for record in records_from_tables(path, config):
            if record.error is None:
                record.value = _from_warehouse(record.value, kind)
            yield record
        return
    for record in iter_json_records(path, ("batch",), line_filter):
        if record.error is None:
            message = _from_json(record.value)
            if isinstance(message, str):
                record.error, record.value = message, None
            else:
                record.value = message
        yield record


def _from_json(value: Any) -> dict[str, str | None] | str:
    """A flat message from a Segment API message, or the reason it is not one.

    Nested objects (properties, context, traits, ...) become dotted columns, and Segment's own fields
    take the snake-case names of the warehouse tables.
    """
    if not isinstance(value, dict):
        return f"expected a Segment message object, found {type(value).__name__}"
    kind = value.get("type")
    if kind not in MESSAGE_TYPES:
        return f"not a Segment message: type {kind!r} is not one of {', '.join(MESSAGE_TYPES)}"
    # One pass over the message's keys: this runs once per event, so it avoids a lookup per field.
    flat: dict[str, str | None] = dict.fromkeys(_FLAT_NAMES)
    for key, item in value.items():
        target = _FIELDS.get(key)
        if target is not None:
            flat[target] = item if item.__class__ is str else scalar_text(item)
        if isinstance(item, dict):
            flatten(item, key, 1, flat)
    flat["type"] = kind
    context = _object(value.get("context"))
    if not value.get("groupId"):
        flat["group_id"] = scalar_text(context.get("groupId"))
    if not value.get("timestamp"):
        flat["timestamp"] = scalar_text(value.get("originalTimestamp") or value.get("receivedAt"))
    traits = _object(value.get("traits"))
    flat["email"] = scalar_text(traits.get("email") or _object(context.get("traits")).get("email"))
    return flat


# Segment's message fields and their flat names; received_at and sent_at are named as the warehouse
# tables name them, so `loaded_at = "received_at"` reads both.
_FIELDS = {
    "type": "type",
    "messageId": "message_id",
    "userId": "user_id",
    "anonymousId": "anonymous_id",
    "groupId": "group_id",
    "event": "event",
    "name": "name",
    "previousId": "previous_id",
    "timestamp": "timestamp",
    "receivedAt": "received_at",
    "sentAt": "sent_at",
}
_FLAT_NAMES = (*_FIELDS.values(), "email")


_EMPTY: dict[str, Any] = {}


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else _EMPTY


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
