"""Zendesk incremental export pages, single API objects and Fivetran tables, ingested into DuckDB."""

from __future__ import annotations

import gzip
import random
from datetime import datetime
from pathlib import Path

import pytest

from account_health.errors import SourceError
from account_health.signals import compute_signals
from vendor_workspace import assert_balanced, counts, make_workspace, rows, run_ingest

ACCOUNTS = "account_id,name\nacme,Acme\nglobex,Globex\n"
ACCOUNTS_SOURCE = '[sources.accounts]\ntable = "accounts"\nfiles = ["accounts.csv"]\n\n'
TICKETS_SOURCE = '[sources.tickets]\ntable = "tickets"\nformat = "zendesk"\nfiles = ["zendesk/*.json"]\n'
ORG_MAP = '[sources.tickets.identity]\nids = { "9001" = "acme", "9002" = "globex" }\n'


def _ticket(
    ticket_id: int, org: int | None, updated: str, status: str = "open", priority: str = "normal"
) -> dict[str, object]:
    return {
        "id": ticket_id,
        "organization_id": org,
        "created_at": "2024-01-01T08:00:00Z",
        "updated_at": updated,
        "priority": priority,
        "status": status,
        "tags": ["billing"],
        "via": {"channel": "email"},
    }


def _cursor_page(tickets: list[dict[str, object]], end: bool, cursor: str) -> dict[str, object]:
    return {
        "tickets": tickets,
        "after_cursor": None if end else cursor,
        "after_url": None
        if end
        else f"https://example.zendesk.com/api/v2/incremental/tickets/cursor.json?cursor={cursor}",
        "before_cursor": "b",
        "end_of_stream": end,
    }


def test_ticket_on_two_pages_counts_once(tmp_path: Path) -> None:
    first = _cursor_page(
        [
            _ticket(1, 9001, "2024-01-02T10:00:00Z"),
            _ticket(2, 9002, "2024-01-02T11:00:00Z", priority="urgent"),
        ],
        end=False,
        cursor="c1",
    )
    second = _cursor_page(
        [
            _ticket(2, 9002, "2024-01-03T09:00:00Z", status="solved", priority="urgent"),
            _ticket(3, 9001, "2024-01-03T10:00:00Z", status="deleted"),
        ],
        end=True,
        cursor="c2",
    )
    # page-10 follows page-2 only when the numbers in file names compare as numbers.
    files = {"accounts.csv": ACCOUNTS, "zendesk/page-2.json": first, "zendesk/page-10.json": second}
    workspace = make_workspace(tmp_path, ACCOUNTS_SOURCE + TICKETS_SOURCE + ORG_MAP, files)

    report, store = run_ingest(workspace)
    with store:
        stored = rows(
            store,
            "SELECT ticket_id, account_id, updated_at, status, priority, _file, _row_number FROM tickets ORDER BY ticket_id",
        )
        signals = compute_signals(workspace, store, [datetime(2024, 2, 1)]).set_index("account_id")

    assert stored == [
        ("1", "acme", datetime(2024, 1, 2, 10), "open", "normal", "zendesk/page-2.json", 1),
        ("2", "globex", datetime(2024, 1, 3, 9), "solved", "urgent", "zendesk/page-10.json", 1),
        ("3", "acme", datetime(2024, 1, 3, 10), "deleted", "normal", "zendesk/page-10.json", 2),
    ]
    # Ticket 2 counts once (urgent, weight 4); deleted ticket 3 does not count, so acme has ticket 1 alone.
    assert signals.loc["globex", "support_tickets"] == 1
    assert signals.loc["globex", "support_load"] == 4.0
    assert signals.loc["acme", "support_tickets"] == 1
    tickets = counts(report, "tickets")
    # Ticket 2's older row on page 2 is merged into its latest as a new version.
    assert (tickets.read, tickets.inserted, tickets.new_version, tickets.unattributed) == (4, 3, 1, 0)
    assert_balanced(report)


def test_time_based_pages_follow_end_time(tmp_path: Path) -> None:
    rng = random.Random(7)
    ids = list(range(1, 31))
    pages = []
    start = 1_704_096_000
    for number in range(3):
        chosen = sorted(rng.sample(ids, 12))
        end_time = start + (number + 1) * 3600
        pages.append(
            {
                "tickets": [
                    _ticket(i, 9001 + i % 2, f"2024-01-01T{number + 10}:00:{i:02d}Z") for i in chosen
                ],
                "end_time": end_time,
                "next_page": f"https://example.zendesk.com/api/v2/incremental/tickets.json?start_time={end_time}",
                "count": 12,
                "end_of_stream": number == 2,
            }
        )
    # File names deliberately disagree with the stream order, which end_time decides.
    files = {
        "accounts.csv": ACCOUNTS,
        "zendesk/c.json": pages[0],
        "zendesk/a.json": pages[1],
        "zendesk/b.json": pages[2],
    }
    workspace = make_workspace(tmp_path, ACCOUNTS_SOURCE + TICKETS_SOURCE + ORG_MAP, files)

    report, store = run_ingest(workspace)
    with store:
        stored = dict(rows(store, "SELECT ticket_id, strftime(updated_at, '%H') FROM tickets"))

    latest: dict[str, str] = {}
    for number, page in enumerate(pages):
        for ticket in page["tickets"]:  # type: ignore[attr-defined]
            latest[str(ticket["id"])] = f"{number + 10}"
    assert stored == latest
    assert counts(report, "tickets").read == 36
    assert_balanced(report)


def test_incomplete_stream_names_next_page(tmp_path: Path) -> None:
    page = _cursor_page([_ticket(1, 9001, "2024-01-02T10:00:00Z")], end=False, cursor="abc")
    workspace = make_workspace(
        tmp_path, ACCOUNTS_SOURCE + TICKETS_SOURCE, {"accounts.csv": ACCOUNTS, "zendesk/p1.json": page}
    )

    with pytest.raises(SourceError, match=r"end_of_stream: false.*cursor=abc"):
        run_ingest(workspace)


def test_unmapped_org_reported(tmp_path: Path) -> None:
    page = _cursor_page(
        [
            _ticket(1, 9001, "2024-01-02T10:00:00Z"),
            _ticket(2, 4242, "2024-01-02T10:00:00Z"),
            _ticket(3, None, "2024-01-02T10:00:00Z"),
        ],
        end=True,
        cursor="x",
    )
    config = ACCOUNTS_SOURCE + TICKETS_SOURCE + '[sources.tickets.identity]\nids_files = ["orgs.csv"]\n'
    files = {
        "accounts.csv": ACCOUNTS,
        "zendesk/p1.json": page,
        "orgs.csv": "vendor_id,account_id\n9001,acme\n",
    }
    workspace = make_workspace(tmp_path, config, files)

    report, store = run_ingest(workspace)
    with store:
        stored = dict(rows(store, "SELECT ticket_id, account_id FROM tickets"))
        notes = rows(store, "SELECT kind, detail FROM load_notes ORDER BY detail")

    assert stored == {"1": "acme", "2": "4242", "3": None}
    tickets = counts(report, "tickets")
    assert tickets.unattributed == 2
    assert tickets.unattributed_examples == ["(no account id)", "'4242'"]
    assert notes == [("unattributed_example", "'4242'"), ("unattributed_example", "(no account id)")]


def test_shared_ticket_object(shared_data: Path, tmp_path: Path) -> None:
    config = TICKETS_SOURCE.replace("zendesk/*.json", f"{shared_data}/zendesk/ticket.json")
    config += '[sources.tickets.identity]\nids = { "256244608" = "acme" }\n'
    workspace = make_workspace(tmp_path, ACCOUNTS_SOURCE + config, {"accounts.csv": ACCOUNTS})

    report, store = run_ingest(workspace)
    with store:
        stored = rows(store, "SELECT ticket_id, account_id, created_at, priority, status FROM tickets")

    assert stored == [("1", "acme", datetime(2015, 7, 25, 2, 21, 13), "high", "pending")]
    assert_balanced(report)


def test_shared_fivetran_tickets(shared_data: Path, tmp_path: Path) -> None:
    config = (
        '[sources.tickets]\ntable = "tickets"\nformat = "fivetran_zendesk"\n'
        f'files = ["{shared_data}/fivetran_zendesk/ticket_data.csv"]\n'
        '[sources.orgs]\ntable = "accounts"\nformat = "fivetran_zendesk"\n'
        f'files = ["{shared_data}/fivetran_zendesk/organization_data.csv"]\n'
    )
    workspace = make_workspace(tmp_path, config, {})

    report, store = run_ingest(workspace)
    with store:
        statuses = dict(rows(store, "SELECT ticket_id, status FROM tickets"))
        unattributed = rows(store, "SELECT count(*) FROM tickets WHERE _unattributed")[0][0]
        organisations = rows(store, "SELECT count(*) FROM accounts")[0][0]

    assert len(statuses) == 10
    assert statuses["1595"] == "deleted"
    assert statuses["16988"] == "solved"
    assert organisations == 10
    # Ticket organisations are not among the synced organisations' ids in this sample.
    assert unattributed == counts(report, "tickets").unattributed
    assert_balanced(report)


def test_shared_fivetran_tickets_gzipped(shared_data: Path, tmp_path: Path) -> None:
    """Fivetran's real ticket table, gzipped, stores the same tickets as the plain CSV."""
    plain = shared_data / "fivetran_zendesk" / "ticket_data.csv"
    stored = {}
    for name, content in (
        ("ticket.csv", plain.read_bytes()),
        ("ticket.csv.gz", gzip.compress(plain.read_bytes())),
    ):
        folder = tmp_path / name
        folder.mkdir()
        config = f'[sources.tickets]\ntable = "tickets"\nformat = "fivetran_zendesk"\nfiles = ["{name}"]\n'
        workspace = make_workspace(folder, config, {name: content})
        report, store = run_ingest(workspace)
        with store:
            stored[name] = rows(
                store, "SELECT * EXCLUDE (_file, _ingested_at) FROM tickets ORDER BY _row_number"
            )
        assert_balanced(report)

    assert len(stored["ticket.csv.gz"]) == 10
    assert stored["ticket.csv.gz"] == stored["ticket.csv"]


def test_shared_user_and_organization(shared_data: Path, tmp_path: Path) -> None:
    folder = shared_data / "zendesk"
    config = (
        f'[sources.orgs]\ntable = "accounts"\nformat = "zendesk"\nfiles = ["{folder}/organization.json"]\n'
        f'[sources.people]\ntable = "contacts"\nformat = "zendesk"\nfiles = ["{folder}/user.json"]\n'
    )
    workspace = make_workspace(tmp_path, config, {})

    report, store = run_ingest(workspace)
    with store:
        accounts = rows(store, "SELECT account_id, name FROM accounts")
        contacts = rows(store, "SELECT contact_id, account_id, email, _unattributed FROM contacts")

    assert accounts == [("256244608", "Testing")]
    assert contacts == [("1159307768", "256244608", "facetoe@facetoe.com.au", False)]
    assert_balanced(report)


def test_metric_set_from_latest_version_page(tmp_path: Path) -> None:
    """A ticket on several pages takes its metric set from the page of its latest version."""
    rng = random.Random(11)
    ids = list(range(1, 41))
    start = 1_704_096_000
    pages = []
    for number in range(4):
        chosen = sorted(rng.sample(ids, 15))
        end_time = start + (number + 1) * 3600
        page: dict[str, object] = {
            "tickets": [
                _ticket(i, 9001 + i % 2, f"2024-01-01T{number + 10}:00:{i:02d}Z", status="solved")
                for i in chosen
            ],
            "end_time": end_time,
            "next_page": f"https://example.zendesk.com/api/v2/incremental/tickets.json?start_time={end_time}",
            "count": 15,
            "end_of_stream": number == 3,
        }
        # The third page was fetched without include=metric_sets, so its tickets have no metric set.
        if number != 2:
            page["metric_sets"] = [
                {
                    "ticket_id": i,
                    "solved_at": f"2024-01-0{number + 2}T09:00:00Z",
                    "reply_time_in_minutes": {"calendar": number * 10 + 1, "business": None},
                }
                for i in chosen
            ]
        pages.append(page)
    # In name order the oldest page comes last, so a metric set taken from whichever page was
    # read last would be the oldest one.
    files = {
        "accounts.csv": ACCOUNTS,
        "zendesk/d.json": pages[0],
        "zendesk/c.json": pages[1],
        "zendesk/b.json": pages[2],
        "zendesk/a.json": pages[3],
    }
    workspace = make_workspace(tmp_path, ACCOUNTS_SOURCE + TICKETS_SOURCE + ORG_MAP, files)

    report, store = run_ingest(workspace)
    with store:
        stored = {
            ticket: (updated, solved)
            for ticket, updated, solved in rows(store, "SELECT ticket_id, updated_at, solved_at FROM tickets")
        }

    expected: dict[str, tuple[datetime, datetime | None]] = {}
    for number, page in enumerate(pages):
        for ticket in page["tickets"]:  # type: ignore[attr-defined]
            updated = datetime(2024, 1, 1, number + 10, 0, ticket["id"])
            solved = None if number == 2 else datetime(2024, 1, number + 2, 9)
            expected[str(ticket["id"])] = (updated, solved)
    assert stored == expected
    assert counts(report, "tickets").read == 60
    assert_balanced(report)
