"""Values as warehouses and exporters write them: float ids, ` UTC` timestamps, broken archives."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from account_health.errors import SourceError
from vendor_workspace import assert_balanced, json_lines, make_workspace, rows, run_ingest

ACCOUNTS = "account_id,name\nacme,Acme\n"
ACCOUNTS_SOURCE = '[sources.accounts]\ntable = "accounts"\nfiles = ["accounts.csv"]\n\n'


def test_float_organization_ids_match_as_integers(tmp_path: Path) -> None:
    # pandas writes an integer id column with a null as floats; the id must still be 370295712714.
    tickets = pa.table(
        {
            "id": [1.0, 2.0],
            "organization_id": [370295712714.0, None],
            "created_at": ["2025-03-01T10:00:00Z", "2025-03-02T10:00:00Z"],
            "updated_at": ["2025-03-01T10:00:00Z", "2025-03-02T10:00:00Z"],
            "priority": ["high", "low"],
            "status": ["open", "open"],
        }
    )
    buffer = io.BytesIO()
    pq.write_table(tickets, buffer)
    config = ACCOUNTS_SOURCE + (
        '[sources.tickets]\ntable = "tickets"\nformat = "fivetran_zendesk"\nfiles = ["ticket.parquet"]\n'
        'identity = { ids = { "370295712714" = "acme" } }\n'
    )
    workspace = make_workspace(
        tmp_path, config, {"accounts.csv": ACCOUNTS, "ticket.parquet": buffer.getvalue()}
    )

    report, store = run_ingest(workspace)
    with store:
        stored = rows(store, "SELECT ticket_id, account_id FROM tickets ORDER BY ticket_id")

    assert stored == [("1", "acme"), ("2", None)]
    assert_balanced(report)


def test_warehouse_utc_suffix_places_tracks_through_group_calls(tmp_path: Path) -> None:
    # BigQuery's CSV export writes instants as "2025-03-01 10:00:00.000000 UTC".
    groups = "id,user_id,group_id,timestamp\ng1,u1,acme,2025-03-01 09:00:00.000000 UTC\n"
    tracks = json_lines(
        [
            {
                "type": "track",
                "messageId": "t1",
                "userId": "u1",
                "event": "A",
                "timestamp": "2025-03-01T10:00:00Z",
            }
        ]
    )
    config = ACCOUNTS_SOURCE + (
        '[sources.events]\ntable = "usage_events"\nformat = "segment"\n'
        'files = ["groups.csv", "tracks.jsonl"]\n'
    )
    workspace = make_workspace(
        tmp_path, config, {"accounts.csv": ACCOUNTS, "groups.csv": groups, "tracks.jsonl": tracks}
    )

    report, store = run_ingest(workspace)
    with store:
        stored = rows(store, "SELECT event_id, account_id FROM usage_events")

    assert stored == [("t1", "acme")]
    assert_balanced(report)


@pytest.mark.parametrize(
    ("content", "kind"),
    [
        (gzip.compress(json_lines([{"type": "track", "messageId": "t1"}] * 500).encode())[:60], "EOFError"),
        (b"plain text, not gzip\n", "BadGzipFile"),
    ],
)
def test_broken_gzip_names_the_file(tmp_path: Path, content: bytes, kind: str) -> None:
    config = '[sources.events]\ntable = "usage_events"\nformat = "segment"\nfiles = ["tracks.jsonl.gz"]\n'
    workspace = make_workspace(tmp_path, config, {"tracks.jsonl.gz": content})

    with pytest.raises(SourceError) as raised:
        run_ingest(workspace)

    assert str(tmp_path / "tracks.jsonl.gz") in str(raised.value)
    assert kind in str(raised.value)
