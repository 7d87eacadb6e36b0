"""Amplitude, Mixpanel and Intercom exports, ingested into DuckDB."""

from __future__ import annotations

import gzip
import io
import json
import zipfile
from datetime import datetime
from pathlib import Path

import pytest

from account_health.errors import SourceError
from vendor_workspace import assert_balanced, counts, json_lines, make_workspace, rows, run_ingest

ACCOUNTS = "account_id\nacme\nglobex\n"
BASE = '[sources.accounts]\ntable = "accounts"\nfiles = ["accounts.csv"]\n\n'


def _amplitude_zip(hours: list[list[dict[str, object]]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for hour, events in enumerate(hours):
            archive.writestr(
                f"123/123_2024-03-01_{hour}#0.json.gz", gzip.compress(json_lines(events).encode())
            )
    return buffer.getvalue()


def test_amplitude_zip_of_gzipped_hours(tmp_path: Path) -> None:
    first = [
        {
            "uuid": "u-1",
            "event_type": "Open",
            "user_id": "ana",
            "event_time": "2024-03-01 00:10:00.000000",
            "groups": {"company": ["acme"]},
        },
        {
            "uuid": "u-2",
            "event_type": "Open",
            "device_id": "dev-9",
            "event_time": "2024-03-01 00:20:00.000000",
            "groups": {},
        },
    ]
    second = [
        {
            "uuid": "u-3",
            "event_type": "Export",
            "user_id": "bo",
            "event_time": "2024-03-01 01:05:00",
            "groups": {"org": "globex"},
        }
    ]
    config = (
        BASE + '[sources.amplitude]\ntable = "usage_events"\nformat = "amplitude"\nfiles = ["export.zip"]\n'
    )
    workspace = make_workspace(
        tmp_path, config, {"accounts.csv": ACCOUNTS, "export.zip": _amplitude_zip([first, second])}
    )

    report, store = run_ingest(workspace)
    with store:
        stored = rows(
            store,
            "SELECT event_id, account_id, user_id, occurred_at, _row_number FROM usage_events ORDER BY 1",
        )

    assert stored == [
        ("u-1", "acme", "ana", datetime(2024, 3, 1, 0, 10), 1),
        ("u-2", None, "dev-9", datetime(2024, 3, 1, 0, 20), 2),
        ("u-3", "globex", "bo", datetime(2024, 3, 1, 1, 5), 3),
    ]
    assert counts(report, "amplitude").unattributed == 1
    assert_balanced(report)


def test_mixpanel_events_without_insert_id(tmp_path: Path) -> None:
    events = [
        {
            "event": "Signed In",
            "properties": {
                "time": 1709251200,
                "distinct_id": "ana",
                "$insert_id": "i-1",
                "company_id": "acme",
            },
        },
        {
            "event": "Signed In",
            "properties": {"time": 1709251260, "distinct_id": "bo", "company_id": "globex"},
        },
        {
            "event": "Signed In",
            "properties": {"time": 1709251260, "distinct_id": "bo", "company_id": "globex"},
        },
    ]
    config = (
        BASE
        + '[sources.mixpanel]\ntable = "usage_events"\nformat = "mixpanel"\nfiles = ["export.jsonl.gz"]\n'
    )
    files = {"accounts.csv": ACCOUNTS, "export.jsonl.gz": gzip.compress(json_lines(events).encode())}
    workspace = make_workspace(tmp_path, config, files)

    report, store = run_ingest(workspace)
    with store:
        stored = rows(store, "SELECT account_id, user_id, occurred_at FROM usage_events ORDER BY occurred_at")

    assert stored == [("acme", "ana", datetime(2024, 3, 1)), ("globex", "bo", datetime(2024, 3, 1, 0, 1))]
    mixpanel = counts(report, "mixpanel")
    assert (mixpanel.read, mixpanel.inserted, mixpanel.unchanged) == (3, 2, 1)
    assert_balanced(report)


def test_intercom_conversations_as_tickets(tmp_path: Path) -> None:
    page = {
        "type": "conversation.list",
        "conversations": [
            {
                "id": "c1",
                "created_at": 1709251200,
                "updated_at": 1709254800,
                "state": "closed",
                "priority": "priority",
                "statistics": {"last_close_at": 1709254800},
                "source": {"author": {"email": "ana@acme.com"}},
            },
            {
                "id": "c2",
                "created_at": 1709251200,
                "updated_at": 1709251300,
                "state": "open",
                "priority": "not_priority",
                "company": {"id": "globex"},
                "source": {"author": {"email": "x@nowhere.com"}},
            },
        ],
    }
    config = (
        BASE
        + '[sources.intercom]\ntable = "tickets"\nformat = "intercom"\nfiles = ["conversations.json"]\n'
        + '[identity]\nemail_domains = { "acme.com" = "acme" }\n'
    )
    workspace = make_workspace(
        tmp_path, config, {"accounts.csv": ACCOUNTS, "conversations.json": json.dumps(page)}
    )

    report, store = run_ingest(workspace)
    with store:
        stored = rows(
            store, "SELECT ticket_id, account_id, priority, status, solved_at FROM tickets ORDER BY 1"
        )

    assert stored == [
        ("c1", "acme", "high", "closed", datetime(2024, 3, 1, 1)),
        ("c2", "globex", "normal", "open", None),
    ]
    assert_balanced(report)


def test_mixpanel_list_group_keys(tmp_path: Path) -> None:
    """A list-valued group key: one id is the account, several are quarantined, none is unattributed."""

    def event(insert_id: str, company: object) -> dict[str, object]:
        return {
            "event": "Signed In",
            "properties": {
                "time": 1709251200,
                "distinct_id": "ana",
                "$insert_id": insert_id,
                "company_id": company,
            },
        }

    events = [
        event("i-1", ["acme"]),
        event("i-2", ["acme", "globex"]),
        event("i-3", []),
        event("i-4", "globex"),
        event("i-5", ["globex", "globex"]),
        event("i-6", [7]),
    ]
    config = (
        BASE + '[sources.mixpanel]\ntable = "usage_events"\nformat = "mixpanel"\nfiles = ["export.jsonl"]\n'
    )
    workspace = make_workspace(
        tmp_path, config, {"accounts.csv": ACCOUNTS, "export.jsonl": json_lines(events)}
    )

    report, store = run_ingest(workspace)
    with store:
        stored = rows(store, "SELECT event_id, account_id, _unattributed FROM usage_events ORDER BY 1")
        quarantined = rows(store, 'SELECT row_number, "column", reason FROM quarantine')

    assert stored == [
        ("i-1", "acme", False),
        ("i-3", None, True),
        ("i-4", "globex", False),
        ("i-5", "globex", False),
        ("i-6", "7", True),
    ]
    assert len(quarantined) == 1
    row_number, column, reason = quarantined[0]
    assert (row_number, column) == (2, "(whole row)")
    assert "properties.company_id" in reason
    assert "'acme', 'globex'" in reason
    mixpanel = counts(report, "mixpanel")
    assert (mixpanel.read, mixpanel.inserted, mixpanel.quarantined, mixpanel.unattributed) == (6, 5, 1, 2)
    assert_balanced(report)


def test_mixpanel_mapped_group_key_list(tmp_path: Path) -> None:
    events = [
        {"event": "Open", "properties": {"time": 1709251200, "distinct_id": "ana", "team": ["acme"]}},
        {"event": "Open", "properties": {"time": 1709251260, "distinct_id": "bo", "team": ["acme", "x"]}},
    ]
    config = BASE + (
        '[sources.mixpanel]\ntable = "usage_events"\nformat = "mixpanel"\nfiles = ["export.jsonl"]\n'
        'columns = { account_id = "properties.team" }\n'
    )
    workspace = make_workspace(
        tmp_path, config, {"accounts.csv": ACCOUNTS, "export.jsonl": json_lines(events)}
    )

    report, store = run_ingest(workspace)
    with store:
        stored = rows(store, "SELECT user_id, account_id FROM usage_events")
        reasons = rows(store, "SELECT reason FROM quarantine")

    assert stored == [("ana", "acme")]
    assert len(reasons) == 1
    assert "properties.team lists 2 groups ('acme', 'x')" in reasons[0][0]
    assert_balanced(report)


def test_amplitude_group_lists(tmp_path: Path) -> None:
    """Amplitude's groups follow the list rule: one id is the account, several are quarantined."""

    def event(uuid: str, groups: dict[str, object]) -> dict[str, object]:
        return {
            "uuid": uuid,
            "event_type": "Open",
            "user_id": "ana",
            "event_time": "2024-03-01 00:10:00",
            "groups": groups,
        }

    hour = [
        event("u-1", {"company": ["acme", "acme"]}),
        event("u-2", {"company": ["acme", "globex"]}),
        event("u-3", {"company": [], "org": "globex"}),
    ]
    config = (
        BASE + '[sources.amplitude]\ntable = "usage_events"\nformat = "amplitude"\nfiles = ["export.zip"]\n'
    )
    workspace = make_workspace(
        tmp_path, config, {"accounts.csv": ACCOUNTS, "export.zip": _amplitude_zip([hour])}
    )

    report, store = run_ingest(workspace)
    with store:
        stored = rows(store, "SELECT event_id, account_id FROM usage_events ORDER BY 1")
        reasons = rows(store, "SELECT row_number, reason FROM quarantine")

    assert stored == [("u-1", "acme"), ("u-3", "globex")]
    assert len(reasons) == 1
    assert reasons[0][0] == 2
    assert "groups.company lists 2 groups ('acme', 'globex')" in reasons[0][1]
    assert_balanced(report)


def test_intercom_companies_list(tmp_path: Path) -> None:
    """A conversation's `companies` list of company objects: one is the account, several are quarantined."""

    def conversation(ticket: str, companies: list[dict[str, str]]) -> dict[str, object]:
        return {
            "id": ticket,
            "created_at": 1709251200,
            "updated_at": 1709254800,
            "state": "open",
            "companies": {"type": "company.list", "companies": companies},
        }

    page = {
        "type": "conversation.list",
        "conversations": [
            conversation("c1", [{"type": "company", "id": "acme"}]),
            conversation("c2", [{"type": "company", "id": "acme"}, {"type": "company", "id": "globex"}]),
            conversation("c3", []),
        ],
    }
    config = (
        BASE + '[sources.intercom]\ntable = "tickets"\nformat = "intercom"\nfiles = ["conversations.json"]\n'
    )
    workspace = make_workspace(
        tmp_path, config, {"accounts.csv": ACCOUNTS, "conversations.json": json.dumps(page)}
    )

    report, store = run_ingest(workspace)
    with store:
        stored = rows(store, "SELECT ticket_id, account_id, _unattributed FROM tickets ORDER BY 1")
        reasons = rows(store, "SELECT reason FROM quarantine")

    assert stored == [("c1", "acme", False), ("c3", None, True)]
    assert len(reasons) == 1
    assert "companies.companies lists 2 groups ('acme', 'globex')" in reasons[0][0]
    assert_balanced(report)


def _zip_with(extra: dict[str, bytes]) -> bytes:
    event = {"uuid": "u-1", "event_type": "Open", "user_id": "ana", "event_time": "2024-03-01 00:10:00"}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("123/123_2024-03-01_0#0.json.gz", gzip.compress(json_lines([event]).encode()))
        for name, content in extra.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def test_amplitude_zip_skips_macos_metadata(tmp_path: Path) -> None:
    config = (
        BASE + '[sources.amplitude]\ntable = "usage_events"\nformat = "amplitude"\nfiles = ["export.zip"]\n'
    )
    metadata = {
        "__MACOSX/123/._123_2024-03-01_0#0.json.gz": b"\x00\x05\x16\x07",
        "123/.DS_Store": b"\x00\x00",
    }
    workspace = make_workspace(
        tmp_path, config, {"accounts.csv": ACCOUNTS, "export.zip": _zip_with(metadata)}
    )

    report, store = run_ingest(workspace)
    with store:
        stored = rows(store, "SELECT event_id FROM usage_events")

    assert stored == [("u-1",)]
    assert_balanced(report)


def test_amplitude_zip_error_names_member(tmp_path: Path) -> None:
    config = (
        BASE + '[sources.amplitude]\ntable = "usage_events"\nformat = "amplitude"\nfiles = ["export.zip"]\n'
    )
    extra = {"README.txt": b"Exported by Amplitude.\n", "broken.json.gz": b"not gzip"}
    workspace = make_workspace(tmp_path, config, {"accounts.csv": ACCOUNTS, "export.zip": _zip_with(extra)})

    with pytest.raises(SourceError) as raised:
        run_ingest(workspace)

    assert "export.zip, member README.txt: is not valid JSON" in str(raised.value)
