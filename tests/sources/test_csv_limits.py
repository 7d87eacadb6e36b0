"""CSV files at the reader's limits: one bad cell (a NUL byte, a field larger than the reader's blocks or a
column's limit), a malformed record longer than a block, and a header without rows."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from account_health.config import CONFIG_FILE, Workspace, load_workspace
from account_health.errors import SourceError
from account_health.sources.ingest import ingest
from account_health.store.analytical import QUARANTINE_TABLE, open_analytical_store

SETTINGS = '[workspace]\nanalytical_store = "analytical.duckdb"\n\n[sources.accounts]\ntable = "accounts"\nfiles = ["accounts.csv"]\n'


def _workspace(folder: Path, accounts: bytes, sources: str = SETTINGS) -> Workspace:
    (folder / CONFIG_FILE).write_text(textwrap.dedent(sources), encoding="utf-8")
    (folder / "accounts.csv").write_bytes(accounts)
    return load_workspace(folder)


def test_nul_in_first_row_quarantines_row(tmp_path: Path) -> None:
    workspace = _workspace(tmp_path, b"account_id,name,timezone\nK2,nul\x00name,UTC\nK6,fine,UTC\n")

    with open_analytical_store(workspace.analytical_store_path) as store:
        counts = ingest(workspace, store).sources[0]
        quarantined = store.connection.execute(
            f'SELECT file, row_number, "column", value, reason FROM {QUARANTINE_TABLE}'
        ).fetchall()
        stored = store.connection.execute("SELECT account_id FROM accounts").fetchall()

    assert (counts.read, counts.inserted, counts.quarantined) == (2, 1, 1)
    assert stored == [("K6",)]
    assert len(quarantined) == 1
    assert quarantined[0][:4] == ("accounts.csv", 1, "name", "nul\x00name")
    assert quarantined[0][4].startswith("contains a NUL character")


def test_utf16_file_read_as_utf8_rejected(tmp_path: Path) -> None:
    workspace = _workspace(tmp_path, "account_id,name\nA1,Acme\n".encode("utf-16-le"))

    with (
        open_analytical_store(workspace.analytical_store_path) as store,
        pytest.raises(SourceError) as raised,
    ):
        ingest(workspace, store)

    assert "UTF-16" in str(raised.value)


def test_field_over_block_size_quarantined(tmp_path: Path) -> None:
    huge = b"x" * (20 << 20)
    filler = b"".join(b"F%d,Filler\n" % number for number in range(300_000))
    accounts = b"account_id,name\nA1,Acme\n" + filler + b"A2," + huge + b"\nA3,Initech\n"
    workspace = _workspace(tmp_path, accounts)

    with open_analytical_store(workspace.analytical_store_path) as store:
        counts = ingest(workspace, store).sources[0]
        quarantined = store.connection.execute(
            f'SELECT file, row_number, "column", length(value), reason FROM {QUARANTINE_TABLE}'
        ).fetchall()
        stored = store.connection.execute(
            "SELECT count(*), count(*) FILTER (WHERE account_id IN ('A1', 'A3')) FROM accounts"
        ).fetchall()

    assert (counts.read, counts.inserted, counts.quarantined) == (300_003, 300_002, 1)
    assert stored == [(300_002, 2)]
    assert len(quarantined) == 1
    file, row_number, column, preview_length, reason = quarantined[0]
    assert (file, row_number, column) == ("accounts.csv", 300_002, "name")
    assert preview_length < 100
    assert "20.0 MB" in reason
    assert "16 MB" in reason


@pytest.mark.parametrize("fields", [b",".join([b"y" * (2 << 20)] * 5), b""], ids=["too many", "too few"])
def test_long_malformed_record_keeps_next_rows(tmp_path: Path, fields: bytes) -> None:
    # A malformed record over the 8 MB block is rejected while the batch before it is parsed.
    long_record = b"A2,Long," + fields if fields else b"A2" + b"y" * (10 << 20)
    accounts = b"account_id,name,timezone\nA1,Acme,UTC\n" + long_record + b"\nA3,Initech,UTC\nA4,Globex,UTC\n"
    workspace = _workspace(tmp_path, accounts)

    with open_analytical_store(workspace.analytical_store_path) as store:
        counts = ingest(workspace, store).sources[0]
        quarantined = store.connection.execute(f"SELECT row_number FROM {QUARANTINE_TABLE}").fetchall()
        stored = store.connection.execute(
            "SELECT account_id, _row_number FROM accounts ORDER BY _row_number"
        ).fetchall()

    assert (counts.read, counts.inserted, counts.quarantined) == (4, 3, 1)
    assert quarantined == [(2,)]
    assert stored == [("A1", 1), ("A3", 3), ("A4", 4)]


def test_early_reject_keeps_earlier_rows(tmp_path: Path) -> None:
    # pyarrow rejects row 600,000, in the second 8 MB block, while it hands out the first block's rows.
    rows = [b"A%07d,Name%07d\n" % (number, number) for number in range(1, 700_001)]
    rows[599_999] = b"A0600000,Name,extra\n"
    workspace = _workspace(tmp_path, b"account_id,name\n" + b"".join(rows))

    with open_analytical_store(workspace.analytical_store_path) as store:
        counts = ingest(workspace, store).sources[0]
        quarantined = store.connection.execute(f"SELECT row_number FROM {QUARANTINE_TABLE}").fetchall()
        stored = store.connection.execute(
            "SELECT count(*), min(_row_number), max(_row_number), count(DISTINCT _row_number) FROM accounts"
        ).fetchone()

    assert (counts.read, counts.inserted, counts.quarantined) == (700_000, 699_999, 1)
    assert quarantined == [(600_000,)]
    assert stored == (699_999, 1, 700_000, 699_999)


def test_record_over_largest_block_names_line(tmp_path: Path) -> None:
    huge = b"x" * (300 << 20)
    workspace = _workspace(tmp_path, b"account_id,name\nA1,Acme\nA2," + huge + b"\nA3,Initech\n")

    with (
        open_analytical_store(workspace.analytical_store_path) as store,
        pytest.raises(SourceError) as raised,
    ):
        ingest(workspace, store)

    message = str(raised.value)
    assert "accounts.csv" in message
    assert "line 3" in message
    assert "straddl" not in message
    assert "csv.delimiter" not in message


@pytest.mark.parametrize("header", [b"account_id,name", b"sep=;\naccount_id;name", b"account_id,name\r\n"])
def test_header_only_file_loads_nothing(tmp_path: Path, header: bytes) -> None:
    workspace = _workspace(tmp_path, header)

    with open_analytical_store(workspace.analytical_store_path) as store:
        counts = ingest(workspace, store).sources[0]

    assert (counts.read, counts.inserted, counts.quarantined) == (0, 0, 0)
