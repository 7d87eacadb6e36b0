"""Each user's group calls and identified emails over time, for the Segment adapter's account lookups.

A message without a groupId takes its account from the user's latest group call at or before its
timestamp, and its email from the user's latest message with an email. The timeline performs those
lookups one message at a time, or for a whole block of messages at once with sorted searches in NumPy.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from account_health.sources.vendors.timeparse import parse_instant

# A timeline entry: the instant in microseconds since the epoch, the order it was read in, the value.
_Entry = tuple[int, int, str]


@dataclass
class Timeline:
    """Each user's group calls and identified emails, sorted by instant, for lookups at or before a time."""

    groups: dict[str, list[_Entry]] = field(default_factory=lambda: defaultdict(list))
    emails: dict[str, list[_Entry]] = field(default_factory=lambda: defaultdict(list))
    sequence: int = 0
    group_index: EntryIndex | None = None
    email_index: EntryIndex | None = None
    users: pa.Array | None = None

    def add(self, message: dict[str, str | None]) -> None:
        """Add a flat message's group call and email, when it has a user and a readable timestamp."""
        instant = parse_instant(message.get("timestamp"))
        self._add(
            message.get("user_id"),
            None if instant is None else microseconds(instant),
            message.get("type"),
            message.get("group_id"),
            message.get("email"),
        )

    def add_messages(self, messages: pa.Table) -> None:
        """Add a block of flat messages, as `add` adds each one."""
        instants, has_instant = parse_instants(messages.column("timestamp").combine_chunks())
        columns = [messages.column(name).to_pylist() for name in ("user_id", "type", "group_id", "email")]
        for user, kind, group, email, instant, known in zip(
            *columns, instants.tolist(), has_instant.tolist(), strict=True
        ):
            self._add(user, instant if known else None, kind, group, email)

    def _add(
        self, user: str | None, instant: int | None, kind: str | None, group: str | None, email: str | None
    ) -> None:
        if user is None or instant is None:
            return
        self.sequence += 1
        if kind == "group" and group:
            self.groups[user].append((instant, self.sequence, group))
        if email:
            self.emails[user].append((instant, self.sequence, email))

    def freeze(self) -> None:
        for entries in (*self.groups.values(), *self.emails.values()):
            entries.sort()
        users = sorted({*self.groups, *self.emails})
        self.users = pa.array(users, pa.string())
        codes = {user: code for code, user in enumerate(users)}
        self.group_index = EntryIndex(codes, self.groups)
        self.email_index = EntryIndex(codes, self.emails)

    def knows(self, user: str | None) -> bool:
        """Return whether the user has any group call or email, so a lookup can find something."""
        return user in self.groups or user in self.emails

    def group_at(self, user: str | None, instant: datetime | None) -> str | None:
        return self._latest(self.groups, user, instant)

    def email_at(self, user: str | None, instant: datetime | None) -> str | None:
        return self._latest(self.emails, user, instant)

    @staticmethod
    def _latest(index: dict[str, list[_Entry]], user: str | None, instant: datetime | None) -> str | None:
        if user is None or instant is None or user not in index:
            return None
        entries = index[user]
        micros = microseconds(instant)
        if len(entries) == 1:
            return entries[0][2] if entries[0][0] <= micros else None
        # The last entry at or before the instant; among entries at the same instant, the last one read.
        position = bisect.bisect_right(entries, (micros, float("inf"), ""))
        return entries[position - 1][2] if position else None

    def codes(self, users: pa.Array) -> np.ndarray:
        """Return each user's position in `users` (the timeline's users), or -1 for a null or unknown one."""
        assert self.users is not None
        return np.asarray(pc.fill_null(pc.index_in(users, value_set=self.users), -1), np.int64)


class EntryIndex:
    """One kind of timeline entry (group calls or emails) as sorted arrays, to look up many rows at once.

    Entries are sorted by user code (a user's position in the timeline's users), then instant, then read
    order. A lookup finds, for each row, the last entry at or before the row's instant, as
    `Timeline._latest` does one row at a time. Instants are replaced by their rank among the entries'
    distinct instants, so that one int64 key orders (user, instant) without overflow.
    """

    def __init__(self, codes: dict[str, int], entries: dict[str, list[_Entry]]) -> None:
        order = sorted(entries, key=codes.__getitem__)
        self.codes = np.repeat(
            np.array([codes[user] for user in order], np.int64), [len(entries[user]) for user in order]
        )
        instants = np.array([instant for user in order for instant, _, _ in entries[user]], np.int64)
        self.values = pa.array([value for user in order for _, _, value in entries[user]], pa.string())
        self.distinct_instants = np.unique(instants)
        self.span = len(self.distinct_instants) + 1
        ranks = np.searchsorted(self.distinct_instants, instants, side="left") + 1
        self.keys = self.codes * self.span + ranks

    def at(self, codes: np.ndarray, instants: np.ndarray, has_instant: np.ndarray) -> pa.Array:
        """Return each row's latest value at or before its instant (microseconds since the epoch), or
        null where the user (a code from `Timeline.codes`) has none or the row has no instant."""
        if len(self.values) == 0:
            return pa.nulls(len(codes), pa.string())
        # The entries at or before an instant are those ranked up to the number of distinct instants <= it.
        ranks = np.searchsorted(self.distinct_instants, instants, side="right")
        positions = np.searchsorted(self.keys, codes * self.span + ranks, side="right") - 1
        found = (codes >= 0) & has_instant & (positions >= 0)
        found &= self.codes[np.maximum(positions, 0)] == codes
        return self.values.take(pa.array(positions, pa.int64(), mask=~found))


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def microseconds(instant: datetime) -> int:
    return (instant - _EPOCH) // timedelta(microseconds=1)


# The common shape of instants, which Arrow parses as `parse_instant` does (year 0 is invalid there).
_ISO_UTC = r"^([1-9]\d{3}|0[1-9]\d{2}|00[1-9]\d|000[1-9])-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$"


def parse_instants(timestamps: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Return each timestamp as microseconds since the epoch, as `parse_instant` reads it, and a mask
    of the rows it reads at all.

    Arrow parses the common shape (2024-03-01T09:00:00.123Z), and it rejects an invalid date or time of
    that shape as `datetime.fromisoformat` does. Other text goes through `parse_instant` row by row, as
    does the whole block when one of its timestamps has the common shape but an invalid date.
    """
    common = pc.fill_null(pc.match_substring_regex(timestamps, _ISO_UTC), False)
    micros = np.zeros(len(timestamps), np.int64)
    parsed = np.zeros(len(timestamps), bool)
    try:
        cast = pc.if_else(common, timestamps, pa.scalar(None, pa.string())).cast(pa.timestamp("us", "UTC"))
        parsed = np.asarray(pc.is_valid(cast), bool)
        micros = np.asarray(pc.fill_null(cast.cast(pa.int64()), 0), np.int64).copy()
    except pa.ArrowInvalid:
        pass
    rest = np.flatnonzero(~parsed & np.asarray(pc.is_valid(timestamps), bool))
    for position, text in zip(rest.tolist(), timestamps.take(pa.array(rest)).to_pylist(), strict=True):
        instant = parse_instant(text)
        if instant is not None:
            micros[position] = microseconds(instant)
            parsed[position] = True
    return micros, parsed
