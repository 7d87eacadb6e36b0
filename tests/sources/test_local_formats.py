"""Files as people export them: delimiters, decimal commas, encodings, multi-line cells, local dates."""

from __future__ import annotations

import gzip
import random
from datetime import datetime
from pathlib import Path

import pytest

from account_health.errors import SourceError
from account_health.sources.ingest import ingest
from account_health.store.analytical import open_analytical_store
from vendor_workspace import assert_balanced, counts, make_workspace, rows, run_ingest

ACCOUNTS = '[sources.accounts]\ntable = "accounts"\nfiles = ["accounts.csv"]\n\n'
CONTRACTS = """\
[sources.contracts]
table = "contracts"
files = ["vertraege.csv"]
columns = { contract_id = "Vertrag", account_id = "Kunde", start_at = "Beginn", arr = "ARR", auto_renew = "Verlängerung" }
values = { auto_renew = { ja = "true", nein = "false" } }
csv = { delimiter = ";", encoding = "cp1252", decimal = ",", date_formats = ["%d.%m.%Y", "%d.%m.%Y %H:%M"] }
"""


def test_german_export_reads_as_declared(tmp_path: Path) -> None:
    text = (
        "Vertrag;Kunde;Beginn;ARR;Verlängerung;Notiz\n"
        'V1;acme;03.04.2024;1.234,56;ja;"zwei\nZeilen; mit Semikolon"\n'
        "V2;acme;2024-05-06;12 000;nein;Größe\n"
        "V3;acme;04.05.2024 13:30;7,5;ja;\n"
        "V4;acme;13/13/2024;1.5;vielleicht;\n"
    )
    files: dict[str, str | bytes] = {
        "accounts.csv": "account_id\nacme\n",
        "vertraege.csv": text.encode("cp1252"),
    }
    workspace = make_workspace(tmp_path, ACCOUNTS + CONTRACTS, files)

    report, store = run_ingest(workspace)
    with store:
        stored = rows(store, "SELECT contract_id, start_at, arr, auto_renew FROM contracts ORDER BY 1")
        quarantined = rows(store, 'SELECT row_number, "column", value FROM quarantine ORDER BY "column"')

    assert stored == [
        ("V1", datetime(2024, 4, 3), 1234.56, True),
        ("V2", datetime(2024, 5, 6), 12000.0, False),
        ("V3", datetime(2024, 5, 4, 13, 30), 7.5, True),
    ]
    # A number with a decimal point in a decimal-comma file is invalid, never read as 15.
    assert quarantined == [(4, "arr", "1.5"), (4, "auto_renew", "vielleicht"), (4, "start_at", "13/13/2024")]
    assert counts(report, "contracts").quarantined == 1
    assert_balanced(report)


def test_declared_types_beat_parquet_types(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table(
        {
            "ticket_id": pa.array([1, 2], pa.int64()),
            "account_id": ["acme", "acme"],
            "created_at": pa.array([1_710_962_768_000, 1_710_962_769_000], pa.int64()),
            "priority": ["high", "low"],
        }
    )
    pq.write_table(table, tmp_path / "tickets.parquet")
    config = ACCOUNTS + (
        '[sources.tickets]\ntable = "tickets"\nfiles = ["tickets.parquet"]\ntypes = { created_at = "epoch_ms" }\n'
    )
    workspace = make_workspace(tmp_path, config, {"accounts.csv": "account_id\nacme\n"})

    report, store = run_ingest(workspace)
    with store:
        stored = rows(store, "SELECT ticket_id, created_at FROM tickets ORDER BY 1")

    assert stored == [("1", datetime(2024, 3, 20, 19, 26, 8)), ("2", datetime(2024, 3, 20, 19, 26, 9))]
    assert_balanced(report)


TICKETS_GZ = '[sources.tickets]\ntable = "tickets"\nfiles = ["tickets.csv.gz"]\n'


def _ticket_export(rows_total: int, seed: int) -> str:
    """A tickets CSV with quoted multi-line subjects and one malformed record, generated from `seed`."""
    rng = random.Random(seed)
    lines = ["ticket_id,account_id,created_at,priority,subject"]
    for number in range(1, rows_total + 1):
        created = f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:00:00Z"
        priority = rng.choice(["urgent", "high", "normal", "low", "P9"])
        subject = rng.choice(["plain", '"two\nlines, quoted"', '"a ""quoted"" word"'])
        lines.append(f"T{number},{rng.choice(['acme', 'globex'])},{created},{priority},{subject}")
    lines.insert(rows_total // 2, "T-bad,acme")
    return "\n".join(lines) + "\n"


def test_gzipped_csv_reads_like_plain(tmp_path: Path) -> None:
    export = _ticket_export(3_000, seed=5)
    accounts = "account_id\nacme\nglobex\n"
    stored = {}
    for name, content in (
        ("tickets.csv", export.encode()),
        ("tickets.csv.gz", gzip.compress(export.encode())),
    ):
        folder = tmp_path / name
        folder.mkdir()
        config = ACCOUNTS + f'[sources.tickets]\ntable = "tickets"\nfiles = ["{name}"]\n'
        workspace = make_workspace(folder, config, {"accounts.csv": accounts, name: content})
        report, store = run_ingest(workspace)
        with store:
            stored[name] = (
                rows(store, "SELECT * EXCLUDE (_file, _ingested_at) FROM tickets ORDER BY _row_number"),
                rows(store, 'SELECT row_number, "column", value, reason FROM quarantine ORDER BY 1, 2'),
                counts(report, "tickets").totals,
            )
        assert_balanced(report)

    plain_rows, plain_quarantine, plain_totals = stored["tickets.csv"]
    gzipped_rows, gzipped_quarantine, gzipped_totals = stored["tickets.csv.gz"]
    assert len(plain_rows) > 2_000
    assert gzipped_rows == plain_rows
    assert gzipped_quarantine == plain_quarantine
    assert any(column == "(whole row)" for _, column, _, _ in gzipped_quarantine)
    assert gzipped_totals == plain_totals


def _broken_gzip(problem: str) -> bytes:
    export = _ticket_export(3_000, seed=9).encode()
    if problem == "truncated header":
        return gzip.compress(export)[:100]
    if problem == "truncated after the header":
        # The first 64 KiB decompress, so the ingest reads the header before the stream ends.
        return gzip.compress(export)[:-100]
    return export


@pytest.mark.parametrize("problem", ["truncated header", "truncated after the header", "not gzip"])
def test_broken_gzipped_csv_names_the_file(tmp_path: Path, problem: str) -> None:
    files = {"accounts.csv": "account_id\nacme\n", "tickets.csv.gz": _broken_gzip(problem)}
    workspace = make_workspace(tmp_path, ACCOUNTS + TICKETS_GZ, files)

    with (
        open_analytical_store(workspace.analytical_store_path) as store,
        pytest.raises(SourceError, match=r"tickets\.csv\.gz: cannot be decompressed") as raised,
    ):
        ingest(workspace, store)

    assert "download or export it again" in str(raised.value)
