"""Segment JSON lines read a block at a time through Arrow give the rows and rejections of the per-line path."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from account_health.config import SourceConfig
from account_health.sources.vendors.base import BLOCK_LINES
from account_health.sources.vendors.segment import SegmentAdapter, _read_block

Output = tuple[list[tuple[int, int, dict[str, str]]], list[tuple[int, int, str, str]], Counter[str]]


def _read(adapter: SegmentAdapter, paths: list[Path], table: str) -> Output:
    """Return the adapter's rows (nulls left out), rejected rows and skipped kinds, sorted by file and row."""
    config = SourceConfig.model_validate(
        {"table": table, "format": "segment", "files": [str(p) for p in paths]}
    )
    rows: list[tuple[int, int, dict[str, str]]] = []
    rejected: list[tuple[int, int, str, str]] = []
    skipped: Counter[str] = Counter()
    for part in adapter.read(paths, config, table):
        numbers = part.batch.row_numbers.tolist()
        for number, row in zip(numbers, part.batch.table.to_pylist(), strict=True):
            kept = {name: value for name, value in row.items() if value is not None}
            rows.append((part.file_index, number, kept))
        rejected += [(part.file_index, row.row_number, row.text, row.reason) for row in part.batch.rejected]
        skipped.update(part.skipped)
    return sorted(rows, key=lambda row: row[:2]), sorted(rejected), skipped


def _assert_same_output(
    paths: list[Path], tables: tuple[str, ...] = ("usage_events", "users", "accounts")
) -> None:
    for table in tables:
        columnar = _read(SegmentAdapter(columnar=True), paths, table)
        per_line = _read(SegmentAdapter(columnar=False), paths, table)
        assert columnar[0] == per_line[0], table
        assert columnar[1] == per_line[1], table
        assert columnar[2] == per_line[2], table


def _write(path: Path, lines: list[str]) -> Path:
    path.write_bytes("".join(line + "\n" for line in lines).encode("utf-8", errors="surrogatepass"))
    return path


def _line(**message: Any) -> str:
    return json.dumps(message, separators=(",", ":"))


def _track(number: int, user: str = "u1", **extra: Any) -> str:
    instant = f"2024-01-{1 + number % 28:02d}T{number % 24:02d}:00:00Z"
    return _line(
        type="track", messageId=f"t{number}", userId=user, event="Viewed", timestamp=instant, **extra
    )


GROUPS = [
    _line(type="group", messageId="g1", userId="u1", groupId="acme", timestamp="2024-01-05T00:00:00Z"),
    _line(type="group", messageId="g2", userId="u1", groupId="globex", timestamp="2024-01-10T00:00:00Z"),
    # Two group calls at the same instant: the one read last wins.
    _line(type="group", messageId="g3", userId="u2", groupId="first", timestamp="2024-01-03T00:00:00Z"),
    _line(type="group", messageId="g4", userId="u2", groupId="second", timestamp="2024-01-03T00:00:00Z"),
    _line(
        type="identify",
        messageId="i1",
        userId="u1",
        traits={"email": "ana@acme.example", "plan": "pro"},
        timestamp="2024-01-02T00:00:00Z",
    ),
    _line(
        type="identify",
        messageId="i2",
        userId="u2",
        context={"traits": {"email": "bo@globex.example"}},
        timestamp="2024-01-20T00:00:00Z",
    ),
    _line(type="group", messageId="g5", userId="u3", groupId="", timestamp="2024-01-01T00:00:00Z"),
]


def test_plain_block_read_through_arrow() -> None:
    lines = [_track(number).encode() for number in range(10)]

    table = _read_block(lines)

    assert table is not None
    assert table.num_rows == 10
    assert table.column("message_id").to_pylist()[:2] == ["t0", "t1"]


@pytest.mark.parametrize(
    "line",
    [
        '{"type":"track","event":"caf\\u00e9","timestamp":"2024-01-01T00:00:00Z"}',
        '{"type":"track","event":"café","timestamp":"2024-01-01T00:00:00Z"}',
        '{"type":"track","event":"A","properties":{"price":9.5}}',
        '{"type":"track","event":"A","properties":{"tags":["a","b"]}}',
        '{"type":"track","event":"A","properties":{"a":{"b":{"c":{"d":1}}}}}',
        '{"type":"track","event":{"name":"A"}}',
        '{"type":"track","groupId":7}',
        '{"type":"track","context":{"groupId":7}}',
        '{"type":"track","traits":{"email":{"work":"a@b.example"}}}',
        '{"type":"track","timestamp":1704067200}',
        '{"type":"track","properties":{"n":NaN}}',
        '{"type":"track","properties":{"n":123456789012345678901234}}',
        '{"type":"bogus"}',
        '{"event":"no type"}',
        "[1,2]",
        '{"batch":[{"type":"track"}]}',
        '{"type":"track","batch":[{"type":"page"}]}',
        '{"type":"track"} {"type":"track"}',
        '{"type":"track","a":1,"a":2}',
        '{"type":"track","a.b":{"c":1},"a":{"b":{"c":2}}}',
        '{"type":"track","messageId":"t2"',
    ],
)
def test_unusual_line_not_read_by_arrow(line: str) -> None:
    lines = [_track(1).encode(), line.encode(), _track(2).encode()]

    assert _read_block(lines) is None


def test_type_change_not_read_by_arrow() -> None:
    lines = [_track(1, properties={"count": 1}).encode(), _track(2, properties={"count": "two"}).encode()]

    assert _read_block(lines) is None


def test_tricky_messages_match_per_line(tmp_path: Path) -> None:
    tracks = [
        _track(1),
        _track(2, user="u2"),
        _track(3, user="nobody"),
        _track(4, groupId="direct"),
        _track(5, groupId="", context={"groupId": "from-context"}),
        _track(6, properties={"plan": "pro", "seats": 12, "trial": False, "owner": {"name": "Ana", "id": 3}}),
        _track(7, properties={"deep": {"a": {"b": "leaf"}}, "empty": {}, "gone": None}),
        _line(type="page", messageId="p1", userId="u1", name="Pricing", timestamp="2024-01-12T00:00:00Z"),
        _line(type="screen", messageId="s1", anonymousId="anon-1", timestamp="2024-01-12T00:00:00Z"),
        _line(type="page", messageId="p2", userId="u1", name="", timestamp="2024-01-12T00:00:00Z"),
        _line(type="track", messageId="t8", userId="u1", event="A", originalTimestamp="2024-01-11T00:00:00Z"),
        _line(
            type="track",
            messageId="t9",
            userId="u1",
            event="A",
            timestamp="",
            receivedAt="2024-01-04T00:00:00Z",
        ),
        _line(
            type="track",
            messageId="t10",
            userId="",
            anonymousId="anon-2",
            event="A",
            timestamp="2024-01-11T00:00:00Z",
        ),
        _line(type="track", messageId=11, userId=42, event="A", timestamp="2024-01-11T00:00:00Z", sentAt="x"),
        _line(type="track", messageId="t12", userId="u1", event="A", timestamp="2024-01-10T00:00:00.5Z"),
        _line(type="track", messageId="t13", userId="u1", event="A", timestamp="2024-01-09T23:59:59.999999Z"),
        _line(type="track", messageId="t14", userId="u1", event="A", timestamp="1704844800000"),
        _line(type="track", messageId="t15", userId="u1", event="A", timestamp="2024-01-10T01:00:00+01:00"),
        _line(type="track", messageId="t16", userId="u1", event="A", timestamp="2024-02-30T00:00:00Z"),
        _line(type="track", messageId="t17", userId="u1", event="A", timestamp="0000-01-01T00:00:00Z"),
        _line(
            type="track", messageId="t18", userId="u1", event="A", timestamp="2024-01-10T00:00:00.1234567Z"
        ),
        _line(type="track", messageId="t19", userId="u1", event="A", timestamp="not a time"),
        _line(
            type="track",
            messageId="t20",
            userId="u1",
            event="A",
            traits={"email": ""},
            context={"traits": {"email": "c@d.example"}},
        ),
        _line(
            type="track",
            messageId="t21",
            userId="u1",
            event="A",
            timestamp="2024-01-15T00:00:00Z",
            email="top@level.example",
        ),
        _line(
            type="alias", messageId="a1", userId="u1", previousId="anon-1", timestamp="2024-01-15T00:00:00Z"
        ),
        _line(
            type="track",
            messageId="t22",
            userId="u1",
            event=None,
            properties="text",
            timestamp="2024-01-15T00:00:00Z",
        ),
        _line(type="track", messageId="t23", userId="u3", event="A", timestamp="2024-01-15T00:00:00Z"),
    ]
    # One file per message, so that an unusual message cannot send the others to the per-line path.
    paths = [_write(tmp_path / f"events-{number}.jsonl", [line]) for number, line in enumerate(tracks)]
    groups = _write(tmp_path / "users.jsonl", GROUPS)

    assert [line for line in tracks if _read_block([line.encode()]) is None] == []
    _assert_same_output([*paths, groups])


def test_bad_lines_mid_block_match_per_line(tmp_path: Path) -> None:
    # Three blocks: the first plain, the second with a bad line, an escape, non-ASCII text and a type
    # change in its middle, the third plain again after a batch payload line.
    first = [_track(number) for number in range(BLOCK_LINES)]
    second = [_track(number, user="u2") for number in range(BLOCK_LINES, 2 * BLOCK_LINES)]
    second[10] = '{"type": "track", "messageId": "broken", "userId"'
    second[20] = _track(20, properties={"name": "caf\u00e9"})
    second[30] = _track(30, properties={"name": "line\nbreak"})
    second[40] = _track(40, properties={"name": 5})
    second[50] = _track(50, properties={"name": "five"})
    third = [json.dumps({"batch": [json.loads(_track(1)), json.loads(_track(2))]})]
    third += [_track(number, user="u1") for number in range(100)]
    path = _write(tmp_path / "tracks.jsonl", first + second + third)
    groups = _write(tmp_path / "users.jsonl", GROUPS)

    _assert_same_output([path, groups], ("usage_events",))


def test_line_ends_and_encodings_match(tmp_path: Path) -> None:
    plain = [_track(number) for number in range(5)]
    path = tmp_path / "events.jsonl"
    path.write_bytes(
        b"\xef\xbb\xbf"
        + "\r\n".join(plain).encode()
        + b"\r\n\r\n   \n\t"
        + _track(9).encode()
        + b"  \n"
        + b'{"type":"track","messageId":"bad-utf8","event":"\xff","timestamp":"2024-01-01T00:00:00Z"}\n'
        # An escaped lone surrogate, which both paths quarantine.
        + b'{"type":"track","messageId":"lone","note":"\\ud800","timestamp":"2024-01-01T00:00:00Z"}\n'
        + _track(10).encode()
    )
    groups = _write(tmp_path / "users.jsonl", GROUPS)

    _assert_same_output([path, groups])


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from(["", "x", "2024-01-05T00:00:00Z", "2024-01-05", "acme", "u1", "1.5"]),
    lambda inner: (
        st.dictionaries(st.sampled_from(["a", "b", "email", "groupId", "a.b"]), inner, max_size=3)
        | st.lists(inner, max_size=2)
    ),
    max_leaves=5,
)
messages = st.fixed_dictionaries(
    {"type": st.sampled_from(["track", "page", "screen", "identify", "group", "alias"])},
    optional={
        "messageId": st.sampled_from(["m1", "m2"]),
        "userId": st.sampled_from(["u1", "u2", "u3", ""]),
        "anonymousId": st.sampled_from(["anon", ""]),
        "groupId": st.sampled_from(["acme", "globex", ""]) | json_values,
        "event": st.sampled_from(["A", "B"]) | json_values,
        "name": st.sampled_from(["Home", ""]),
        "timestamp": st.sampled_from(["2024-01-04T00:00:00Z", "2024-01-06T00:00:00.25Z", "", "1704412800"]),
        "originalTimestamp": st.sampled_from(["2024-01-07T00:00:00Z", ""]),
        "receivedAt": st.sampled_from(["2024-01-08T00:00:00Z", ""]),
        "properties": json_values,
        "traits": json_values,
        "context": json_values,
        "batch": st.just(
            [{"type": "track", "messageId": "b1", "userId": "u1", "timestamp": "2024-01-09T00:00:00Z"}]
        ),
    },
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(messages, min_size=1, max_size=12))
def test_random_messages_match_per_line(tmp_path: Path, generated: list[dict[str, Any]]) -> None:
    lines = [json.dumps(message) for message in generated]
    # All messages in one block, and each in a file of its own, where Arrow reads every usual one.
    together = _write(tmp_path / "random.jsonl", lines + GROUPS)
    alone = [_write(tmp_path / f"random-{number}.jsonl", [line]) for number, line in enumerate(lines)]

    _assert_same_output([together, *alone])
