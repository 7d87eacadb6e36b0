"""Ingest of small, deliberately awkward exports into a real DuckDB file, checked by what it stores."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from account_health.config import CANONICAL_TABLES, CONFIG_FILE, Workspace, load_workspace
from account_health.errors import SourceError
from account_health.sources.ingest import IngestReport, SourceCounts, ingest
from account_health.store.analytical import (
    LOADS_TABLE,
    QUARANTINE_TABLE,
    AnalyticalStore,
    open_analytical_store,
)

STORE_SETTINGS = '[workspace]\nanalytical_store = "analytical.duckdb"\n\n'
ACCOUNTS = "account_id,name\nA1,Acme\nA2,Globex\n"
ACCOUNTS_SOURCE = '[sources.accounts]\ntable = "accounts"\nfiles = ["accounts.csv"]\n\n'
TICKETS_SOURCE = '[sources.tickets]\ntable = "tickets"\nfiles = ["tickets.csv"]\n\n'


def _workspace(folder: Path, sources: str, files: dict[str, str | bytes]) -> Workspace:
    """Write the config and the export files into `folder` and load it as a workspace."""
    (folder / CONFIG_FILE).write_text(STORE_SETTINGS + textwrap.dedent(sources), encoding="utf-8")
    for name, content in files.items():
        path = folder / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return load_workspace(folder)


def _counts(report: IngestReport, source: str) -> SourceCounts:
    return next(counts for counts in report.sources if counts.source == source)


def _rows(store: AnalyticalStore, sql: str, parameters: list[object] | None = None) -> list[tuple[Any, ...]]:
    return store.connection.execute(sql, parameters or []).fetchall()


def _contents(store: AnalyticalStore) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every canonical table and the quarantine, in a stable order."""
    tables = [*CANONICAL_TABLES, QUARANTINE_TABLE]
    return {table: sorted(_rows(store, f'SELECT * FROM "{table}"'), key=repr) for table in tables}


def test_bom_header_keeps_first_column(tmp_path: Path) -> None:
    sources = ACCOUNTS_SOURCE + TICKETS_SOURCE + '[sources.tickets.columns]\nticket_id = "id"\n'
    files: dict[str, str | bytes] = {
        "accounts.csv": b"\xef\xbb\xbf" + ACCOUNTS.encode(),
        "tickets.csv": b"\xef\xbb\xbfid,account_id,created_at\nT1,A1,2024-03-20\n",
    }
    workspace = _workspace(tmp_path, sources, files)

    with open_analytical_store(workspace.analytical_store_path) as store:
        report = ingest(workspace, store)
        accounts = _rows(store, "SELECT account_id, name FROM accounts ORDER BY account_id")
        tickets = _rows(store, "SELECT ticket_id, account_id FROM tickets")

    assert accounts == [("A1", "Acme"), ("A2", "Globex")]
    assert tickets == [("T1", "A1")]
    assert _counts(report, "tickets").inserted == 1


def test_timestamps_parse_to_utc(tmp_path: Path) -> None:
    tickets = (
        "ticket_id,account_id,created_at\n"
        "T1,A1,2024-03-20T19:26:08.00Z\n"
        "T2,A1,2024-03-20 19:26:08+02:00\n"
        "T3,A1,1710962768\n"
        "T4,A1,20/03/2024 19:26\n"
    )
    workspace = _workspace(
        tmp_path, ACCOUNTS_SOURCE + TICKETS_SOURCE, {"accounts.csv": ACCOUNTS, "tickets.csv": tickets}
    )

    with open_analytical_store(workspace.analytical_store_path) as store:
        report = ingest(workspace, store)
        stored = dict(_rows(store, "SELECT ticket_id, created_at FROM tickets"))
        quarantined = _rows(
            store,
            f'SELECT source, "table", file, row_number, "column", value, reason FROM {QUARANTINE_TABLE}',
        )

    assert stored == {
        "T1": datetime(2024, 3, 20, 19, 26, 8),
        "T2": datetime(2024, 3, 20, 17, 26, 8),
        "T3": datetime(2024, 3, 20, 19, 26, 8),
    }
    assert len(quarantined) == 1
    source, table, file, row_number, column, value, reason = quarantined[0]
    assert (source, table, file, row_number, column, value) == (
        "tickets",
        "tickets",
        "tickets.csv",
        4,
        "created_at",
        "20/03/2024 19:26",
    )
    assert str(reason).startswith("invalid timestamp '20/03/2024 19:26': expected ISO 8601"), reason
    assert '[sources.tickets.csv] date_formats = ["%d/%m/%Y %H:%M"]' in str(reason), reason
    counts = _counts(report, "tickets")
    assert (counts.read, counts.inserted, counts.quarantined) == (4, 3, 1)


def test_impossible_utc_offsets_are_quarantined(tmp_path: Path) -> None:
    tickets = (
        "ticket_id,account_id,created_at\n"
        "T1,A1,2024-03-20T10:00:00+14:00\n"
        "T2,A1,2024-03-20T10:00:00+25:00\n"
        "T3,A1,2024-03-20 10:00:00-0575\n"
        "T4,A1,2024-03-20T10:00:00.5-12\n"
    )
    workspace = _workspace(
        tmp_path, ACCOUNTS_SOURCE + TICKETS_SOURCE, {"accounts.csv": ACCOUNTS, "tickets.csv": tickets}
    )

    with open_analytical_store(workspace.analytical_store_path) as store:
        ingest(workspace, store)
        stored = dict(_rows(store, "SELECT ticket_id, created_at FROM tickets"))
        quarantined = _rows(store, f"SELECT row_number, value FROM {QUARANTINE_TABLE} ORDER BY 1")

    assert stored == {
        "T1": datetime(2024, 3, 19, 20, 0),
        "T4": datetime(2024, 3, 20, 22, 0, 0, 500000),
    }
    assert quarantined == [(2, "2024-03-20T10:00:00+25:00"), (3, "2024-03-20 10:00:00-0575")]


def test_infinite_contract_dates_are_quarantined(tmp_path: Path) -> None:
    """'infinity' as PostgreSQL's COPY writes it is quarantined, with a hint for an open end date."""
    contracts = (
        "contract_id,account_id,start_at,end_at\n"
        "C1,A1,2024-01-01,2025-01-01\n"
        "C2,A1,2024-01-01,infinity\n"
        "C3,A2,-infinity,2025-01-01\n"
        "C4,A2,2024-01-01,\n"
    )
    sources = ACCOUNTS_SOURCE + '[sources.contracts]\ntable = "contracts"\nfiles = ["contracts.csv"]\n'
    workspace = _workspace(tmp_path, sources, {"accounts.csv": ACCOUNTS, "contracts.csv": contracts})

    with open_analytical_store(workspace.analytical_store_path) as store:
        ingest(workspace, store)
        stored = _rows(store, "SELECT contract_id, end_at FROM contracts ORDER BY 1")
        quarantined = _rows(
            store, f'SELECT row_number, "column", value, reason FROM {QUARANTINE_TABLE} ORDER BY 1'
        )

    assert stored == [("C1", datetime(2025, 1, 1)), ("C4", None)]
    infinite = "infinite timestamp: expected an instant between the years 1900 and 2199"
    assert quarantined == [
        (2, "end_at", "infinity", f"{infinite}; leave end_at empty (NULL) for a contract with no end date"),
        (3, "start_at", "-infinity", infinite),
    ]


def test_unresolved_usage_stored_unattributed(tmp_path: Path) -> None:
    sources = ACCOUNTS_SOURCE + textwrap.dedent(
        """\
        [sources.subscriptions]
        table = "contracts"
        files = ["subscriptions.csv"]
        columns = { contract_id = "subscription_id", start_at = "start_date" }

        [sources.usage]
        table = "usage_daily"
        files = ["usage.csv"]
        columns = { day = "date", event_count = "events" }

        [sources.usage.resolve.account_id]
        from = "subscription_id"
        table = "contracts"
        key = "contract_id"
        value = "account_id"

        [sources.events]
        table = "usage_events"
        files = ["events.csv"]
        """
    )
    files: dict[str, str | bytes] = {
        "accounts.csv": ACCOUNTS,
        "subscriptions.csv": "subscription_id,account_id,start_date\nS1,A1,2024-01-01\nS2,A-gone,2024-01-01\n",
        "usage.csv": "subscription_id,date,events\nS1,2024-03-01,5\nS9,2024-03-01,7\nS2,2024-03-02,3\n",
        "events.csv": "event_id,account_id,user_id,occurred_at\nE1,A1,u1,2024-03-01T10:00:00Z\nE2,A-unknown,u2,2024-03-01T11:00:00Z\n",
    }
    workspace = _workspace(tmp_path, sources, files)

    with open_analytical_store(workspace.analytical_store_path) as store:
        report = ingest(workspace, store)
        usage = _rows(
            store, "SELECT _row_number, account_id, event_count, _unattributed FROM usage_daily ORDER BY 1"
        )
        events = _rows(store, "SELECT event_id, account_id, _unattributed FROM usage_events ORDER BY 1")
        loads = dict(_rows(store, f"SELECT source, unattributed FROM {LOADS_TABLE}"))

    # S9 is no subscription, and S2 belongs to an account missing from accounts.
    assert usage == [(1, "A1", 5.0, False), (2, None, 7.0, True), (3, "A-gone", 3.0, True)]
    assert events == [("E1", "A1", False), ("E2", "A-unknown", True)]
    usage_counts = _counts(report, "usage")
    assert (usage_counts.read, usage_counts.inserted, usage_counts.unattributed) == (3, 3, 2)
    event_counts = _counts(report, "events")
    assert (event_counts.read, event_counts.inserted, event_counts.unattributed) == (2, 2, 1)
    assert loads["usage"] == 2
    assert loads["events"] == 1


@pytest.mark.parametrize(
    ("mapping", "missing_column", "fix"),
    [
        pytest.param("", "'created_at'", "[sources.tickets.columns] created_at =", id="canonical-name"),
        pytest.param(
            '[sources.tickets.columns]\ncreated_at = "opened"\n',
            "'opened'",
            "[sources.tickets.columns] created_at =",
            id="mapped-name",
        ),
    ],
)
def test_missing_required_column_names_fix(
    tmp_path: Path, mapping: str, missing_column: str, fix: str
) -> None:
    tickets = "ticket_id,account_id,submitted\nT1,A1,2024-03-20\n"
    workspace = _workspace(tmp_path, TICKETS_SOURCE + mapping, {"tickets.csv": tickets})

    with (
        open_analytical_store(workspace.analytical_store_path) as store,
        pytest.raises(SourceError) as raised,
    ):
        ingest(workspace, store)

    message = str(raised.value)
    assert str(tmp_path / "tickets.csv") in message
    assert missing_column in message
    assert fix in message
    assert "submitted" in message, "the message lists the file's columns"


@pytest.mark.parametrize(
    ("separator", "written"),
    [(";", 'delimiter = ";"'), ("\t", 'delimiter = "\\t"'), ("|", 'delimiter = "|"')],
)
def test_other_separator_suggests_delimiter(tmp_path: Path, separator: str, written: str) -> None:
    header = separator.join(["ticket_id", "account_id", "created_at"])
    workspace = _workspace(tmp_path, TICKETS_SOURCE, {"tickets.csv": f"{header}\n"})

    with (
        open_analytical_store(workspace.analytical_store_path) as store,
        pytest.raises(SourceError) as raised,
    ):
        ingest(workspace, store)

    assert f"[sources.tickets] csv = {{ {written} }}" in str(raised.value)


def test_comma_header_missing_column_suggests_no_delimiter(tmp_path: Path) -> None:
    workspace = _workspace(tmp_path, TICKETS_SOURCE, {"tickets.csv": "ticket_id,account_id\n"})

    with (
        open_analytical_store(workspace.analytical_store_path) as store,
        pytest.raises(SourceError) as raised,
    ):
        ingest(workspace, store)

    assert "delimiter" not in str(raised.value)


def test_nul_character_is_quarantined(tmp_path: Path) -> None:
    # Past the first 64 KiB, where the encoding check looks, so the row reaches the parser.
    filler = "".join(f"F{number},Filler\n" for number in range(8000))
    accounts = f"account_id,name\nA1,Acme\n{filler}A2,Glo\x00bex\n".encode()
    workspace = _workspace(tmp_path, ACCOUNTS_SOURCE, {"accounts.csv": accounts})

    with open_analytical_store(workspace.analytical_store_path) as store:
        counts = _counts(ingest(workspace, store), "accounts")
        quarantined = _rows(store, f'SELECT row_number, "column", value, reason FROM {QUARANTINE_TABLE}')
        stored = _rows(store, "SELECT count(*) FROM accounts WHERE account_id = 'A2'")

    assert (counts.read, counts.inserted, counts.quarantined) == (8002, 8001, 1)
    assert len(quarantined) == 1
    assert quarantined[0][:3] == (8002, "name", "Glo\x00bex")
    assert quarantined[0][3].startswith("contains a NUL character")
    assert stored == [(0,)]


def test_same_file_twice_changes_nothing(tmp_path: Path) -> None:
    tickets = "ticket_id,account_id,created_at,priority\nT1,A1,2024-03-20,high\nT2,A2,2024-03-21,low\n"
    workspace = _workspace(
        tmp_path, ACCOUNTS_SOURCE + TICKETS_SOURCE, {"accounts.csv": ACCOUNTS, "tickets.csv": tickets}
    )

    with open_analytical_store(workspace.analytical_store_path) as store:
        ingest(workspace, store)
        before = _contents(store)
        second = ingest(workspace, store)
        after = _contents(store)
        loads = _rows(
            store,
            f"SELECT load_id, source, read, inserted, new_version, unchanged FROM {LOADS_TABLE} ORDER BY 1, 2",
        )

    for counts in second.sources:
        assert counts.unchanged == counts.read, counts
        assert counts.inserted + counts.new_version + counts.quarantined == 0, counts
    assert after == before
    assert loads == [
        (1, "accounts", 2, 2, 0, 0),
        (1, "tickets", 2, 2, 0, 0),
        (2, "accounts", 2, 0, 0, 2),
        (2, "tickets", 2, 0, 0, 2),
    ]


def test_changed_row_stored_as_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first_file = (
        "ticket_id,account_id,created_at,priority\nT1,A1,2024-03-20T08:00:00Z,low\nT2,A1,2024-03-21,low\n"
    )
    later_file = (
        "ticket_id,account_id,created_at,priority\n"
        "T1,A1,2024-03-20T08:00:00Z,urgent\n"
        "T2,A1,2024-03-21,low\n"
        "T3,A1,2099-01-01,high\n"
    )
    files: dict[str, str | bytes] = {
        "accounts.csv": ACCOUNTS,
        "tickets.csv": first_file,
        "tickets_later.csv": later_file,
    }
    workspace = _workspace(tmp_path, ACCOUNTS_SOURCE + TICKETS_SOURCE, files)

    with open_analytical_store(workspace.analytical_store_path) as store:
        backfill = ingest(workspace, store)
        monkeypatch.setenv("ACCOUNT_HEALTH_SOURCE_TICKETS_FILES", str(tmp_path / "tickets_later.csv"))
        later = ingest(workspace, store)
        stored = _rows(
            store, "SELECT ticket_id, priority, _available_at, _load_id, _file FROM tickets ORDER BY 1, 4"
        )

    assert _counts(backfill, "tickets").backfill
    counts = _counts(later, "tickets")
    assert not counts.backfill
    assert (counts.read, counts.inserted, counts.new_version, counts.unchanged) == (3, 1, 1, 1)
    # The backfill makes rows available at their event time, the later load at max(event time, ingest time).
    assert stored == [
        ("T1", "low", datetime(2024, 3, 20, 8, 0), 1, "tickets.csv"),
        ("T1", "urgent", later.ingested_at, 2, "tickets_later.csv"),
        ("T2", "low", datetime(2024, 3, 21), 1, "tickets.csv"),
        ("T3", "high", datetime(2099, 1, 1), 2, "tickets_later.csv"),
    ]


def test_mapping_options_shape_stored_rows(tmp_path: Path) -> None:
    sources = ACCOUNTS_SOURCE + textwrap.dedent(
        """\
        [sources.tickets]
        table = "tickets"
        files = ["tickets.csv"]
        columns = { ticket_id = "id", account_id = "org", created_at = "opened_ms" }
        types = { created_at = "epoch_ms" }
        constants = { status = "open" }
        loaded_at = "exported_at"

        [sources.tickets.values.priority]
        P1 = "urgent"
        P2 = "high"
        """
    )
    tickets = (
        "id,org,opened_ms,prio,exported_at\n"
        "T1,A1,1710962768000,P1,2024-03-22T00:00:00Z\n"
        "T2,A2,1710962768500,P2,2024-03-01T00:00:00Z\n"
        "T3,A1,1710962768000,P9,2024-03-22T00:00:00Z\n"
        "T4,A1,1710962768000,low,yesterday\n"
    )
    sources = sources.replace('created_at = "opened_ms" }', 'created_at = "opened_ms", priority = "prio" }')
    workspace = _workspace(tmp_path, sources, {"accounts.csv": ACCOUNTS, "tickets.csv": tickets})

    with open_analytical_store(workspace.analytical_store_path) as store:
        report = ingest(workspace, store)
        stored = _rows(
            store,
            "SELECT ticket_id, account_id, created_at, priority, status, _available_at FROM tickets ORDER BY 1",
        )
        quarantined = _rows(
            store, f'SELECT row_number, "column", value, reason FROM {QUARANTINE_TABLE} ORDER BY 1'
        )

    opened = datetime(2024, 3, 20, 19, 26, 8)
    # loaded_at sets availability even in a backfill: max(event time, loaded_at).
    assert stored == [
        ("T1", "A1", opened, "urgent", "open", datetime(2024, 3, 22)),
        (
            "T2",
            "A2",
            datetime(2024, 3, 20, 19, 26, 8, 500000),
            "high",
            "open",
            datetime(2024, 3, 20, 19, 26, 8, 500000),
        ),
    ]
    assert quarantined[0][:3] == (3, "priority", "P9")
    assert quarantined[0][3] == (
        "invalid priority 'P9': not one of urgent, high, normal, low (compared ignoring case); map it to "
        'one of them in [sources.tickets.values] priority = { "P9" = "urgent" }'
    )
    assert quarantined[1][:3] == (4, "exported_at", "yesterday")
    assert str(quarantined[1][3]).startswith("invalid timestamp"), quarantined[1]
    assert len(quarantined) == 2
    counts = _counts(report, "tickets")
    assert (counts.read, counts.inserted, counts.quarantined) == (4, 2, 2)


def test_id_resolved_through_contacts(tmp_path: Path) -> None:
    sources = textwrap.dedent(
        """\
        [sources.contacts]
        table = "contacts"
        files = ["contacts.csv"]

        [sources.activity]
        table = "contact_activity"
        files = ["activity.csv"]

        [sources.activity.resolve.contact_id]
        from = "email"
        table = "contacts"
        key = "email"
        value = "contact_id"
        """
    )
    files: dict[str, str | bytes] = {
        "contacts.csv": "contact_id,account_id,email\nC1,A1,ana@acme.test\nC2,A1,bo@acme.test\n",
        "activity.csv": "email,day,emails\nbo@acme.test,2024-03-01,4\nana@acme.test,2024-03-01,2\nzed@acme.test,2024-03-01,9\n",
    }
    workspace = _workspace(tmp_path, sources, files)

    with open_analytical_store(workspace.analytical_store_path) as store:
        report = ingest(workspace, store)
        stored = _rows(store, "SELECT contact_id, emails FROM contact_activity ORDER BY 1")
        quarantined = _rows(store, f'SELECT row_number, "column", value, reason FROM {QUARANTINE_TABLE}')

    assert stored == [("C1", 2.0), ("C2", 4.0)]
    assert quarantined == [
        (
            3,
            "contact_id",
            "zed@acme.test",
            "email not found in contacts.email; ingest contacts first or fix the id",
        )
    ]
    assert _counts(report, "activity").quarantined == 1


# The child process reports each batch it stages, so the test can kill it while the transaction is open.
_INGEST_SCRIPT = """
import sys
from account_health.config import load_workspace
from account_health.sources.ingest import ingest
from account_health.store.analytical import open_analytical_store

workspace = load_workspace(sys.argv[1])
store = open_analytical_store(workspace.analytical_store_path)
ingest(workspace, store, progress=lambda source, file, done, total: print(source, done, total, flush=True))
print("committed", flush=True)
"""
_KILL_ROWS = 1_500_000


def _write_large_events(path: Path, rows: int) -> None:
    """Write `rows` usage events for accounts A1 and A2, with one invalid timestamp at the last row."""
    rng = np.random.default_rng(20240320)
    seconds = 1_704_067_200 + rng.integers(0, 90 * 86_400, rows)
    instants = np.datetime_as_string(seconds.astype("datetime64[s]"), unit="s").astype(object)
    instants[-1] = "not a time"
    table = pa.table(
        {
            "event_id": [f"E{index}" for index in range(rows)],
            "account_id": np.where(rng.random(rows) < 0.5, "A1", "A2").astype(object),
            "user_id": [f"u{user}" for user in rng.integers(0, 500, rows)],
            "occurred_at": instants,
        }
    )
    pacsv.write_csv(table, path)


def _run_ingest(folder: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", _INGEST_SCRIPT, str(folder)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_killed_ingest_leaves_nothing(tmp_path: Path) -> None:
    sources = ACCOUNTS_SOURCE + '[sources.events]\ntable = "usage_events"\nfiles = ["events.csv"]\n'
    workspace = _workspace(tmp_path, sources, {"accounts.csv": ACCOUNTS})
    _write_large_events(tmp_path / "events.csv", _KILL_ROWS)
    with open_analytical_store(workspace.analytical_store_path) as store:
        empty = _contents(store)

    process = _run_ingest(tmp_path)
    assert process.stdout is not None
    # DuckDB's own progress bar shares stdout, so only lines naming a source count. By the second
    # events batch the accounts are written inside the open transaction. One more second puts the kill
    # into the staging or writing of the events, which take about 10 s on 2 cores.
    batches = 0
    for line in process.stdout:
        if line.startswith("events "):
            batches += 1
        if batches == 2:
            break
    time.sleep(1.0)
    os.kill(process.pid, signal.SIGKILL)
    rest, errors = process.communicate(timeout=30)
    assert process.returncode == -signal.SIGKILL, errors
    assert batches == 2, rest
    assert "committed" not in rest, "the ingest finished before it was killed; enlarge the events file"

    with open_analytical_store(workspace.analytical_store_path) as store:
        assert _contents(store) == empty
        assert _rows(store, f"SELECT count(*) FROM {LOADS_TABLE}") == [(0,)]

    rerun = _run_ingest(tmp_path)
    output, errors = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, errors
    assert output.rstrip().endswith("committed")
    with open_analytical_store(workspace.analytical_store_path) as store:
        assert _rows(store, "SELECT count(*), count(DISTINCT event_id) FROM usage_events") == [
            (_KILL_ROWS - 1, _KILL_ROWS - 1)
        ]
        assert _rows(store, "SELECT count(*) FROM accounts") == [(2,)]
        assert _rows(store, f'SELECT row_number, "column", value FROM {QUARANTINE_TABLE}') == [
            (_KILL_ROWS, "occurred_at", "not a time")
        ]
        loads = _rows(
            store, f"SELECT load_id, source, read, inserted, quarantined FROM {LOADS_TABLE} ORDER BY 2"
        )
    assert loads == [(1, "accounts", 2, 2, 0), (1, "events", _KILL_ROWS, _KILL_ROWS - 1, 1)]
    # The killed ingest's spill folder, if the kill came while staging, went with the rerun.
    assert not list(workspace.analytical_store_path.parent.glob("account-health-stage-*"))


def test_reingested_bad_rows_not_quarantined_twice(tmp_path: Path) -> None:
    tickets = "ticket_id,account_id,created_at\nT1,A1,2024-03-20\nT2,A1,not a date\n"
    workspace = _workspace(
        tmp_path, ACCOUNTS_SOURCE + TICKETS_SOURCE, {"accounts.csv": ACCOUNTS, "tickets.csv": tickets}
    )

    with open_analytical_store(workspace.analytical_store_path) as store:
        ingest(workspace, store)
        second = ingest(workspace, store)
        quarantined = _rows(
            store, f'SELECT row_number, "column", value, load_id, last_load_id FROM {QUARANTINE_TABLE}'
        )

    counts = _counts(second, "tickets")
    assert (counts.read, counts.unchanged, counts.quarantined) == (2, 1, 1)
    # Stored once, under the load that first rejected it, and marked with the latest load that did.
    assert quarantined == [(2, "created_at", "not a date", 1, 2)]


def test_quarantine_of_older_store_gains_last_load_id(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    with duckdb.connect(str(path)) as connection:
        connection.execute(
            f"""CREATE TABLE {QUARANTINE_TABLE} (
                load_id BIGINT, source VARCHAR, "table" VARCHAR, file VARCHAR, row_number BIGINT,
                "column" VARCHAR, value VARCHAR, reason VARCHAR, quarantined_at TIMESTAMP)"""
        )
        connection.execute(
            f"INSERT INTO {QUARANTINE_TABLE} VALUES (3, 't', 'tickets', 't.csv', 1, 'created_at', 'x', 'r', NULL)"
        )

    with open_analytical_store(path) as store:
        stored = _rows(store, f"SELECT load_id, last_load_id FROM {QUARANTINE_TABLE}")

    assert stored == [(3, 3)]


def test_summed_duplicate_keys_account_for_every_row(tmp_path: Path) -> None:
    usage = "account_id,day,event_count\nA1,2024-03-20,3\nA1,2024-03-20,4\nA2,2024-03-20,1\nA1,2024-03-21,2\n"
    sources = (
        ACCOUNTS_SOURCE
        + '[sources.usage]\ntable = "usage_daily"\nfiles = ["usage.csv"]\nduplicate_keys = "sum"\n'
    )
    workspace = _workspace(tmp_path, sources, {"accounts.csv": ACCOUNTS, "usage.csv": usage})

    with open_analytical_store(workspace.analytical_store_path) as store:
        first = _counts(ingest(workspace, store), "usage")
        second = _counts(ingest(workspace, store), "usage")
        stored = _rows(
            store, "SELECT account_id, CAST(day AS VARCHAR), event_count FROM usage_daily ORDER BY 1, 2"
        )

    assert stored == [("A1", "2024-03-20", 7.0), ("A1", "2024-03-21", 2.0), ("A2", "2024-03-20", 1.0)]
    # Three keys inserted; the second row of (A1, 2024-03-20) was added into the first.
    assert (first.read, first.inserted, first.new_version, first.unchanged) == (4, 3, 1, 0)
    assert (second.read, second.inserted, second.new_version, second.unchanged) == (4, 0, 0, 4)


def test_latest_rule_counts_each_key_inserted_once(tmp_path: Path) -> None:
    users = (
        "user_id,account_id,email,seen_at\n"
        "u1,A1,old@acme.com,2024-03-01\n"
        "u1,A1,new@acme.com,2024-03-05\n"
        "u1,A1,mid@acme.com,2024-03-03\n"
        "u2,A2,bo@globex.com,2024-03-01\n"
    )
    sources = (
        ACCOUNTS_SOURCE
        + '[sources.users]\ntable = "users"\nfiles = ["users.csv"]\n'
        + 'duplicate_keys = "latest"\nlatest_by = "seen_at"\n'
    )
    workspace = _workspace(tmp_path, sources, {"accounts.csv": ACCOUNTS, "users.csv": users})

    with open_analytical_store(workspace.analytical_store_path) as store:
        first = _counts(ingest(workspace, store), "users")
        second = _counts(ingest(workspace, store), "users")
        (tmp_path / "users.csv").write_text(users + "u2,A2,bo@initech.com,2024-03-09\n", encoding="utf-8")
        third = _counts(ingest(workspace, store), "users")
        stored = _rows(store, "SELECT user_id, email FROM users ORDER BY _load_id, user_id")

    assert stored == [("u1", "new@acme.com"), ("u2", "bo@globex.com"), ("u2", "bo@initech.com")]
    # Two keys inserted, the two older rows of u1 merged into its latest as new versions.
    assert (first.read, first.inserted, first.new_version, first.unchanged) == (4, 2, 2, 0)
    assert first.balanced
    assert (second.read, second.inserted, second.new_version, second.unchanged) == (4, 0, 0, 4)
    # u1 unchanged with its three rows; u2's two rows form one new version.
    assert (third.read, third.inserted, third.new_version, third.unchanged) == (5, 0, 2, 3)
    assert third.balanced


def test_account_loaded_later_attributes_earlier_rows(tmp_path: Path) -> None:
    tickets = "ticket_id,account_id,created_at\nT1,A1,2024-03-20\nT2,A3,2024-03-20\n"
    workspace = _workspace(
        tmp_path, ACCOUNTS_SOURCE + TICKETS_SOURCE, {"accounts.csv": ACCOUNTS, "tickets.csv": tickets}
    )

    with open_analytical_store(workspace.analytical_store_path) as store:
        first = ingest(workspace, store)
        (tmp_path / "accounts.csv").write_text(ACCOUNTS + "A3,Initech\n", encoding="utf-8")
        second = ingest(workspace, store)
        flags = _rows(store, "SELECT ticket_id, _unattributed FROM tickets ORDER BY ticket_id")

    assert _counts(first, "tickets").unattributed == 1
    assert second.attributed == 1
    assert flags == [("T1", False), ("T2", False)]


def test_malformed_csv_record_is_quarantined_whole(tmp_path: Path) -> None:
    accounts = 'account_id,name\nA1,Acme\nA2,Globex,extra\n"A3","Ini\ntech"\nA4\nA5,Umbrella\n'
    workspace = _workspace(tmp_path, ACCOUNTS_SOURCE, {"accounts.csv": accounts})

    with open_analytical_store(workspace.analytical_store_path) as store:
        counts = _counts(ingest(workspace, store), "accounts")
        stored = _rows(store, "SELECT account_id, _row_number FROM accounts ORDER BY account_id")
        quarantined = _rows(
            store, f'SELECT row_number, "column", value FROM {QUARANTINE_TABLE} ORDER BY row_number'
        )

    assert (counts.read, counts.inserted, counts.quarantined) == (5, 3, 2)
    assert stored == [("A1", 1), ("A3", 3), ("A5", 5)]
    assert quarantined == [(2, "(whole row)", "A2,Globex,extra"), (4, "(whole row)", "A4")]


def test_negative_arr_is_quarantined(tmp_path: Path) -> None:
    accounts = "account_id,name,arr\nA1,Acme,1200.5\nA2,Globex,-5\n"
    workspace = _workspace(tmp_path, ACCOUNTS_SOURCE, {"accounts.csv": accounts})

    with open_analytical_store(workspace.analytical_store_path) as store:
        counts = _counts(ingest(workspace, store), "accounts")
        quarantined = _rows(store, f'SELECT row_number, "column", value, reason FROM {QUARANTINE_TABLE}')

    assert (counts.read, counts.inserted, counts.quarantined) == (2, 1, 1)
    assert quarantined == [(2, "arr", "-5", "negative ARR '-5'; ARR is 0 or more")]


def test_negative_daily_count_quoted_as_written(tmp_path: Path) -> None:
    sources = ACCOUNTS_SOURCE + '[sources.usage]\ntable = "usage_daily"\nfiles = ["usage.csv"]\n'
    usage = "account_id,day,active_users,event_count\nA1,2025-03-01, -500,\nA1,2025-03-02,,-2\n"
    workspace = _workspace(tmp_path, sources, {"accounts.csv": ACCOUNTS, "usage.csv": usage})

    with open_analytical_store(workspace.analytical_store_path) as store:
        ingest(workspace, store)
        quarantined = _rows(
            store, f'SELECT row_number, "column", value, reason FROM {QUARANTINE_TABLE} ORDER BY row_number'
        )

    assert quarantined == [
        (1, "active_users", "-500", "negative active_users '-500'; a count is 0 or more"),
        (2, "event_count", "-2", "negative event_count '-2'; a count is 0 or more"),
    ]


def test_empty_csv_names_the_file_and_the_fix(tmp_path: Path) -> None:
    workspace = _workspace(tmp_path, TICKETS_SOURCE, {"tickets.csv": b""})

    with (
        open_analytical_store(workspace.analytical_store_path) as store,
        pytest.raises(SourceError) as raised,
    ):
        ingest(workspace, store)

    message = str(raised.value)
    assert str(tmp_path / "tickets.csv") in message
    assert "empty (0 bytes)" in message
    assert "delimiter" not in message


@pytest.mark.parametrize(
    ("accounts", "line"),
    [
        ('account_id,name\nA1,"Acme\nA2,Globex\nA3,Initech\n', 2),
        ('account_id,name\nA1,"Acme ""East"", Inc."\nA2,Globex\nA3,"Init\nech\nA4,x\n', 4),
        ('\ufeff"account_id","name"\n"A1","Acme"\n"A2","Glo', 3),
    ],
)
def test_unclosed_quote_names_its_line(tmp_path: Path, accounts: str, line: int) -> None:
    # The parser would read every line after the open quote into one value, losing those rows.
    workspace = _workspace(tmp_path, ACCOUNTS_SOURCE, {"accounts.csv": accounts.encode()})

    with (
        open_analytical_store(workspace.analytical_store_path) as store,
        pytest.raises(SourceError) as raised,
    ):
        ingest(workspace, store)

    message = str(raised.value)
    assert str(tmp_path / "accounts.csv") in message
    assert f"the quoted field that opens on line {line} never closes" in message


def test_quotes_as_text_and_closed_multiline_fields_load(tmp_path: Path) -> None:
    # An odd number of quotes, all as text or closed: every row loads as written.
    accounts = 'account_id,name\nA1,"Acme\nEast"\nA2,12" pipe\nA3,"Init ""Tech"""\n'
    workspace = _workspace(tmp_path, ACCOUNTS_SOURCE, {"accounts.csv": accounts.encode()})

    with open_analytical_store(workspace.analytical_store_path) as store:
        ingest(workspace, store)
        names = store.connection.execute("SELECT account_id, name FROM accounts ORDER BY 1").fetchall()

    assert names == [("A1", "Acme\nEast"), ("A2", '12" pipe'), ("A3", 'Init "Tech"')]


def test_nul_in_rewritten_account_id_is_quarantined(tmp_path: Path) -> None:
    # The identity rule replaces the vendor id by A1, but the quarantine checks the text as read.
    # Past the first 64 KiB, where the encoding check looks, so the row reaches the parser.
    filler = "".join(f"F{number},A1,2024-03-20,ana@acme.test\n" for number in range(3000))
    tickets = f"ticket_id,account_id,created_at,email\n{filler}T1,org\x009,2024-03-20,bo@acme.test\n".encode()
    sources = (
        ACCOUNTS_SOURCE
        + TICKETS_SOURCE
        + '[sources.tickets.identity]\nemail = "email"\n\n[identity]\nemail_domains = { "acme.test" = "A1" }\n'
    )
    workspace = _workspace(tmp_path, sources, {"accounts.csv": ACCOUNTS, "tickets.csv": tickets})

    with open_analytical_store(workspace.analytical_store_path) as store:
        counts = _counts(ingest(workspace, store), "tickets")
        quarantined = _rows(store, f'SELECT row_number, "column", value, reason FROM {QUARANTINE_TABLE}')
        stored = _rows(store, "SELECT count(*) FROM tickets WHERE ticket_id = 'T1'")

    assert (counts.read, counts.inserted, counts.quarantined) == (3001, 3000, 1)
    assert len(quarantined) == 1
    assert quarantined[0][:3] == (3001, "account_id", "org\x009")
    assert quarantined[0][3].startswith("contains a NUL character")
    assert stored == [(0,)]


def test_nul_in_plain_text_column_is_quarantined(tmp_path: Path) -> None:
    # A text column without rewriting rules is staged once and checked under its raw name.
    filler = "".join(f"E{number},A1,U1,2024-03-20T10:00:00Z,login\n" for number in range(3000))
    events = (
        f"event_id,account_id,user_id,occurred_at,event\n{filler}E-last,A1,U\x002,2024-03-20,login\n".encode()
    )
    sources = ACCOUNTS_SOURCE + '[sources.events]\ntable = "usage_events"\nfiles = ["events.csv"]\n'
    workspace = _workspace(tmp_path, sources, {"accounts.csv": ACCOUNTS, "events.csv": events})

    with open_analytical_store(workspace.analytical_store_path) as store:
        counts = _counts(ingest(workspace, store), "events")
        quarantined = _rows(store, f'SELECT row_number, "column", value FROM {QUARANTINE_TABLE}')

    assert (counts.read, counts.inserted, counts.quarantined) == (3001, 3000, 1)
    assert quarantined == [(3001, "user_id", "U\x002")]


def test_header_only_file_reads_no_rows(tmp_path: Path) -> None:
    workspace = _workspace(
        tmp_path,
        ACCOUNTS_SOURCE + TICKETS_SOURCE,
        {"accounts.csv": ACCOUNTS, "tickets.csv": "ticket_id,account_id,created_at\n"},
    )

    with open_analytical_store(workspace.analytical_store_path) as store:
        counts = _counts(ingest(workspace, store), "tickets")
        loads = _rows(store, f"SELECT source, read, inserted FROM {LOADS_TABLE} ORDER BY source")

    assert counts.totals == (0, 0, 0, 0, 0, 0)
    assert loads == [("accounts", 2, 2), ("tickets", 0, 0)]


def test_rows_stored_in_file_order(tmp_path: Path) -> None:
    # Keys out of order, so that classifying by key would reorder rows unless the write keeps file order.
    rows = "".join(f"T{(number * 7919) % 5000},A{number % 2 + 1},2024-03-20\n" for number in range(5000))
    workspace = _workspace(
        tmp_path,
        ACCOUNTS_SOURCE + TICKETS_SOURCE,
        {"accounts.csv": ACCOUNTS, "tickets.csv": "ticket_id,account_id,created_at\n" + rows},
    )

    with open_analytical_store(workspace.analytical_store_path) as store:
        ingest(workspace, store)
        stored = [row[0] for row in _rows(store, "SELECT _row_number FROM tickets ORDER BY rowid")]

    assert stored == list(range(1, 5001))


def test_source_named_twice_loads_once(tmp_path: Path) -> None:
    workspace = _workspace(tmp_path, ACCOUNTS_SOURCE, {"accounts.csv": ACCOUNTS})

    with open_analytical_store(workspace.analytical_store_path) as store:
        report = ingest(workspace, store, ["accounts", "accounts"])
        loads = _rows(store, f"SELECT count(*) FROM {LOADS_TABLE}")

    assert [counts.source for counts in report.sources] == ["accounts"]
    assert loads == [(1,)]


def test_compact_day_read_with_date_format(tmp_path: Path) -> None:
    sources = ACCOUNTS_SOURCE + textwrap.dedent(
        """\
        [sources.usage]
        table = "usage_daily"
        files = ["usage.csv"]
        csv = { date_formats = ["%Y%m%d"] }
        """
    )
    usage = "account_id,day,active_users\nA1,20250301,3\nA1,2025-03-02,4\n"
    workspace = _workspace(tmp_path, sources, {"accounts.csv": ACCOUNTS, "usage.csv": usage})

    with open_analytical_store(workspace.analytical_store_path) as store:
        counts = _counts(ingest(workspace, store), "usage")
        days = _rows(store, "SELECT CAST(day AS VARCHAR), active_users FROM usage_daily ORDER BY day")

    assert (counts.read, counts.inserted, counts.quarantined) == (2, 2, 0)
    assert days == [("2025-03-01", 3), ("2025-03-02", 4)]
