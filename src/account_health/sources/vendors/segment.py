"""Segment: batch payloads, JSON lines of messages, and the warehouse tables Segment writes.

Every input becomes a stream of Segment messages (track, page, screen, identify, group, alias). A
first pass over all of the source's files collects each user's group calls and identified emails; the
second pass emits one flat row per message of the kinds the canonical table takes. A message without
a groupId gets its account from the user's latest group call at or before the message's timestamp.
When there is none, `account` stays empty and the ingest stores the row flagged unattributed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from account_health.config import SourceConfig
from account_health.sources.vendors.base import (
    MAX_FLATTEN_DEPTH,
    Adapter,
    BatchBuilder,
    BlockValue,
    FileBatch,
    JsonBlock,
    JsonRecord,
    TableDefaults,
    flatten,
    is_tabular,
    iter_json_blocks,
    records_from_tables,
    scalar_text,
)
from account_health.sources.vendors.segment_timeline import Timeline, parse_instants
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

    def __init__(self, columnar: bool = True) -> None:
        # Whether JSON lines are read a block at a time through Arrow (see `_read_block`). Without it,
        # every line is parsed and placed one at a time; both give the same rows and rejections.
        self.columnar = columnar

    def read(self, paths: list[Path], config: SourceConfig, table: str) -> Iterator[FileBatch]:
        read_block = _read_block if self.columnar else None
        timeline = Timeline()
        for path in paths:
            for record in _messages(path, config, _may_place_user, read_block):
                if isinstance(record, JsonBlock):
                    timeline.add_messages(record.value)
                elif record.error is None:
                    timeline.add(record.value)
        timeline.freeze()

        kinds = KINDS[table]
        for index, path in enumerate(paths):
            builder = BatchBuilder(index, path.stat().st_size)
            for record in _messages(path, config, read_block=read_block):
                if isinstance(record, JsonBlock):
                    _add_block(builder, record, kinds, timeline)
                elif record.error is not None:
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
    with a backslash may spell either with escapes, so it is parsed too. The test also holds for a chunk
    of many lines, which is how the first pass skips most of a file.
    """
    return b'"group"' in line or b"email" in line or b"\\" in line


def _place(message: dict[str, str | None], timeline: Timeline) -> dict[str, str | None]:
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
    path: Path,
    config: SourceConfig,
    line_filter: Callable[[bytes], bool] | None = None,
    read_block: Callable[[list[bytes]], BlockValue | None] | None = None,
) -> Iterator[JsonRecord | JsonBlock[BlockValue]]:
    """Yield each message of a file as a flat dictionary with Segment's fields in snake case.

    `line_filter` drops JSON lines unparsed, and `read_block` reads blocks of JSON lines at once (see
    `iter_json_blocks`); tables are read whole.
    """
    if is_tabular(path):
        kind = WAREHOUSE_TABLES.get(path.name.split(".")[0].lower())
        for record in records_from_tables(path, config):
            if record.error is None:
                record.value = _from_warehouse(record.value, kind)
            yield record
        return
    for item in iter_json_blocks(path, ("batch",), line_filter, read_block):
        if isinstance(item, JsonRecord) and item.error is None:
            message = _from_json(item.value)
            if isinstance(message, str):
                item.error, item.value = message, None
            else:
                item.value = message
        yield item


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


# Reading a block of JSON lines through Arrow. `_read_block` takes a block only when Arrow reads it
# exactly as orjson and `_from_json` read each line. It returns None for any other block, which then
# goes through the per-line path, and that path also names every rejected line.

# Segment's instants, declared as text so that Arrow does not infer timestamps from them. Arrow
# rejects a block where one of them holds a number or an object, and the per-line path reads it.
_TEXT_FIELDS = pa.schema(
    [(name, pa.string()) for name in ("timestamp", "originalTimestamp", "receivedAt", "sentAt")]
)
_PARSE_OPTIONS = pj.ParseOptions(explicit_schema=_TEXT_FIELDS, unexpected_field_behavior="infer")
# Fields whose JSON truthiness picks a value in `_from_json` (`a or b`). The block reader takes them
# only as strings or nulls, where the empty string and null are the only false values.
_TRUTH_TESTED = (
    ("groupId",),
    ("context", "groupId"),
    ("timestamp",),
    ("originalTimestamp",),
    ("receivedAt",),
    ("traits", "email"),
    ("context", "traits", "email"),
)
# JSON values that the block reader turns into text as `scalar_text` does: Arrow casts int64 to its
# decimal digits and booleans to true and false. Floats, lists and objects too deep to flatten are
# left to the per-line path, because their text (repr, json.dumps) differs from Arrow's.
_TEXT_TYPES = (pa.string(), pa.int64(), pa.bool_(), pa.null())


def _read_block(lines: list[bytes]) -> pa.Table | None:
    """Read JSON lines as the flat messages `_from_json` makes of them, or return None for a block with
    anything Arrow might read differently from orjson and `json.loads`.

    Such a block has an escape or a non-ASCII byte, where lone surrogates and invalid UTF-8 fall back to
    `json.loads`. It may also have a line that is not one JSON object with a known message type, a field
    whose type changes between lines, or a value whose text Arrow would write differently. NaN, infinite
    numbers and integers outside 64 bits become floats or fail in Arrow, so they are left to the
    per-line path too.
    """
    data = b"\n".join(lines)
    if b"\\" in data or not data.isascii():
        return None
    table = _arrow_json(data)
    if table is None or table.num_rows != len(lines):
        return None
    if _contains(table.schema, _is_container):
        # Lists become JSON text, or make a line a batch payload. pyarrow 26 also builds invalid arrays
        # for some lists of objects, so a block with a list is left before its data is touched.
        return None
    return _flat_messages(table)


def _arrow_json(data: bytes) -> pa.Table | None:
    """Parse JSON lines with Arrow, every string as text, or return None when Arrow rejects them."""
    options = pj.ReadOptions(use_threads=False, block_size=len(data) + 1)
    try:
        table = pj.read_json(pa.BufferReader(data), read_options=options, parse_options=_PARSE_OPTIONS)
        if _contains(table.schema, pa.types.is_timestamp):
            # Arrow infers timestamps from strings shaped like dates; read such fields again as text.
            schema = pa.schema([_timestamps_as_text(field) for field in table.schema])
            exact = pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="error")
            table = pj.read_json(pa.BufferReader(data), read_options=options, parse_options=exact)
    except (pa.ArrowInvalid, RecursionError):
        # A struct nested hundreds of levels deep exceeds the recursion of the schema walk above; the
        # line-by-line reader takes such a block instead.
        return None
    return table


def _contains(fields: Iterable[pa.Field], predicate: Callable[[pa.DataType], bool]) -> bool:
    """Return whether a field, or a field of a struct among them at any depth, has a type `predicate` accepts."""
    return any(
        predicate(field.type) or (pa.types.is_struct(field.type) and _contains(field.type, predicate))
        for field in fields
    )


def _is_container(data_type: pa.DataType) -> bool:
    """Return whether a type is nested but not a struct: a list, in JSON read by Arrow."""
    return pa.types.is_nested(data_type) and not pa.types.is_struct(data_type)


def _timestamps_as_text(field: pa.Field) -> pa.Field:
    if pa.types.is_timestamp(field.type):
        return field.with_type(pa.string())
    if pa.types.is_struct(field.type):
        return field.with_type(pa.struct([_timestamps_as_text(child) for child in field.type]))
    return field


def _flat_messages(table: pa.Table) -> pa.Table | None:
    """Return the columns `_from_json` makes of each message, or None where it would not match."""
    kinds = table.column("type").combine_chunks() if "type" in table.column_names else None
    if kinds is None or kinds.type != pa.string():
        return None
    if not pc.all(pc.is_in(kinds, value_set=pa.array(MESSAGE_TYPES))).as_py():
        return None
    schema = table.schema
    for tested in _TRUTH_TESTED:
        found = _field_type(schema, tested)
        if found is not None and found not in (pa.string(), pa.null()):
            return None

    rows = table.num_rows
    leaves: dict[tuple[str, ...], pa.Array] = {}
    for name, column in zip(table.column_names, table.columns, strict=True):
        array = column.combine_chunks()
        if name in _FIELDS or name == "originalTimestamp":
            # originalTimestamp has no column of its own but replaces a missing timestamp. A Segment
            # field holding an object becomes JSON text in `_from_json`.
            if array.type not in _TEXT_TYPES:
                return None
            leaves[(name,)] = array
        elif pa.types.is_struct(array.type) and not _add_leaves((name,), array, leaves):
            return None

    def text(path: tuple[str, ...]) -> pa.Array:
        array = leaves.get(path)
        return pa.nulls(rows, pa.string()) if array is None else array.cast(pa.string())

    flat = {target: text((key,)) for key, target in _FIELDS.items()}
    flat["group_id"] = pc.coalesce(_non_empty(flat["group_id"]), text(("context", "groupId")))
    flat["timestamp"] = pc.coalesce(
        _non_empty(flat["timestamp"]), _non_empty(text(("originalTimestamp",))), text(("receivedAt",))
    )
    flat["email"] = pc.coalesce(_non_empty(text(("traits", "email"))), text(("context", "traits", "email")))
    for path in leaves:
        if len(path) > 1:
            name = ".".join(path)
            if name in flat:
                # Two paths with the same dotted name, such as {"a.b": {"c": 1}} and {"a": {"b": {"c": 2}}}.
                return None
            flat[name] = text(path)
    return pa.table(flat)


def _add_leaves(
    path: tuple[str, ...], array: pa.StructArray, leaves: dict[tuple[str, ...], pa.Array]
) -> bool:
    """Collect the scalar fields under a struct by path, as `flatten` names them; return False for a
    value `flatten` would write as JSON text."""
    if len(path) >= MAX_FLATTEN_DEPTH:
        return False
    # StructArray.flatten gives children that are null where the struct itself is null.
    for child, values in zip(array.type, array.flatten(), strict=True):
        child_path = (*path, child.name)
        if pa.types.is_struct(values.type):
            if not _add_leaves(child_path, values, leaves):
                return False
        elif values.type in _TEXT_TYPES:
            leaves[child_path] = values
        else:
            return False
    return True


def _field_type(schema: pa.Schema | pa.StructType, path: tuple[str, ...]) -> pa.DataType | None:
    """Return the type of a nested field, or None when the path does not exist."""
    index = schema.get_field_index(path[0])
    if index < 0:
        return None
    found = schema.field(index).type
    if len(path) == 1:
        return found
    return _field_type(found, path[1:]) if pa.types.is_struct(found) else None


def _non_empty(array: pa.Array) -> pa.Array:
    """Return the array with empty strings as nulls, the values Python's `or` passes over."""
    return pc.if_else(pc.equal(array, ""), pa.scalar(None, pa.string()), array)


def _add_block(
    builder: BatchBuilder, block: JsonBlock[pa.Table], kinds: tuple[str, ...], timeline: Timeline
) -> None:
    """Add a block's messages of the table's kinds, placed as `_place` places each one, and count the rest."""
    messages = block.value
    taken = pc.is_in(messages.column("type"), value_set=pa.array(kinds))
    others = pc.filter(messages.column("type"), pc.invert(taken))
    for entry in pc.value_counts(others).to_pylist():
        builder.skip(f"{entry['values']} message", entry["counts"])
    numbers = np.arange(block.first_row, block.first_row + block.rows, dtype=np.int64)
    keep = np.asarray(taken, bool)
    if keep.any():
        builder.add_table(numbers[keep], _place_columns(messages.filter(taken), timeline))


def _place_columns(messages: pa.Table, timeline: Timeline) -> pa.Table:
    """Add the user, account and email columns to flat messages, as `_place` does row by row."""
    assert timeline.group_index is not None and timeline.email_index is not None
    user_id = messages.column("user_id").combine_chunks()
    codes = timeline.codes(user_id)
    instants, has_instant = parse_instants(messages.column("timestamp").combine_chunks())
    kind = messages.column("type")
    event = messages.column("event")
    named = pc.and_(pc.is_null(event), pc.is_in(kind, value_set=pa.array(("page", "screen"))))
    columns = {
        "user": pc.coalesce(_non_empty(user_id), messages.column("anonymous_id")),
        "account": pc.coalesce(
            _non_empty(messages.column("group_id")), timeline.group_index.at(codes, instants, has_instant)
        ),
        "email": pc.coalesce(
            _non_empty(messages.column("email")), timeline.email_index.at(codes, instants, has_instant)
        ),
        "event": pc.if_else(named, pc.coalesce(_non_empty(messages.column("name")), kind), event),
    }
    for name, values in columns.items():
        if name in messages.column_names:
            messages = messages.set_column(messages.column_names.index(name), name, values)
        else:
            messages = messages.append_column(name, values)
    return messages.select(sorted(messages.column_names))
