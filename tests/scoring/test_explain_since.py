from __future__ import annotations

import json
import math
import subprocess
import sys
import warnings
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from account_health.config import load_workspace
from account_health.errors import NoDataError, StaleModelWarning
from account_health.scoring.explain import _feature_change, explain, explain_change
from account_health.scoring.score import score
from account_health.sources.ingest import ingest
from account_health.store import operational
from account_health.training.train import train
from account_health.workspace import open_stores
from company import write_company

OCTOBER, NOVEMBER, DECEMBER = datetime(2025, 10, 1), datetime(2025, 11, 1), datetime(2025, 12, 31)


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory):
    """A workspace scored on October 1 and November 1 by one model, and on December 31 by a newer one."""
    folder = write_company(tmp_path_factory.mktemp("company"))
    workspace = load_workspace(folder)
    with open_stores(workspace) as (store, engine), warnings.catch_warnings():
        warnings.simplefilter("ignore", StaleModelWarning)
        ingest(workspace, store)
        first = train(workspace, store, engine, end=NOVEMBER).artifact["model_version"]
        score(workspace, store, engine, OCTOBER)
        score(workspace, store, engine, NOVEMBER)
        second = train(workspace, store, engine, end=DECEMBER).artifact["model_version"]
        score(workspace, store, engine, DECEMBER)
        scored = [
            {row["account_id"] for row in operational.read_scores(engine, day)}
            for day in (OCTOBER, NOVEMBER, DECEMBER)
        ]
    account = sorted(set.intersection(*scored))[0]
    return workspace, account, first, second


def test_since_across_a_model_change_names_both_models(history):
    workspace, account, first, second = history
    assert first != second
    with open_stores(workspace) as (_store, engine):
        change = explain_change(engine, account, NOVEMBER)
    assert change.before.as_of == NOVEMBER
    assert change.after.as_of == DECEMBER
    assert change.before.model_version == first
    assert change.after.model_version == second
    assert change.model_changed


def test_since_between_scores_of_one_model(history):
    workspace, account, first, _second = history
    with open_stores(workspace) as (_store, engine):
        change = explain_change(engine, account, datetime(2025, 10, 20), as_of=NOVEMBER)
    assert change.before.as_of == OCTOBER
    assert change.after.as_of == NOVEMBER
    assert change.before.model_version == change.after.model_version == first
    assert not change.model_changed


def test_since_orders_signals_by_contribution_move(history):
    workspace, account, _first, _second = history
    with open_stores(workspace) as (_store, engine):
        change = explain_change(engine, account, NOVEMBER)
        rows = {
            day: next(row for row in operational.read_scores(engine, day) if row["account_id"] == account)
            for day in (NOVEMBER, DECEMBER)
        }
    moves = [abs(item.log_odds_move) for item in change.changes if not math.isnan(item.log_odds_move)]
    assert moves == sorted(moves, reverse=True)
    before, after = json.loads(rows[NOVEMBER]["contributions"]), json.loads(rows[DECEMBER]["contributions"])
    support = next(item for item in change.changes if item.signal == "support")
    assert support.log_odds_before == pytest.approx(before["support"])
    assert support.log_odds_after == pytest.approx(after["support"])
    assert support.log_odds_move == pytest.approx(after["support"] - before["support"])
    assert "severity-weighted tickets in 90 days" in support.text
    usage = next(item for item in change.changes if item.signal == "usage")
    assert math.isnan(usage.log_odds_move), "the company has no usage source"


def test_since_before_every_score_names_the_earliest(history):
    workspace, account, _first, _second = history
    with open_stores(workspace) as (_store, engine), pytest.raises(NoDataError) as error:
        explain_change(engine, account, datetime(2025, 9, 1))
    message = str(error.value)
    assert "on or before 2025-09-01" in message
    assert "2025-10-01" in message
    assert "account-health score --as-of 2025-09-01" in message


def test_since_not_before_the_explained_score_is_rejected(history):
    workspace, account, _first, _second = history
    with (
        open_stores(workspace) as (_store, engine),
        pytest.raises(NoDataError, match="is not before 2025-11-01"),
    ):
        explain_change(engine, account, NOVEMBER, as_of=NOVEMBER)


def test_explain_derives_points_of_scores_stored_without_them(history):
    workspace, account, _first, _second = history
    with open_stores(workspace) as (_store, engine):
        stored = explain(engine, account, OCTOBER)
        with engine.begin() as connection:
            connection.execute(
                sa.update(operational.scores)
                .where(operational.scores.c.account_id == account, operational.scores.c.as_of == OCTOBER)
                .values(probability_points=None)
            )
        derived = explain(engine, account, OCTOBER)
    for old, new in zip(stored.reasons, derived.reasons, strict=True):
        assert old.signal == new.signal
        if not math.isnan(old.points):
            assert new.points == pytest.approx(old.points, abs=1e-9), old.signal


def test_cli_explain_since_prints_the_move(history):
    workspace, account, first, second = history
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "account_health.cli.app",
            "-w",
            str(Path(workspace.root)),
            "explain",
            account,
            "--since",
            "2025-11-01",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    output = " ".join(result.stdout.split())
    assert output.startswith(f"{account}:")
    assert f"model changed from {first} to {second} between these dates" in output
    assert "2025-11-01 -> 2025-12-31" in output
    assert "log-odds" in output
    assert "points" in output


def test_since_measure_change_gives_both_units():
    before = {"usage_trend": 3.5468, "usage_measure": "event_count"}
    after = {"usage_trend": 0.5186, "usage_measure": "active_users"}

    text = _feature_change("usage_trend", before, after)

    # Event counts and active users are different units, so neither a rise nor a fall is claimed.
    assert text == (
        "usage trend: +3.5468 daily events per day (slope over 28 days) then, "
        "+0.5186 daily active users per day (slope over 28 days) now"
    )
    # In one unit the move is still a rise or a fall.
    same_unit = _feature_change("usage_trend", after | {"usage_trend": 0.9}, after)
    assert same_unit.startswith("usage trend fell from +0.9000 to +0.5186 daily active users")
