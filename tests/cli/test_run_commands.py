from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from typer.testing import CliRunner

from account_health.cli.app import app
from action_company import copy_workspace
from console import run_cli

runner = CliRunner()


def _invoke(folder: Path, *arguments: str):
    return runner.invoke(app, ["-w", str(folder), *arguments])


def test_run_tasks_watch_and_task_done(template: Path, tmp_path: Path):
    folder = copy_workspace(template, tmp_path / "company").root

    result = _invoke(folder, "run", "--as-of", "2025-12-01", "--no-ingest", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["as_of"] == "2025-12-01T00:00:00"
    assert summary["ingest"] is None
    assert sum(summary["tiers"].values()) == summary["accounts_scored"] > 0
    assert set(summary["timings_seconds"]) == {
        "signals",
        "score",
        "tier-changes",
        "actions",
        "write",
        "notify",
        "deliver",
    }

    exported = _invoke(folder, "tasks", "--format", "csv")
    assert exported.exit_code == 0, exported.output
    rows = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert len(rows) >= summary["tasks"]["open"] + summary["tasks"]["overflow"]
    owners = {row["owner"] for row in rows}
    assert "'=cruz@vendor.example" in owners
    assert "=cruz@vendor.example" not in owners

    red = _invoke(folder, "tasks", "--tier", "Red", "--owner", "ana@vendor.example", "--format", "json")
    assert red.exit_code == 0, red.output
    assert all(
        task["tier"] == "Red" and task["owner"] == "ana@vendor.example" for task in json.loads(red.stdout)
    )
    lower = _invoke(folder, "tasks", "--tier", "red", "--owner", "ana@vendor.example", "--format", "json")
    assert lower.stdout == red.stdout

    account = rows[0]["account_id"]
    tier_before = rows[0]["tier"]
    flagged = _invoke(folder, "watch", account, "--reason", "CEO asked for a call", "--until", "2099-01-01")
    assert flagged.exit_code == 0, flagged.output
    listed = _invoke(folder, "watch", "--list")
    assert account in listed.stdout and "CEO asked for a call" in listed.stdout
    assert "CEO asked for a call" in _invoke(folder, "watch", account, "--list").stdout
    assert "CEO asked for a call" not in _invoke(folder, "watch", "NO-SUCH-ACCOUNT", "--list").stdout
    explained = _invoke(folder, "explain", account)
    assert "watch list until 2099-01-01: CEO asked for a call" in explained.stdout

    again = _invoke(folder, "run", "--as-of", "2025-12-01", "--no-ingest", "--json")
    assert json.loads(again.stdout)["watched_accounts"] == 1
    tasks = json.loads(_invoke(folder, "tasks", "--format", "json").stdout)
    watched = [
        task for task in tasks if task["account_id"] == account and task["as_of"].startswith("2025-12-01")
    ]
    assert watched and watched[0]["watch_reason"] == "CEO asked for a call"
    assert watched[0]["tier"] == tier_before

    done = _invoke(folder, "task-done", str(watched[0]["task_id"]), "--on", "2025-12-02")
    assert done.exit_code == 0, done.output
    corrected = _invoke(folder, "task-done", str(watched[0]["task_id"]), "--on", "2025-12-03")
    assert "(was completed on 2025-12-02; now 2025-12-03)" in " ".join(corrected.stdout.split())
    table = _invoke(folder, "tasks")
    assert "completed" in table.stdout

    removed = _invoke(folder, "watch", account, "--remove")
    assert "removed 1 watch-list entries" in removed.stdout
    assert account not in _invoke(folder, "watch", "--list").stdout


def test_bad_options_are_usage_errors(template: Path, tmp_path: Path):
    folder = copy_workspace(template, tmp_path / "company").root
    assert _invoke(folder, "tasks", "--tier", "Purple").exit_code == 2
    assert _invoke(folder, "tasks", "--format", "xlsx").exit_code == 2
    assert _invoke(folder, "watch").exit_code == 2
    assert _invoke(folder, "watch", "A0001").exit_code == 2


def test_unknown_account_and_task_are_one_line_errors(template: Path, tmp_path: Path):
    folder = copy_workspace(template, tmp_path / "company").root
    result = run_cli("-w", str(folder), "watch", "NOPE", "--reason", "x")
    assert result.returncode == 1
    assert "account 'NOPE' has no score" in result.stderr
    assert "Traceback" not in result.stderr
    missing = run_cli("-w", str(folder), "task-done", "999999")
    assert missing.returncode == 1
    assert "no task with id 999999" in missing.stderr


def test_new_commands_have_help():
    for command in ("run", "watch", "tasks", "task-done"):
        help_text = runner.invoke(app, [command, "--help"]).output
        assert "Show this message and exit." in help_text


def test_task_done_refuses_a_date_outside_the_task(template: Path, tmp_path: Path):
    from account_health.store import operational
    from account_health.store.actions import read_tasks

    workspace = copy_workspace(template, tmp_path / "company")
    engine = operational.connect(workspace.operational_store_url)
    task_id = read_tasks(engine)[0]["task_id"]
    engine.dispose()
    for on in ("1999-01-01", "2099-01-01"):
        result = run_cli("-w", str(workspace.root), "task-done", str(task_id), "--on", on)
        assert result.returncode == 1
        assert "outside the task's life" in result.stderr
