"""Files as people export them: delimiters, decimal commas, encodings, multi-line cells, local dates."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

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
