"""Rejected values whose quarantine reason names the value and the config key that fixes it.

Each case ingests a small export, reads the reason from the quarantine table, and where the reason
proposes a config line, adds that line and ingests again to show that the line works.
"""

from __future__ import annotations

import gzip
import tomllib
from datetime import date, datetime
from pathlib import Path

import pytest

from account_health.config import CONFIG_FILE, load_workspace
from account_health.errors import ConfigError
from account_health.sources.canonical import PRIORITIES
from vendor_workspace import assert_balanced, counts, make_workspace, rows, run_ingest

ACCOUNTS_FILE = "account_id\nA1\n"
ACCOUNTS = '[sources.accounts]\ntable = "accounts"\nfiles = ["accounts.csv"]\n\n'
TICKETS = '[sources.tickets]\ntable = "tickets"\nfiles = ["tickets.csv"]\n'


def _quarantined(folder: Path, config: str, files: dict[str, str | bytes]) -> list[tuple[object, ...]]:
    """Ingest into a new store in `folder`; return (row_number, column, value, reason) of each rejected value."""
    folder.mkdir(parents=True, exist_ok=True)
    workspace = make_workspace(folder, config, files)
    report, store = run_ingest(workspace)
    with store:
        assert_balanced(report)
        return rows(store, 'SELECT row_number, "column", value, reason FROM quarantine ORDER BY 1, 2')


def _reason(folder: Path, config: str, files: dict[str, str | bytes]) -> str:
    """The reason of the one rejected value of the ingest."""
    quarantined = _quarantined(folder, config, files)
    assert len(quarantined) == 1, quarantined
    return str(quarantined[0][3])


def _tickets(created: str) -> dict[str, str | bytes]:
    return {
        "accounts.csv": ACCOUNTS_FILE,
        "tickets.csv": f"ticket_id,account_id,created_at\nT1,A1,{created}\n",
    }


# --- dates in a local format ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "formats", "stored"),
    [
        ("31/12/2025", ['"%d/%m/%Y"'], datetime(2025, 12, 31)),
        ("12/31/2025", ['"%m/%d/%Y"'], datetime(2025, 12, 31)),
        ("31.12.2025", ['"%d.%m.%Y"'], datetime(2025, 12, 31)),
        ("31-12-2025 13:45", ['"%d-%m-%Y %H:%M"'], datetime(2025, 12, 31, 13, 45)),
        ("31/12/25", ['"%d/%m/%y"'], datetime(2025, 12, 31)),
        ("03/04/2025 08:00:05", ['"%d/%m/%Y %H:%M:%S"', '"%m/%d/%Y %H:%M:%S"'], None),
    ],
)
def test_local_date_reason_names_date_formats(
    tmp_path: Path, value: str, formats: list[str], stored: datetime | None
) -> None:
    reason = _reason(tmp_path, ACCOUNTS + TICKETS, _tickets(value))

    assert reason.startswith(f"invalid timestamp '{value}': "), reason
    assert "ISO 8601" in reason, reason
    assert "[sources.tickets.csv] date_formats = [" in reason, reason
    for suggested in formats:
        assert f"[{suggested}]" in reason, reason
    assert "[sources.tickets.types]" not in reason, reason

    # The proposed line, added to the config, makes the next ingest read the value.
    if stored is not None:
        config = ACCOUNTS + TICKETS + f"csv = {{ date_formats = [{formats[0]}] }}\n"
        (tmp_path / "fixed").mkdir()
        workspace = make_workspace(tmp_path / "fixed", config, _tickets(value))
        report, store = run_ingest(workspace)
        with store:
            assert rows(store, "SELECT created_at FROM tickets") == [(stored,)]
        assert counts(report, "tickets").quarantined == 0


def test_ambiguous_local_date_offers_both_orders(tmp_path: Path) -> None:
    reason = _reason(tmp_path, ACCOUNTS + TICKETS, _tickets("03/04/2025"))

    assert '["%d/%m/%Y"] if the day comes first' in reason, reason
    assert '["%m/%d/%Y"] if the month comes first' in reason, reason


def test_unknown_date_shape_says_what_is_read(tmp_path: Path) -> None:
    reason = _reason(tmp_path, ACCOUNTS + TICKETS, _tickets("13/13/2025"))

    assert reason.startswith("invalid timestamp '13/13/2025': "), reason
    assert "ISO 8601" in reason, reason
    assert "YYYYMMDD" in reason, reason
    assert "[sources.tickets.csv] date_formats" in reason, reason
    assert "strptime" in reason, reason


def test_declared_date_formats_named_when_none_matches(tmp_path: Path) -> None:
    config = ACCOUNTS + TICKETS + 'csv = { date_formats = ["%d.%m.%Y"] }\n'

    reason = _reason(tmp_path, config, _tickets("12/31/2025"))

    assert reason.startswith("invalid timestamp '12/31/2025': "), reason
    assert 'date_formats ("%d.%m.%Y")' in reason, reason
    assert 'add "%m/%d/%Y" to [sources.tickets.csv] date_formats' in reason, reason


def test_date_column_reason_names_date_formats(tmp_path: Path) -> None:
    config = ACCOUNTS + '[sources.usage]\ntable = "usage_daily"\nfiles = ["usage.csv"]\n'
    files: dict[str, str | bytes] = {
        "accounts.csv": ACCOUNTS_FILE,
        "usage.csv": "account_id,day,event_count\nA1,31.12.2025,4\n",
    }

    reason = _reason(tmp_path, config, files)

    assert reason.startswith("invalid date '31.12.2025': "), reason
    assert "YYYY-MM-DD" in reason, reason
    assert '[sources.usage.csv] date_formats = ["%d.%m.%Y"]' in reason, reason

    (tmp_path / "fixed").mkdir()
    fixed = make_workspace(tmp_path / "fixed", config + 'csv = { date_formats = ["%d.%m.%Y"] }\n', files)
    _report, store = run_ingest(fixed)
    with store:
        assert rows(store, "SELECT day FROM usage_daily") == [(date(2025, 12, 31),)]


def test_long_value_is_shortened_in_reason(tmp_path: Path) -> None:
    value = "x" * 500

    quarantined = _quarantined(tmp_path, ACCOUNTS + TICKETS, _tickets(value))

    assert quarantined[0][2] == value
    reason = str(quarantined[0][3])
    assert reason.startswith(f"invalid timestamp '{'x' * 40}...': "), reason
    assert len(reason) < 600, len(reason)


# --- booleans written as words ---------------------------------------------------------------------

USERS = ACCOUNTS + '[sources.users]\ntable = "users"\nfiles = ["users.csv"]\n'


def _users(*flags: str) -> dict[str, str | bytes]:
    lines = "".join(f"U{number},A1,{flag}\n" for number, flag in enumerate(flags, start=1))
    return {"accounts.csv": ACCOUNTS_FILE, "users.csv": "user_id,account_id,is_internal\n" + lines}


def test_boolean_words_read_in_any_case(tmp_path: Path) -> None:
    flags = ("Yes", "No", "Y", "n", "TRUE", "False", "T", "f", "1", "0")
    workspace = make_workspace(tmp_path, USERS, _users(*flags))

    report, store = run_ingest(workspace)
    with store:
        stored = rows(store, "SELECT is_internal FROM users ORDER BY _row_number")

    assert [flag for (flag,) in stored] == [True, False, True, False, True, False, True, False, True, False]
    assert counts(report, "users").quarantined == 0


@pytest.mark.parametrize("value", ["x", "WAHR", "ja", 'say "yes"'])
def test_boolean_reason_lists_words_and_mapping(tmp_path: Path, value: str) -> None:
    written = value.replace('"', '""')
    files = _users(f'"{written}"')

    reason = _reason(tmp_path, USERS, files)

    assert reason.startswith(f"invalid boolean '{value}': "), reason
    assert "true/false, t/f, yes/no, y/n or 1/0 in any case" in reason, reason
    toml_key = value.replace("\\", "\\\\").replace('"', '\\"')
    line = f'is_internal = {{ "{toml_key}" = "true" }}'
    assert f"[sources.users.values] {line}" in reason, reason

    # The proposed mapping, written under its table header, is valid TOML that the ingest applies.
    config = USERS + f"\n[sources.users.values]\n{line}\n"
    tomllib.loads(config)
    (tmp_path / "fixed").mkdir()
    workspace = make_workspace(tmp_path / "fixed", config, files)
    report, store = run_ingest(workspace)
    with store:
        assert rows(store, "SELECT is_internal FROM users") == [(True,)]
    assert counts(report, "users").quarantined == 0


def test_empty_cell_mapped_by_values(tmp_path: Path) -> None:
    config = USERS + '\n[sources.users.values]\nis_internal = { "x" = "true", "" = "false" }\n'
    workspace = make_workspace(tmp_path, config, _users("x", "", "X"))

    report, store = run_ingest(workspace)
    with store:
        stored = rows(store, "SELECT user_id, is_internal FROM users ORDER BY 1")
        quarantined = rows(store, "SELECT row_number, value FROM quarantine")

    assert stored == [("U1", True), ("U2", False)]
    assert quarantined == [(3, "X")]
    assert counts(report, "users").quarantined == 1


# --- numbers with thousands separators -------------------------------------------------------------


def _arr(value: str, config: str = "") -> tuple[str, dict[str, str | bytes]]:
    quoted = '"' + value + '"'
    return ACCOUNTS + config, {"accounts.csv": f"account_id,arr\nA1,{quoted}\n"}


def test_comma_thousands_reason_says_remove_them(tmp_path: Path) -> None:
    config, files = _arr("1,234.5")

    reason = _reason(tmp_path, config, files)

    assert reason.startswith("invalid number '1,234.5': "), reason
    assert "',' as a thousands separator" in reason, reason
    assert "1234.5" in reason, reason
    assert 'decimal = ","' not in reason, reason


def test_decimal_comma_reason_names_decimal_key(tmp_path: Path) -> None:
    for folder, value, stored in (("dots", "1.234,5", 1234.5), ("plain", "12,5", 12.5)):
        config, files = _arr(value)

        reason = _reason(tmp_path / folder, config, files)

        assert reason.startswith(f"invalid number '{value}': "), reason
        assert "decimal comma" in reason, reason
        assert '[sources.accounts.csv] decimal = ","' in reason, reason
        fixed, _ = _arr(value, 'csv = { decimal = "," }\n')
        (tmp_path / folder / "fixed").mkdir()
        workspace = make_workspace(tmp_path / folder / "fixed", fixed, files)
        _report, store = run_ingest(workspace)
        with store:
            assert rows(store, "SELECT arr FROM accounts") == [(stored,)]


def test_comma_number_reason_offers_both_readings(tmp_path: Path) -> None:
    config, files = _arr("1,234")

    reason = _reason(tmp_path, config, files)

    assert reason.startswith("invalid number '1,234': "), reason
    assert 'decimal comma, set [sources.accounts.csv] decimal = ","' in reason, reason
    assert "thousands separator" in reason, reason


def test_decimal_point_in_decimal_comma_source(tmp_path: Path) -> None:
    for folder, value in (("point", "12.50"), ("thousands", "1,234.5")):
        config, files = _arr(value, 'csv = { decimal = "," }\n')

        reason = _reason(tmp_path / folder, config, files)

        assert reason.startswith(f"invalid number '{value}': "), reason
        assert "decimal point" in reason, reason
        assert '[sources.accounts.csv] decimal = ","' in reason, reason


def test_other_text_keeps_number_reason(tmp_path: Path) -> None:
    config, files = _arr("lots")

    reason = _reason(tmp_path, config, files)

    assert (
        reason == "invalid number 'lots': expected a finite number below 1e15 in magnitude, such as 1234.5"
    ), reason


def test_unquoted_thousands_split_row_reason(tmp_path: Path) -> None:
    config = ACCOUNTS
    files: dict[str, str | bytes] = {"accounts.csv": "account_id,arr\nA1,1,234.5\nA2,10\n"}

    quarantined = _quarantined(tmp_path, config, files)

    assert len(quarantined) == 1, quarantined
    row_number, column, value, reason = quarantined[0]
    assert (row_number, column, value) == (1, "(whole row)", "A1,1,234.5")
    assert str(reason).startswith("expected 2 fields, found 3"), reason
    assert "thousands separator" in str(reason), reason


# --- Excel's sep= line ------------------------------------------------------------------------------


def test_excel_sep_line_sets_delimiter(tmp_path: Path) -> None:
    files: dict[str, str | bytes] = {
        "accounts.csv": b"\xef\xbb\xbfsep=;\r\naccount_id;name;arr\r\nA1;Acme;10\r\nA2;Globex;x\r\nA3;Initech\r\n",
    }
    workspace = make_workspace(tmp_path, ACCOUNTS, files)

    report, store = run_ingest(workspace)
    with store:
        stored = rows(store, "SELECT account_id, name, arr FROM accounts ORDER BY 1")
        quarantined = rows(store, 'SELECT row_number, "column", value FROM quarantine ORDER BY 1')

    assert stored == [("A1", "Acme", 10.0)]
    # Row numbers count data records after the header, as in a file without the sep= line.
    assert quarantined == [(2, "arr", "x"), (3, "(whole row)", "A3;Initech")]
    assert_balanced(report)


def test_excel_sep_line_in_gzipped_file(tmp_path: Path) -> None:
    config = ACCOUNTS.replace('"accounts.csv"', '"accounts.csv.gz"')
    text = "sep=;\naccount_id;name\nA1;Acme\n"
    files: dict[str, str | bytes] = {"accounts.csv.gz": gzip.compress(text.encode())}
    workspace = make_workspace(tmp_path, config, files)

    report, store = run_ingest(workspace)
    with store:
        stored = rows(store, "SELECT account_id, name FROM accounts")

    assert stored == [("A1", "Acme")]
    assert_balanced(report)


def test_excel_sep_line_beats_configured_delimiter(tmp_path: Path) -> None:
    config = ACCOUNTS + 'csv = { delimiter = ";", encoding = "utf-16" }\n'
    text = 'sep=|\naccount_id|name\nA1|"Acme; Inc"\n'
    files: dict[str, str | bytes] = {"accounts.csv": text.encode("utf-16")}
    workspace = make_workspace(tmp_path, config, files)

    report, store = run_ingest(workspace)
    with store:
        stored = rows(store, "SELECT account_id, name FROM accounts")

    assert stored == [("A1", "Acme; Inc")]
    assert_balanced(report)


# --- ticket priorities and severity weights --------------------------------------------------------


def test_priority_matches_ignoring_case(tmp_path: Path) -> None:
    config = (
        ACCOUNTS + TICKETS + 'columns = { priority = "prio" }\nvalues = { priority = { P1 = "Urgent" } }\n'
    )
    files: dict[str, str | bytes] = {
        "accounts.csv": ACCOUNTS_FILE,
        "tickets.csv": (
            "ticket_id,account_id,created_at,prio\n"
            "T1,A1,2025-01-01,High\n"
            "T2,A1,2025-01-01, LOW \n"
            "T3,A1,2025-01-01,p1\n"
            "T4,A1,2025-01-01,P1\n"
            "T5,A1,2025-01-01,Critical\n"
        ),
    }
    workspace = make_workspace(tmp_path, config, files)

    report, store = run_ingest(workspace)
    with store:
        stored = rows(store, "SELECT ticket_id, priority FROM tickets ORDER BY 1")
        quarantined = rows(store, 'SELECT row_number, "column", value, reason FROM quarantine')

    assert stored == [("T1", "high"), ("T2", "low"), ("T3", "urgent"), ("T4", "urgent")]
    assert len(quarantined) == 1, quarantined
    assert quarantined[0][:3] == (5, "priority", "Critical")
    reason = str(quarantined[0][3])
    assert reason.startswith("invalid priority 'Critical': not one of urgent, high, normal, low"), reason
    assert "ignoring case" in reason, reason
    assert '[sources.tickets.values] priority = { "Critical" = "urgent" }' in reason, reason
    assert counts(report, "tickets").quarantined == 1


def test_severity_weight_keys_ignore_case(tmp_path: Path) -> None:
    (tmp_path / CONFIG_FILE).write_text('[signals]\nseverity_weights = { " High " = 3.0, URGENT = 5.0 }\n')

    workspace = load_workspace(tmp_path)

    assert workspace.config.signals.severity_weights == {"high": 3.0, "urgent": 5.0}


def test_severity_weight_keys_repeated_in_other_case(tmp_path: Path) -> None:
    (tmp_path / CONFIG_FILE).write_text("[signals]\nseverity_weights = { high = 2.0, High = 3.0 }\n")

    with pytest.raises(ConfigError) as error:
        load_workspace(tmp_path)

    message = str(error.value)
    assert "'high' and 'High' name the same priority" in message, message


def test_unknown_severity_weight_names_keys(tmp_path: Path) -> None:
    (tmp_path / CONFIG_FILE).write_text("[signals]\nseverity_weights = { P1 = 8.0 }\n")

    with pytest.raises(ConfigError) as error:
        load_workspace(tmp_path)

    message = str(error.value)
    assert f"the keys are {', '.join(PRIORITIES)}, in any case" in message, message
    assert 'values = { priority = { "P1" = "urgent" } }' in message, message


def test_loaded_at_reads_date_formats(tmp_path: Path) -> None:
    config = ACCOUNTS + TICKETS + 'loaded_at = "synced"\n'
    files: dict[str, str | bytes] = {
        "accounts.csv": ACCOUNTS_FILE,
        "tickets.csv": "ticket_id,account_id,created_at,synced\nT1,A1,2025-12-01,31.12.2025 10:00\n",
    }

    quarantined = _quarantined(tmp_path / "local", config, files)

    assert [row[:3] for row in quarantined] == [(1, "synced", "31.12.2025 10:00")]
    assert '[sources.tickets.csv] date_formats = ["%d.%m.%Y %H:%M"]' in str(quarantined[0][3])

    fixed = config + 'csv = { date_formats = ["%d.%m.%Y %H:%M"] }\n'
    (tmp_path / "fixed").mkdir()
    workspace = make_workspace(tmp_path / "fixed", fixed, files)
    report, store = run_ingest(workspace)
    with store:
        assert rows(store, "SELECT _available_at FROM tickets") == [(datetime(2025, 12, 31, 10, 0),)]
    assert counts(report, "tickets").quarantined == 0


def test_enumerated_constant_in_any_case(tmp_path: Path) -> None:
    config = ACCOUNTS + (
        '[sources.nps]\ntable = "sentiment_responses"\nfiles = ["nps.csv"]\nconstants = { kind = "NPS" }\n'
    )
    files: dict[str, str | bytes] = {
        "accounts.csv": ACCOUNTS_FILE,
        "nps.csv": "account_id,responded_at,score\nA1,2025-01-01,9\n",
    }
    workspace = make_workspace(tmp_path, config, files)

    report, store = run_ingest(workspace)
    with store:
        stored = rows(store, "SELECT kind, score FROM sentiment_responses")

    assert stored == [("nps", 9.0)]
    assert counts(report, "nps").quarantined == 0
