"""The nightly run reads its own load of yesterday's events through `[signals] knowledge_lag_hours`."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from typer.testing import CliRunner

from account_health.cli.app import app
from account_health.config import Workspace, load_workspace
from account_health.nightly import hidden_load, run_nightly
from account_health.signals import compute_signals
from account_health.sources.ingest import ingest
from account_health.workspace import open_stores
from action_company import copy_workspace
from nightly_fixtures import SECOND

LATE_SOURCE = """
[sources.late_usage]
table = "usage_events"
files = ["exports/late_usage.csv"]
loaded_at = "synced_at"
"""
ACCOUNTS = 20


def _add_late_usage(workspace: Workspace, synced: datetime) -> list[str]:
    """Add a source of events, one new user per account at noon of its last local day before SECOND.

    The events become available at `synced`. Return the accounts.
    """
    root = workspace.root
    frame = pd.read_csv(root / "exports" / "accounts.csv").head(ACCOUNTS)
    accounts = frame["account_id"].tolist()
    noons = []
    for zone in frame["timezone"].fillna("UTC"):
        local = SECOND.replace(tzinfo=UTC).astimezone(ZoneInfo(zone))
        noon = datetime.combine(local.date() - timedelta(days=1), time(12), ZoneInfo(zone))
        noons.append(noon.astimezone(UTC).replace(tzinfo=None).isoformat())
    events = pd.DataFrame(
        {
            "event_id": [f"LATE-{account}" for account in accounts],
            "account_id": accounts,
            "user_id": [f"LATE-USER-{account}" for account in accounts],
            "occurred_at": noons,
            "synced_at": [synced.isoformat()] * len(accounts),
        }
    )
    events.to_csv(root / "exports" / "late_usage.csv", index=False)
    with (root / "account-health.toml").open("a", encoding="utf-8") as handle:
        handle.write(LATE_SOURCE)
    return accounts


def _with_lag(workspace: Workspace, hours: float) -> Workspace:
    signals = workspace.config.signals.model_copy(update={"knowledge_lag_hours": hours})
    return Workspace(workspace.config.model_copy(update={"signals": signals}), workspace.root)


@pytest.mark.slow
def test_run_sees_own_load_after_midnight(template: Path, tmp_path: Path) -> None:
    workspace = copy_workspace(template, tmp_path / "company")
    # The template's usage events end two days before SECOND, so without the late source every
    # account's last local day is inactive.
    accounts = _add_late_usage(workspace, SECOND + timedelta(minutes=30))
    workspace = load_workspace(workspace.root)

    with open_stores(workspace) as (store, engine):
        result = run_nightly(workspace, store, engine, SECOND)
        strict = compute_signals(_with_lag(workspace, 0), store, [SECOND]).set_index("account_id")

    assert workspace.config.signals.knowledge_lag_hours == 6
    assert result.summary()["hidden_load"] is None
    scores = result.scores.set_index("account_id")
    scored = [account for account in accounts if account in scores.index]
    assert scored
    for account in scored:
        # The late user is active on the last day: the run reads the load it ingested after midnight,
        # a snapshot with lag 0 does not.
        assert scores.loc[account, "usage_end"] > strict.loc[account, "usage_end"], account
    # Apart from usage, what the late source adds, the run's signals are those of a lag-0 snapshot.
    columns = ["sentiment_score", "support_load", "champion_in_seat", "integrations_active"]
    pd.testing.assert_frame_equal(
        scores[columns].sort_index(), strict.loc[scores.index, columns].sort_index(), check_dtype=False
    )


@pytest.mark.slow
def test_run_warns_of_hidden_load(template: Path, tmp_path: Path) -> None:
    workspace = copy_workspace(template, tmp_path / "company")
    synced = SECOND + timedelta(hours=7)
    accounts = _add_late_usage(workspace, synced)
    # Rows no lag reaches are left out of the warning: a late correction of an event two weeks old,
    # and a recent event that arrived more than 48 hours late.
    late = workspace.root / "exports" / "late_usage.csv"
    old = pd.DataFrame(
        {
            "event_id": ["OLD-1", "OLD-2"],
            "account_id": [accounts[0], accounts[1]],
            "user_id": ["OLD-USER", "OLD-USER"],
            "occurred_at": [
                (SECOND - timedelta(days=15)).isoformat(),
                (SECOND - timedelta(hours=3)).isoformat(),
            ],
            "synced_at": [synced.isoformat(), (SECOND + timedelta(hours=49)).isoformat()],
        }
    )
    old.to_csv(late, mode="a", header=False, index=False)

    runner = CliRunner()
    text = runner.invoke(app, ["-w", str(workspace.root), "run", "--as-of", "2025-12-01"])
    assert text.exit_code == 0, text.output
    words = " ".join(text.stdout.split())
    assert re.search(
        rf"{len(accounts)} of the [0-9,]+ rows of events in the 48 hours before 2025-12-01 00:00 UTC", words
    ), words
    assert (
        "at or after the knowledge cut-off 2025-12-01 06:00 UTC, the latest at 2025-12-01 07:00 UTC" in words
    )
    assert "Set [signals] knowledge_lag_hours to at least 7.1 (now 6) and retrain" in words

    # A retry ingests nothing new, and the rows are still left out, so it warns again.
    again = runner.invoke(app, ["-w", str(workspace.root), "run", "--as-of", "2025-12-01", "--json"])
    assert again.exit_code == 0, again.output
    hidden = json.loads(again.stdout)["hidden_load"]
    assert hidden["rows"] == len(accounts)
    assert hidden["needed_lag_hours"] == pytest.approx(7.1)
    assert hidden["known_until"] == "2025-12-01T06:00:00"

    # With a lag that reaches the load, nothing is left out.
    config = workspace.root / "account-health.toml"
    settings = config.read_text(encoding="utf-8")
    if "[signals]" in settings:
        settings = settings.replace("[signals]", "[signals]\nknowledge_lag_hours = 8", 1)
    else:
        settings += "\n[signals]\nknowledge_lag_hours = 8\n"
    config.write_text(settings, encoding="utf-8")
    reached = runner.invoke(
        app, ["-w", str(workspace.root), "run", "--as-of", "2025-12-01", "--no-ingest", "--json"]
    )
    assert reached.exit_code == 0, reached.output
    summary = json.loads(reached.stdout)
    assert summary["hidden_load"] is None
    # The model was trained with a lag of 6, so the run reports that the setting differs.
    assert summary["signal_settings_changed"] == ["knowledge_lag_hours"]


@pytest.mark.slow
def test_few_late_rows_do_not_warn(template: Path, tmp_path: Path) -> None:
    """A feed that delivers under 1 % of its recent events late, as tracking SDKs do, gives no warning."""
    workspace = copy_workspace(template, tmp_path / "company")
    accounts = _add_late_usage(workspace, SECOND + timedelta(hours=7))
    late = workspace.root / "exports" / "late_usage.csv"
    on_time = pd.DataFrame(
        {
            "event_id": [f"ON-TIME-{number}" for number in range(2_500)],
            "account_id": [accounts[number % len(accounts)] for number in range(2_500)],
            "user_id": [f"ON-TIME-USER-{number % 50}" for number in range(2_500)],
            "occurred_at": [
                (SECOND - timedelta(hours=20, seconds=number)).isoformat() for number in range(2_500)
            ],
            "synced_at": [(SECOND + timedelta(hours=1)).isoformat()] * 2_500,
        }
    )
    on_time.to_csv(late, mode="a", header=False, index=False)
    workspace = load_workspace(workspace.root)

    with open_stores(workspace) as (store, _engine):
        ingest(workspace, store)
        few = hidden_load(store, SECOND, workspace.config.signals)
        strict = hidden_load(store, SECOND, _with_lag(workspace, 0).config.signals)

    assert few is None, few.message() if few else ""
    # With no lag the on-time rows are left out too, and then it warns.
    assert strict is not None
    assert strict.rows == len(accounts) + 2_500
