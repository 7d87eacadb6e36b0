from __future__ import annotations

import json
import warnings
from datetime import datetime

import numpy as np
import pytest
import sqlalchemy as sa

from account_health.config import TierSettings, Workspace, load_workspace
from account_health.errors import NoDataError, SignalSettingsWarning, StaleModelWarning
from account_health.scoring.explain import explain
from account_health.scoring.score import changed_signal_settings, latest_artifact, score
from account_health.sources.ingest import ingest
from account_health.store import operational
from account_health.training.evaluate import tier_of
from account_health.workspace import open_stores
from company import trained_company, write_company


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory):
    return trained_company(tmp_path_factory.mktemp("company"))[0]


def test_tier_lower_bounds_are_inclusive():
    tiers = TierSettings()
    probabilities = np.array([0.60, 0.5999, 0.40, 0.20, 0.08, 0.0799, 0.0])
    assert list(tier_of(probabilities, tiers)) == [
        "Red",
        "Orange",
        "Orange",
        "Yellow",
        "Green",
        "Dark-Green",
        "Dark-Green",
    ]


def test_score_writes_one_row_per_account_at_risk(workspace):
    with open_stores(workspace) as (store, engine):
        result = score(workspace, store, engine)
        stored = operational.read_scores(engine, result.as_of)
    assert len(stored) == len(result.scores) > 0
    assert result.as_of == datetime(2025, 12, 31)
    first = stored[0]
    assert first["probability"] == pytest.approx(result.scores["probability"].max())
    contributions = json.loads(first["contributions"])
    assert set(contributions) == {"sentiment", "support"}
    signals = json.loads(first["signals"])
    assert signals["usage_trend"] is None
    assert first["validated"] is True


def test_contributions_add_up_to_the_log_odds(workspace):
    with open_stores(workspace) as (store, engine):
        result = score(workspace, store, engine)
        artifact = json.loads(operational.latest_model_row(engine)["artifact"])
    row = result.scores.iloc[0]
    log_odds = artifact["model"]["intercept"] + sum(row["contributions"].values())
    assert 1 / (1 + np.exp(-log_odds)) == pytest.approx(row["probability"])


def test_stored_points_follow_the_log_odds_contributions(workspace):
    with open_stores(workspace) as (store, engine):
        result = score(workspace, store, engine)
        artifact = json.loads(operational.latest_model_row(engine)["artifact"])
        stored = operational.read_scores(engine, result.as_of)
    intercept = artifact["model"]["intercept"]
    for row in stored[:50]:
        contributions = json.loads(row["contributions"])
        points = json.loads(row["probability_points"])
        assert set(points) == set(contributions)
        log_odds = intercept + sum(contributions.values())
        for signal, contribution in contributions.items():
            without = 1 / (1 + np.exp(-(log_odds - contribution)))
            assert points[signal] == pytest.approx(100 * (row["probability"] - without), abs=1e-6)
            assert np.sign(points[signal]) == np.sign(contribution), (row["account_id"], signal)


def test_rescoring_a_date_replaces_its_rows(workspace):
    with open_stores(workspace) as (store, engine):
        first = score(workspace, store, engine, datetime(2025, 11, 1))
        second = score(workspace, store, engine, datetime(2025, 11, 1))
        with engine.connect() as connection:
            rows = connection.execute(
                sa.select(operational.scores.c.run_id).where(
                    operational.scores.c.as_of == datetime(2025, 11, 1)
                )
            ).all()
    assert len(rows) == len(first.scores) == len(second.scores)
    assert {row.run_id for row in rows} == {second.run_id}


def test_stale_model_warns(workspace):
    with open_stores(workspace) as (store, engine), pytest.warns(StaleModelWarning, match="retrain"):
        result = score(workspace, store, engine, datetime(2026, 6, 1))
    assert result.stale_days is not None and result.stale_days > 90


def test_other_signal_settings_warn(workspace):
    signals = workspace.config.signals.model_copy(update={"knowledge_lag_hours": 12.0})
    changed = Workspace(workspace.config.model_copy(update={"signals": signals}), workspace.root)
    with open_stores(changed) as (store, engine), pytest.warns(SignalSettingsWarning) as caught:
        score(changed, store, engine, datetime(2025, 11, 1))
    message = next(str(item.message) for item in caught if item.category is SignalSettingsWarning)
    assert "knowledge_lag_hours = 6.0 in the model, 12.0 now" in message
    assert "Retrain with `account-health train`" in message


def test_same_signal_settings_do_not_warn(workspace):
    with open_stores(workspace) as (store, engine), warnings.catch_warnings():
        warnings.simplefilter("error", SignalSettingsWarning)
        score(workspace, store, engine, datetime(2025, 11, 1))


def test_settings_without_effect_compare_equal(workspace):
    with open_stores(workspace) as (_store, engine):
        artifact = latest_artifact(engine)
    trained = artifact["signal_settings"]
    signals = workspace.config.signals.model_copy(
        update={
            "engine": "spark" if trained["engine"] == "duckdb" else "duckdb",
            "internal_user_patterns": [
                *reversed(trained["internal_user_patterns"]),
                *trained["internal_user_patterns"],
            ],
        }
    )
    changed = Workspace(workspace.config.model_copy(update={"signals": signals}), workspace.root)
    assert changed_signal_settings(changed, artifact) == []


def test_explain_orders_reasons_by_size_in_words(workspace):
    with open_stores(workspace) as (store, engine):
        result = score(workspace, store, engine)
        account = result.scores.iloc[0]["account_id"]
        explanation = explain(engine, account, result.as_of)
    used = [reason for reason in explanation.reasons if not np.isnan(reason.log_odds)]
    assert [abs(reason.log_odds) for reason in used] == sorted((abs(r.log_odds) for r in used), reverse=True)
    support = next(reason for reason in explanation.reasons if reason.signal == "support")
    assert "severity-weighted tickets in 90 days" in support.text
    unused = [reason.text for reason in explanation.reasons if np.isnan(reason.log_odds)]
    assert any("not used by the model" in text for text in unused)


def test_explain_unknown_account_names_it(workspace):
    with open_stores(workspace) as (_store, engine), pytest.raises(NoDataError, match="'nobody'"):
        explain(engine, "nobody")


def test_score_without_model_says_train_first(tmp_path):
    folder = write_company(tmp_path, accounts=60)
    workspace = load_workspace(folder)
    with open_stores(workspace) as (store, engine):
        ingest(workspace, store)
        with warnings.catch_warnings(), pytest.raises(NoDataError, match="account-health train"):
            score(workspace, store, engine)
