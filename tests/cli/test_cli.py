from __future__ import annotations

import io
import json
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from account_health.cli.app import app
from account_health.cli.render import as_of_text
from company import write_company
from console import run_cli

runner = CliRunner()


def test_init_creates_config_and_both_stores(tmp_path: Path):
    result = runner.invoke(app, ["init", str(tmp_path / "ws")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "ws" / "account-health.toml").is_file()
    assert (tmp_path / "ws" / "data" / "analytical.duckdb").is_file()
    assert (tmp_path / "ws" / "data" / "operational.sqlite").is_file()


def test_every_command_and_option_has_help():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("init", "ingest", "signals", "train", "score", "explain", "quickstart"):
        assert command in result.output
        help_text = runner.invoke(app, [command, "--help"]).output
        assert "Show this message and exit." in help_text
        for line in help_text.splitlines():
            if line.strip().startswith("│ --") and "--help" not in line:
                assert len(line.split("  ")) > 1, f"{command}: option without help: {line}"


def test_library_error_exits_1_with_the_message(tmp_path: Path):
    result = run_cli("-w", str(tmp_path), "ingest")
    assert result.returncode == 1
    assert "no account-health.toml" in result.stderr
    assert "account-health init" in result.stderr
    assert "Traceback" not in result.stderr


def test_config_error_keeps_bracketed_keys_visible(tmp_path: Path):
    (tmp_path / "account-health.toml").write_text('[sources.t]\ntable = "tickets"\nfiles = ["missing.csv"]\n')
    result = run_cli("-w", str(tmp_path), "ingest")
    assert result.returncode == 1
    assert "[sources.t] files" in result.stderr.replace("\n", " ")


def test_bad_as_of_is_a_usage_error(tmp_path: Path):
    write_company(tmp_path, accounts=20)
    result = runner.invoke(app, ["-w", str(tmp_path), "signals", "--as-of", "yesterday"])
    assert result.exit_code == 2
    assert "invalid --as-of date 'yesterday'" in result.output


@pytest.mark.parametrize(
    ("command", "value"),
    [
        (["signals", "--as-of"], "0001-01-01"),
        (["signals", "--as-of"], "0001-01-01T00:00:00+05:00"),
        (["score", "--as-of"], "2200-01-01"),
        (["explain", "A0001", "--as-of"], "1899-12-31"),
        (["run", "--as-of"], "9999-12-31"),
        (["tasks", "--as-of"], "2199-12-31T23:00:00-02:00"),
        (["train", "--end"], "0001-01-01"),
    ],
)
def test_as_of_outside_range_rejected(tmp_path: Path, command: list[str], value: str):
    (tmp_path / "account-health.toml").write_text("", encoding="utf-8")
    result = runner.invoke(app, ["-w", str(tmp_path), *command, value])
    message = " ".join(result.output.replace("│", " ").split())
    assert result.exit_code == 2, result.output
    assert f"{command[-1]} date '{value}' is outside the accepted years 1900 to 2199 (UTC)" in message
    assert result.exception is None or isinstance(result.exception, SystemExit)


@pytest.fixture(scope="module")
def scored_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = write_company(tmp_path_factory.mktemp("company"))
    for command in ("ingest", "train", "score"):
        result = run_cli("-w", str(folder), command)
        assert result.returncode == 0, result.stderr
    return folder


def test_main_job_through_the_console(scored_workspace: Path):
    again = run_cli("-w", str(scored_workspace), "ingest")
    assert again.returncode == 0, again.stderr
    assert "unchanged" in again.stdout
    lines = [line for line in again.stdout.splitlines() if "accounts" in line and "backfill" not in line]
    assert any("400" in line for line in lines)


def test_train_report_first_line_is_the_verdict(scored_workspace: Path):
    result = run_cli("-w", str(scored_workspace), "train")
    assert result.returncode == 0, result.stderr
    first = result.stdout.splitlines()[0]
    assert first.startswith("validated") or first.startswith("NOT VALIDATED")
    assert "ROC AUC" in result.stdout
    assert "share of weight" in result.stdout


def test_score_prints_tiers_and_riskiest(scored_workspace: Path):
    result = run_cli("-w", str(scored_workspace), "score", "--as-of", "2025-12-31")
    assert result.returncode == 0, result.stderr
    for tier in ("Red", "Orange", "Yellow", "Green", "Dark-Green"):
        assert tier in result.stdout
    assert "The 10 riskiest accounts" in result.stdout


def test_explain_prints_reasons_in_words(scored_workspace: Path):
    result = run_cli("-w", str(scored_workspace), "explain", "A0001")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("A0001:")
    assert "severity-weighted tickets in 90 days" in result.stdout
    assert "churn probability" in result.stdout


@pytest.mark.parametrize("output_format", ["csv", "json", "table"])
def test_signals_command_formats(scored_workspace: Path, output_format: str):
    result = run_cli("-w", str(scored_workspace), "signals", "--account", "A0002", "--format", output_format)
    assert result.returncode == 0, result.stderr
    assert "A0002" in result.stdout
    assert "support_load" in result.stdout


def test_account_ids_pasted_with_spaces_find_their_account(scored_workspace: Path):
    signals = runner.invoke(
        app, ["-w", str(scored_workspace), "signals", "--account", " A0002 ", "--format", "json"]
    )
    assert signals.exit_code == 0, signals.output
    assert [row["account_id"] for row in json.loads(signals.stdout)] == ["A0002"]

    explained = runner.invoke(app, ["-w", str(scored_workspace), "explain", "\tA0001  "])
    assert explained.exit_code == 0, explained.output
    assert explained.stdout.startswith("A0001:")


def test_signals_csv_escapes_formula_account_ids(tmp_path: Path):
    # The ingest trims leading tabs and carriage returns from ids, so those starts cannot reach here.
    ids = ["=1+1", "@SUM(A1)", "+plus", "-minus", "A-1"]
    (tmp_path / "account-health.toml").write_text(
        '[workspace]\nanalytical_store = "analytical.duckdb"\noperational_store = "sqlite:///operational.sqlite"\n\n'
        '[sources.accounts]\ntable = "accounts"\nfiles = ["accounts.csv"]\n',
        encoding="utf-8",
    )
    rows = "".join(f'"{account_id}",UTC\n' for account_id in ids)
    (tmp_path / "accounts.csv").write_text("account_id,timezone\n" + rows, encoding="utf-8", newline="")
    ingested = runner.invoke(app, ["-w", str(tmp_path), "ingest"])
    assert ingested.exit_code == 0, ingested.output

    result = run_cli("-w", str(tmp_path), "signals", "--as-of", "2025-03-11", "--format", "csv")

    assert result.returncode == 0, result.stderr
    frame = pd.read_csv(io.StringIO(result.stdout), keep_default_na=False)
    escaped = {"'" + account_id for account_id in ids if account_id != "A-1"}
    assert set(frame["account_id"]) == escaped | {"A-1"}
    assert set(frame["usage_measure"]) == {""}


def test_signals_table_names_mixed_usage_measures(tmp_path: Path):
    (tmp_path / "account-health.toml").write_text(
        '[workspace]\nanalytical_store = "analytical.duckdb"\noperational_store = "sqlite:///operational.sqlite"\n\n'
        '[sources.accounts]\ntable = "accounts"\nfiles = ["accounts.csv"]\n\n'
        '[sources.usage]\ntable = "usage_daily"\nfiles = ["usage.csv"]\n',
        encoding="utf-8",
    )
    (tmp_path / "accounts.csv").write_text("account_id\nU1\nE1\n", encoding="utf-8")
    days = pd.date_range("2025-03-01", "2025-03-10").strftime("%Y-%m-%d")
    rows = [f"U1,{day},{3 + index % 2},\n" for index, day in enumerate(days)]
    rows += [f"E1,{day},,{40 + index}\n" for index, day in enumerate(days)]
    (tmp_path / "usage.csv").write_text("account_id,day,active_users,event_count\n" + "".join(rows))
    ingested = runner.invoke(app, ["-w", str(tmp_path), "ingest"])
    assert ingested.exit_code == 0, ingested.output

    result = runner.invoke(
        app, ["-w", str(tmp_path), "signals", "--as-of", "2025-03-11"], env={"COLUMNS": "200"}
    )

    assert result.exit_code == 0, result.output
    assert "usage_measure" in result.output
    assert "active_users" in result.output
    assert "event_count" in result.output


@pytest.mark.parametrize(
    ("command", "section"),
    [
        ("export", "[spark] parquet_dir"),
        ("train", "[training] min_churn_events"),
        ("train", "[tiers.bands] band"),
        ("report", "[notify.slack]"),
        ("watch", "[actions] watch_default_days"),
    ],
)
def test_help_shows_config_sections(command: str, section: str):
    result = runner.invoke(app, [command, "--help"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    assert section in result.output


@pytest.mark.parametrize(("command", "option"), [("export", "--dir"), ("report", "--out")])
def test_output_folder_that_is_file(scored_workspace: Path, tmp_path: Path, command: str, option: str):
    existing_file = tmp_path / "existing_file"
    existing_file.write_text("not a folder\n", encoding="utf-8")
    result = runner.invoke(app, ["-w", str(scored_workspace), command, option, str(existing_file)])
    assert str(result.exception) == f"{existing_file} is a file, not a folder; pass {option} with a folder"


def test_as_of_text_shows_time_when_not_midnight():
    assert as_of_text(datetime(2026, 11, 1)) == "2026-11-01"
    assert as_of_text(datetime(2026, 11, 1, 12)) == "2026-11-01 12:00:00 UTC"


def test_as_of_before_data_warns(scored_workspace: Path):
    result = runner.invoke(
        app, ["-w", str(scored_workspace), "signals", "--as-of", "1990-01-01", "--format", "csv"]
    )
    assert result.exit_code == 0, result.output
    warning = " ".join(result.stderr.split())
    assert "as of 1990-01-01 is before the oldest ingested data" in warning
    assert "Pass a later --as-of." in warning


def test_workspace_after_command_gets_hint(tmp_path: Path):
    result = run_cli("sources", "-w", str(tmp_path))
    assert result.returncode == 2
    assert "No such option: -w" in result.stderr
    assert "hint: -w/--workspace and -v/--verbose go before the command" in result.stderr
    assert "hint:" not in run_cli("-w", str(tmp_path), "sources", "--bogus").stderr
