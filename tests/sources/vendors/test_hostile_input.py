"""Every adapter fed malformed and hostile records: a clear error or a balanced load, never a crash."""

from __future__ import annotations

import csv
import gzip
import io
import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from account_health.errors import AccountHealthError
from vendor_workspace import make_workspace, run_ingest

FORMULAS = ("=1+1", "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A2)", '=HYPERLINK("http://x")')
TIMES = ("2024-03-01T10:00:00Z", "1709287200", "2024-03-01", "yesterday", "9999-99-99", "")
CONTROL = "".join(chr(code) for code in (0, 1, 7, 8, 11, 12, 27, 127)) + "\u2028\u202e\ufeff"

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(alphabet=st.characters(codec="utf-8") | st.sampled_from(list(CONTROL)), max_size=30),
    st.sampled_from(FORMULAS + TIMES),
    st.just("x" * 300_000),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)

# format -> (table, fields a record may carry, extra config lines)
JSON_FORMATS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "segment": (
        "usage_events",
        ("type", "messageId", "userId", "anonymousId", "groupId", "event", "timestamp", "traits", "context"),
        "",
    ),
    "salesforce": ("contacts", ("attributes", "Id", "AccountId", "Email", "Title"), ""),
    "nps": (
        "sentiment_responses",
        ("id", "email", "created_at", "score", "status", "account_id"),
        'columns = { response_id = "id", responded_at = "created_at" }\n',
    ),
    "calls": ("sentiment_responses", ("call_id", "account_id", "started_at", "sentiment", "email"), ""),
    "job_changes": (
        "contact_changes",
        ("contact_id", "email", "event", "occurred_at", "UserGems__Has_Changed_Job__c"),
        "",
    ),
    "zendesk": ("tickets", ("id", "organization_id", "created_at", "updated_at", "priority", "status"), ""),
    "amplitude": ("usage_events", ("uuid", "event_type", "user_id", "event_time", "groups"), ""),
    "mixpanel": ("usage_events", ("event", "properties"), ""),
    "intercom": ("tickets", ("id", "created_at", "updated_at", "state", "priority", "company"), ""),
}
CSV_FORMATS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "csv": ("tickets", ("ticket_id", "account_id", "created_at", "priority", "status"), ""),
    "fivetran_zendesk": (
        "tickets",
        ("id", "organization_id", "created_at", "updated_at", "priority", "status", "_fivetran_deleted"),
        "",
    ),
    "fivetran_salesforce": ("contacts", ("id", "account_id", "email", "title", "is_deleted"), ""),
    "hubspot": ("contacts", ("Record ID", "Email", "Job Title", "Associated Company IDs"), ""),
    "fivetran_hubspot": ("contracts", ("deal_id", "property_amount", "property_closedate", "is_deleted"), ""),
    "segment": ("usage_events", ("id", "user_id", "event", "timestamp", "group_id"), ""),
}
FRIENDLY = {
    "type": st.sampled_from(("track", "group", "identify", "page", "bogus")),
    "status": st.sampled_from(("open", "solved", "deleted", "dismissed")),
    "priority": st.sampled_from(("urgent", "P1", "")),
}


@st.composite
def json_record(draw: st.DrawFn, fields: tuple[str, ...]) -> Any:
    if draw(st.integers(0, 9)) == 0:
        return draw(values)
    chosen = draw(st.lists(st.sampled_from(fields), unique=True))
    return {name: draw(FRIENDLY.get(name, values) | values) for name in chosen}


@st.composite
def json_file(draw: st.DrawFn, format_name: str) -> str:
    _table, fields, _extra = JSON_FORMATS[format_name]
    records = draw(st.lists(json_record(fields), min_size=1, max_size=6))
    if format_name == "zendesk":
        text = json.dumps({"tickets": records, "end_of_stream": True}, default=str)
        cut = draw(st.integers(0, 3))
        return text[: len(text) // 2] if cut == 0 else text
    lines = []
    for record in records:
        line = json.dumps(record, default=str)
        kind = draw(st.integers(0, 7))
        lines.append(line[: max(1, len(line) // 2)] if kind == 0 else CONTROL if kind == 1 else line)
    return "\n".join(lines) + "\n"


@st.composite
def csv_file(draw: st.DrawFn, format_name: str) -> str:
    _table, fields, _extra = CSV_FORMATS[format_name]
    rows = draw(
        st.lists(
            st.lists(st.one_of(scalars, st.sampled_from(FORMULAS)), min_size=1, max_size=len(fields) + 2),
            max_size=6,
        )
    )
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(fields)
    for row in rows:
        writer.writerow(["" if value is None else str(value).replace("\x00", "") for value in row])
    return buffer.getvalue()


def _check(format_name: str, table: str, extra: str, name: str, content: str) -> None:
    config = f'[sources.feed]\ntable = "{table}"\nformat = "{format_name}"\nfiles = ["{name}"]\n{extra}'
    with tempfile.TemporaryDirectory() as folder:
        workspace = make_workspace(Path(folder), config, {name: content.encode("utf-8", "surrogatepass")})
        try:
            report, store = run_ingest(workspace)
        except AccountHealthError as exc:
            assert name in str(exc) or "feed" in str(exc), exc
            return
        store.close()
    counts = report.sources[0]
    assert counts.read == counts.inserted + counts.new_version + counts.unchanged + counts.quarantined, counts


SETTINGS = settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


@pytest.mark.parametrize("format_name", sorted(JSON_FORMATS))
@SETTINGS
@given(data=st.data())
def test_json_adapter_survives_hostile_records(format_name: str, data: st.DataObject) -> None:
    table, _fields, extra = JSON_FORMATS[format_name]
    content = data.draw(json_file(format_name))
    name = "feed.json" if format_name == "zendesk" else "feed.jsonl"
    _check(format_name, table, extra, name, content)


@pytest.mark.parametrize("format_name", sorted(CSV_FORMATS))
@SETTINGS
@given(data=st.data())
def test_csv_adapter_survives_hostile_rows(format_name: str, data: st.DataObject) -> None:
    table, _fields, extra = CSV_FORMATS[format_name]
    content = data.draw(csv_file(format_name))
    name = "tracks.csv" if format_name == "segment" else "feed.csv"
    _check(format_name, table, extra, name, content)


@pytest.mark.parametrize("name", ["feed.jsonl", "feed.ndjson", "feed.jsonl.gz"])
@pytest.mark.parametrize(
    "later", ["", '{"type": "track", "messageId": "m2", "userId": "u1", "event": "A"}\n']
)
def test_broken_first_line_of_json_lines_is_quarantined(name: str, later: str) -> None:
    # A file named as JSON lines is read line by line, so a truncated first line is one quarantined row.
    content = '{"type": "track", "messageId": "m1", "userId"\n' + later
    data = content.encode()
    if name.endswith(".gz"):
        data = gzip.compress(data)
    config = f'[sources.feed]\ntable = "usage_events"\nformat = "segment"\nfiles = ["{name}"]\n'
    with tempfile.TemporaryDirectory() as folder:
        workspace = make_workspace(Path(folder), config, {name: data})
        report, store = run_ingest(workspace)
        with store:
            quarantined = store.connection.execute("SELECT row_number, reason FROM quarantine").fetchall()

    counts = report.sources[0]
    assert counts.read == (2 if later else 1)
    assert counts.read == counts.inserted + counts.new_version + counts.unchanged + counts.quarantined
    first = [reason for row, reason in quarantined if row == 1]
    assert len(first) == 1
    assert first[0].startswith("invalid JSON")


def test_lone_surrogate_escape_is_quarantined() -> None:
    # json.loads turns "\ud800" into a string that no text column can hold.
    good = '{"type": "track", "messageId": "m1", "userId": "u1", "event": "A", "timestamp": "2024-03-01T10:00:00Z"}'
    bad = '{"type": "track", "messageId": "m2", "userId": "u\\ud800", "event": "A", "timestamp": "2024-03-01T10:00:00Z"}'
    config = '[sources.feed]\ntable = "usage_events"\nformat = "segment"\nfiles = ["feed.jsonl"]\n'
    with tempfile.TemporaryDirectory() as folder:
        workspace = make_workspace(Path(folder), config, {"feed.jsonl": f"{good}\n{bad}\n"})
        report, store = run_ingest(workspace)
        with store:
            quarantined = store.connection.execute("SELECT row_number, reason FROM quarantine").fetchall()

    assert report.sources[0].read == 2
    assert [row for row, _ in quarantined] == [2]
    assert "lone surrogate" in quarantined[0][1]
