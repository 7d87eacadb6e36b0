"""Re-ingests of changed, reverted and repeated exports, checked against what the store keeps as newest."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from account_health.config import CONFIG_FILE, Workspace, load_workspace
from account_health.sources.ingest import IngestReport, SourceCounts, ingest
from account_health.store.analytical import AnalyticalStore, open_analytical_store

STORE_SETTINGS = '[workspace]\nanalytical_store = "analytical.duckdb"\n\n'
ACCOUNTS_SOURCE = '[sources.accounts]\ntable = "accounts"\nfiles = ["accounts.csv"]\n\n'
CONTACTS_SOURCE = '[sources.contacts]\ntable = "contacts"\nfiles = ["contacts.csv"]\n\n'
# The newest version of each key, in the order snapshots use to pick it.
NEWEST = "QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY _available_at DESC, _load_id DESC, _row_number DESC, _source DESC) = 1"


def _workspace(folder: Path, sources: str, files: dict[str, str]) -> Workspace:
    (folder / CONFIG_FILE).write_text(STORE_SETTINGS + textwrap.dedent(sources), encoding="utf-8")
    _write(folder, files)
    return load_workspace(folder)


def _write(folder: Path, files: dict[str, str]) -> None:
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")


def _counts(report: IngestReport, source: str) -> SourceCounts:
    return next(counts for counts in report.sources if counts.source == source)


def _rows(store: AnalyticalStore, sql: str) -> list[tuple[Any, ...]]:
    return store.connection.execute(sql).fetchall()


def _ingest(workspace: Workspace, backfill: bool = False) -> IngestReport:
    with open_analytical_store(workspace.analytical_store_path) as store:
        return ingest(workspace, store, backfill=backfill)


def _balanced(counts: SourceCounts) -> bool:
    return counts.read == counts.inserted + counts.new_version + counts.unchanged + counts.quarantined


def test_value_changed_back_is_new_version(tmp_path: Path) -> None:
    workspace = _workspace(tmp_path, ACCOUNTS_SOURCE + CONTACTS_SOURCE, {"accounts.csv": "account_id\nA1\n"})
    statuses = []
    for flag in ("true", "false", "true"):
        _write(tmp_path, {"contacts.csv": f"contact_id,account_id,is_champion\nc1,A1,{flag}\n"})
        counts = _counts(_ingest(workspace), "contacts")
        statuses.append((counts.inserted, counts.new_version, counts.unchanged))

    with open_analytical_store(workspace.analytical_store_path) as store:
        newest = _rows(store, f"SELECT is_champion FROM contacts {NEWEST.format(key='contact_id')}")
        versions = _rows(store, "SELECT count(*) FROM contacts")

    assert statuses == [(1, 0, 0), (0, 1, 0), (0, 1, 0)]
    assert newest == [(True,)]
    assert versions == [(3,)]


def test_unchanged_reingest_after_revert(tmp_path: Path) -> None:
    workspace = _workspace(tmp_path, ACCOUNTS_SOURCE + CONTACTS_SOURCE, {"accounts.csv": "account_id\nA1\n"})
    for flag in ("true", "false", "true"):
        _write(tmp_path, {"contacts.csv": f"contact_id,account_id,is_champion\nc1,A1,{flag}\nc2,A1,false\n"})
        _ingest(workspace)

    counts = _counts(_ingest(workspace), "contacts")

    assert (counts.read, counts.unchanged, counts.new_version, counts.inserted) == (2, 2, 0, 0)


def test_summed_day_corrected_back_is_stored(tmp_path: Path) -> None:
    sources = ACCOUNTS_SOURCE + (
        '[sources.usage]\ntable = "usage_daily"\nfiles = ["usage.csv"]\nduplicate_keys = "sum"\n'
    )
    workspace = _workspace(tmp_path, sources, {"accounts.csv": "account_id\nacme\n"})
    for second in (7, 8, 7):
        usage = f"account_id,day,event_count,feature\nacme,2025-03-01,5,a\nacme,2025-03-01,{second},b\nacme,2025-03-02,1,a\n"
        _write(tmp_path, {"usage.csv": usage})
        counts = _counts(_ingest(workspace), "usage")
        assert _balanced(counts), counts

    with open_analytical_store(workspace.analytical_store_path) as store:
        newest = _rows(
            store,
            f"SELECT day, event_count FROM usage_daily {NEWEST.format(key='account_id, day')} ORDER BY day",
        )

    assert [(str(day), total) for day, total in newest] == [("2025-03-01", 12.0), ("2025-03-02", 1.0)]
    assert (counts.read, counts.new_version, counts.unchanged) == (3, 2, 1)


TICKETS_GLOB = '[sources.tickets]\ntable = "tickets"\nfiles = ["exports/tickets-*.csv"]\n'
TICKET_HEADER = "ticket_id,account_id,created_at,updated_at,status\n"


def test_backfill_numbered_files_natural_order(tmp_path: Path) -> None:
    files = {
        "accounts.csv": "account_id\nacme\n",
        "exports/tickets-9.csv": TICKET_HEADER + "t1,acme,2025-03-01,2025-03-09,open\n",
        "exports/tickets-10.csv": TICKET_HEADER + "t1,acme,2025-03-01,2025-03-10,solved\n",
    }
    workspace = _workspace(tmp_path, ACCOUNTS_SOURCE + TICKETS_GLOB, files)

    report = _ingest(workspace)
    with open_analytical_store(workspace.analytical_store_path) as store:
        newest = _rows(store, f"SELECT status, _file FROM tickets {NEWEST.format(key='ticket_id')}")

    assert _counts(report, "tickets").files == ["exports/tickets-9.csv", "exports/tickets-10.csv"]
    assert newest == [("solved", "exports/tickets-10.csv")]


def test_same_instant_versions_newest_updated_wins(tmp_path: Path) -> None:
    # The file read last contains the older state, as its updated_at shows.
    files = {
        "accounts.csv": "account_id\nacme\n",
        "exports/tickets-1.csv": TICKET_HEADER + "t1,acme,2025-03-01,2025-03-10,solved\n",
        "exports/tickets-2.csv": TICKET_HEADER + "t1,acme,2025-03-01,2025-03-09,open\n",
    }
    workspace = _workspace(tmp_path, ACCOUNTS_SOURCE + TICKETS_GLOB, files)

    first = _counts(_ingest(workspace), "tickets")
    again = _counts(_ingest(workspace), "tickets")
    with open_analytical_store(workspace.analytical_store_path) as store:
        newest = _rows(store, f"SELECT status FROM tickets {NEWEST.format(key='ticket_id')}")

    assert newest == [("solved",)]
    assert (first.read, first.inserted, first.new_version) == (2, 1, 1)
    assert (again.read, again.unchanged) == (2, 2)


def test_old_file_in_folder_not_resurrected(tmp_path: Path) -> None:
    files = {
        "accounts.csv": "account_id\nacme\n",
        "exports/tickets-1.csv": TICKET_HEADER + "t1,acme,2025-03-01,2025-03-09,open\n",
    }
    workspace = _workspace(tmp_path, ACCOUNTS_SOURCE + TICKETS_GLOB, files)
    _ingest(workspace)
    _write(tmp_path, {"exports/tickets-2.csv": TICKET_HEADER + "t1,acme,2025-03-01,2025-03-10,solved\n"})
    second = _counts(_ingest(workspace), "tickets")

    third = _counts(_ingest(workspace), "tickets")
    with open_analytical_store(workspace.analytical_store_path) as store:
        newest = _rows(store, f"SELECT status FROM tickets {NEWEST.format(key='ticket_id')}")

    assert newest == [("solved",)]
    assert (second.new_version, second.unchanged) == (2, 0)
    assert (third.read, third.unchanged) == (2, 2)


def test_file_matched_twice_read_once(tmp_path: Path) -> None:
    sources = ACCOUNTS_SOURCE + textwrap.dedent(
        """\
        [sources.usage]
        table = "usage_daily"
        files = ["exports/usage*.csv", "exports/usage.csv", "exports/../exports/usage.csv"]
        duplicate_keys = "sum"
        """
    )
    files = {
        "accounts.csv": "account_id\nacme\n",
        "exports/usage.csv": "account_id,day,event_count,feature\nacme,2025-03-01,5,a\nacme,2025-03-01,7,b\n",
    }
    workspace = _workspace(tmp_path, sources, files)

    counts = _counts(_ingest(workspace), "usage")
    with open_analytical_store(workspace.analytical_store_path) as store:
        stored = _rows(store, "SELECT event_count FROM usage_daily")

    assert counts.files == ["exports/usage.csv"]
    assert counts.read == 2
    assert stored == [(12.0,)]


def test_two_sources_disagreeing_stay_unchanged(tmp_path: Path) -> None:
    sources = ACCOUNTS_SOURCE + textwrap.dedent(
        """\
        [sources.crm]
        table = "contacts"
        files = ["crm.csv"]

        [sources.sheet]
        table = "contacts"
        files = ["sheet.csv"]
        """
    )
    files = {
        "accounts.csv": "account_id\nA1\n",
        "crm.csv": "contact_id,account_id,title\nc1,A1,VP\n",
        "sheet.csv": "contact_id,account_id,title\nc1,A1,Head\n",
    }
    workspace = _workspace(tmp_path, sources, files)
    _ingest(workspace)

    report = _ingest(workspace)

    assert _counts(report, "crm").unchanged == 1
    assert _counts(report, "sheet").unchanged == 1
