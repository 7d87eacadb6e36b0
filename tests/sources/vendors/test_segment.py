"""Segment batch payloads, JSON lines and warehouse tables, ingested into a real DuckDB store."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from vendor_workspace import assert_balanced, counts, json_lines, make_workspace, rows, run_ingest

ACCOUNTS = "account_id,name\nacme,Acme\nglobex,Globex\n"
ACCOUNTS_SOURCE = '[sources.accounts]\ntable = "accounts"\nfiles = ["accounts.csv"]\n\n'


def _events_source(files: str, table: str = "usage_events", name: str = "events") -> str:
    return f'[sources.{name}]\ntable = "{table}"\nformat = "segment"\nfiles = [{files}]\n\n'


def _message(
    kind: str, message_id: str, user: str | None, timestamp: str, **extra: object
) -> dict[str, object]:
    message: dict[str, object] = {"type": kind, "messageId": message_id, "timestamp": timestamp, **extra}
    if user is not None:
        message["userId"] = user
    return message


def test_track_takes_latest_group_at_or_before(tmp_path: Path) -> None:
    messages = [
        _message("group", "g1", "u1", "2024-01-01T00:00:00Z", groupId="acme"),
        _message("track", "t1", "u1", "2024-01-05T00:00:00Z", event="Report Viewed"),
        _message("group", "g2", "u1", "2024-02-01T00:00:00Z", groupId="globex"),
        _message("track", "t2", "u1", "2024-02-01T00:00:00Z", event="Report Viewed"),
        _message("track", "t3", "u1", "2024-01-31T23:59:59Z", event="Export"),
        _message("track", "t4", "u2", "2024-01-05T00:00:00Z", event="Export"),
        _message("track", "t5", "u1", "2023-12-31T00:00:00Z", event="Export"),
        _message("track", "t6", "u2", "2024-01-06T00:00:00Z", event="Export", context={"groupId": "acme"}),
    ]
    workspace = make_workspace(
        tmp_path,
        ACCOUNTS_SOURCE + _events_source('"segment.jsonl"'),
        {"accounts.csv": ACCOUNTS, "segment.jsonl": json_lines(messages)},
    )

    report, store = run_ingest(workspace)
    with store:
        stored = dict(rows(store, "SELECT event_id, account_id FROM usage_events"))
        flags = dict(rows(store, "SELECT event_id, _unattributed FROM usage_events"))

    assert stored == {
        "t1": "acme",
        "t2": "globex",
        "t3": "acme",
        "t4": None,
        "t5": None,
        "t6": "acme",
    }
    assert flags["t4"] is True
    assert flags["t5"] is True
    events = counts(report, "events")
    assert (events.read, events.inserted, events.unattributed) == (6, 6, 2)
    assert events.skipped == {"group message": 2}
    assert events.unattributed_examples == ["(no account id)"]
    assert_balanced(report)


def test_batch_payload_and_identify_feed_users(tmp_path: Path) -> None:
    payload = {
        "batch": [
            _message("identify", "i1", "u1", "2024-01-01T00:00:00Z", traits={"email": "ana@acme.com"}),
            _message("group", "g1", "u1", "2024-01-01T00:00:05Z", groupId="acme", traits={"name": "Acme"}),
            _message("identify", "i2", "u2", "2024-01-02T00:00:00Z", traits={"email": "bo@initech.com"}),
            _message("page", "p1", "u1", "2024-01-03T00:00:00Z", name="Pricing"),
        ],
        "sentAt": "2024-01-03T00:00:01Z",
    }
    config = (
        ACCOUNTS_SOURCE
        + _events_source('"payload.json"', "users", "segment_users")
        + _events_source('"payload.json"', "usage_events", "segment_pages")
    )
    workspace = make_workspace(tmp_path, config, {"accounts.csv": ACCOUNTS, "payload.json": payload})

    report, store = run_ingest(workspace)
    with store:
        users = rows(store, "SELECT user_id, account_id, email, _row_number FROM users ORDER BY user_id")
        pages = rows(store, "SELECT event_id, account_id, event, occurred_at FROM usage_events")

    assert users == [("u1", "acme", "ana@acme.com", 2), ("u2", None, "bo@initech.com", 3)]
    assert pages == [("p1", "acme", "Pricing", datetime(2024, 1, 3))]
    user_counts = counts(report, "segment_users")
    # u1's identify call is merged into its later group call as a new version of u1.
    assert (user_counts.read, user_counts.inserted, user_counts.new_version) == (3, 2, 1)
    assert user_counts.unattributed == 1
    assert user_counts.skipped == {"page message": 1}
    assert_balanced(report)


def test_warehouse_tables_resolve_groups(tmp_path: Path) -> None:
    tracks = (
        "id,user_id,anonymous_id,event,event_text,timestamp\n"
        "w1,u1,,report_viewed,Report Viewed,2024-03-02 10:00:00.000+00\n"
        "w2,,anon-7,report_viewed,Report Viewed,2024-03-02 11:00:00\n"
    )
    groups = "id,group_id,user_id,name,timestamp\ngw1,globex,u1,Globex,2024-03-01 09:00:00+00\n"
    workspace = make_workspace(
        tmp_path,
        ACCOUNTS_SOURCE + _events_source('"warehouse/tracks.csv", "warehouse/groups.csv"'),
        {"accounts.csv": ACCOUNTS, "warehouse/tracks.csv": tracks, "warehouse/groups.csv": groups},
    )

    report, store = run_ingest(workspace)
    with store:
        stored = rows(
            store, "SELECT event_id, account_id, user_id, event, _file FROM usage_events ORDER BY 1"
        )

    assert stored == [
        ("w1", "globex", "u1", "report_viewed", "warehouse/tracks.csv"),
        ("w2", None, "anon-7", "report_viewed", "warehouse/tracks.csv"),
    ]
    assert counts(report, "events").skipped == {"group message": 1}
    assert_balanced(report)


def test_malformed_lines_quarantined(tmp_path: Path) -> None:
    lines = (
        json_lines([_message("track", "t1", "u1", "2024-01-05T00:00:00Z", event="A", groupId="acme")])
        + '{"type": "track", "messageId": "t2", "userId"\n'
        + "\n"
        + json_lines([{"type": "bogus"}, [1, 2], _message("track", "t3", "u1", "not a time", groupId="acme")])
    )
    workspace = make_workspace(
        tmp_path,
        ACCOUNTS_SOURCE + _events_source('"events.jsonl"'),
        {"accounts.csv": ACCOUNTS, "events.jsonl": lines},
    )

    report, store = run_ingest(workspace)
    with store:
        quarantined = rows(store, 'SELECT row_number, "column", reason FROM quarantine ORDER BY row_number')

    assert [(row, column) for row, column, _ in quarantined] == [
        (2, "(whole row)"),
        (3, "(whole row)"),
        (4, "(whole row)"),
        (5, "occurred_at"),
    ]
    assert quarantined[0][2].startswith("invalid JSON")
    assert "type 'bogus'" in quarantined[1][2]
    events = counts(report, "events")
    assert (events.read, events.inserted, events.quarantined) == (5, 1, 4)
    assert_balanced(report)


def test_shared_fixtures_load(shared_data: Path, tmp_path: Path) -> None:
    folder = shared_data / "segment"
    config = _events_source(f'"{folder}/*.json"') + _events_source(f'"{folder}/*.json"', "users", "people")
    workspace = make_workspace(tmp_path, config, {})

    report, store = run_ingest(workspace)
    with store:
        events = rows(store, "SELECT DISTINCT event_id, user_id, event FROM usage_events ORDER BY 1, 3")
        users = rows(store, "SELECT user_id, account_id FROM users")

    # Every fixture track, page and screen message is read. The library reuses one message id, so
    # repeated messages with the same content are unchanged rather than new rows.
    tracked = counts(report, "events")
    assert tracked.read == 11
    assert tracked.unattributed_examples == ["(no account id)", "'A'"]
    assert tracked.skipped == {"alias message": 1, "group message": 1, "identify message": 1}
    assert ("abc", "123456", "Download") in events
    assert ("I'm unique", "B", "A") in events
    assert users == [("B", "A")]
    assert_balanced(report)


def test_deeply_nested_line_still_loads(tmp_path: Path) -> None:
    deep: dict[str, object] = {"leaf": 1}
    for _ in range(400):
        deep = {"inner": deep}
    messages = [
        _message("track", "t1", "u1", "2024-01-05T00:00:00Z", event="A", groupId="acme"),
        _message("track", "t2", "u1", "2024-01-06T00:00:00Z", event="B", groupId="acme", properties=deep),
    ]
    workspace = make_workspace(
        tmp_path,
        ACCOUNTS_SOURCE + _events_source('"events.jsonl"'),
        {"accounts.csv": ACCOUNTS, "events.jsonl": json_lines(messages)},
    )

    report, store = run_ingest(workspace)
    with store:
        stored = rows(store, "SELECT event_id FROM usage_events ORDER BY event_id")

    assert stored == [("t1",), ("t2",)]
    assert_balanced(report)
