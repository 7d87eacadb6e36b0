from __future__ import annotations

import json
from datetime import datetime
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from account_health.config import load_workspace
from account_health.errors import ModelArtifactError, TrainingError
from account_health.sources.ingest import ingest
from account_health.store import operational
from account_health.training.artifact import load_artifact, parse_artifact
from account_health.training.model import ChurnModel
from account_health.training.spine import snapshot_dates
from account_health.training.train import train
from account_health.workspace import open_stores
from company import trained_company, write_company


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory):
    return trained_company(tmp_path_factory.mktemp("company"))


def test_snapshot_grid_ends_one_horizon_before_end():
    dates = snapshot_dates(datetime(2025, 12, 31), window_months=18, every_days=30, horizon_days=90)
    assert dates[-1] == datetime(2025, 10, 2)
    assert all((later - earlier).days == 30 for earlier, later in pairwise(dates))
    assert dates[0] >= datetime(2024, 6, 30)


def test_report_compares_model_with_base_rate(trained):
    _workspace, result = trained
    metrics = result.artifact["metrics"]
    assert metrics["roc_auc"]["low"] <= metrics["roc_auc"]["value"] <= metrics["roc_auc"]["high"]
    assert metrics["roc_auc"]["value"] > 0.6
    assert result.artifact["validated"] is metrics["beats_base_rate"]
    assert result.artifact["validation_reason"].startswith("validated")
    assert set(metrics["baselines"]) == {"equal-weight sum of signals", "sentiment alone"}
    assert [tier["tier"] for tier in metrics["tiers"]] == ["Red", "Orange", "Yellow", "Green", "Dark-Green"]


def test_holdout_is_the_latest_snapshots_and_embargoed(trained):
    _workspace, result = trained
    artifact = result.artifact
    holdout = [datetime.fromisoformat(value) for value in artifact["holdout_snapshots"]]
    snapshots = [datetime.fromisoformat(value) for value in artifact["snapshots"]]
    assert holdout == snapshots[-len(holdout) :]
    assert set(result.frame["as_of"]) == set(holdout)


def test_artifact_is_json_with_everything_needed(trained):
    workspace, result = trained
    data = json.loads(result.path.read_text())
    for key in (
        "model",
        "tiers",
        "weights",
        "training_start",
        "training_end",
        "metrics",
        "versions",
        "signals_used",
    ):
        assert key in data
    assert data["signals_missing"] == ["usage", "champion", "integrations"]
    assert abs(sum(entry["share"] for entry in data["weights"].values()) - 1.0) < 1e-9
    assert "scikit-learn" in data["versions"]
    assert result.path.parent == workspace.models_dir


def test_artifact_round_trip_gives_same_probabilities(trained):
    _workspace, result = trained
    data = load_artifact(result.path)
    model = ChurnModel.from_dict(data["model"])
    probabilities = model.predict_proba(result.frame)
    assert probabilities.shape == (len(result.frame),)
    assert np.all((probabilities > 0) & (probabilities < 1))


def test_model_is_registered_in_operational_store(trained):
    workspace, result = trained
    engine = operational.open_operational_store(workspace.operational_store_url)
    with engine.connect() as connection:
        rows = connection.execute(sa.select(operational.models)).mappings().all()
    engine.dispose()
    assert [row["model_version"] for row in rows] == [result.artifact["model_version"]]
    assert json.loads(rows[0]["artifact"])["model_version"] == result.artifact["model_version"]


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        '{"format": "pickle"}',
        '{"__reduce__": "os.system"}',
    ],
)
def test_loading_rejects_anything_but_a_model(text: str):
    with pytest.raises(ModelArtifactError):
        parse_artifact(text, "model.json")


def test_too_few_churn_events_rejected(tmp_path: Path):
    folder = write_company(tmp_path, accounts=120, min_churn_events=100)
    workspace = load_workspace(folder)
    with open_stores(workspace) as (store, engine):
        ingest(workspace, store)
        with pytest.raises(TrainingError) as error:
            train(workspace, store, engine)
        message = str(error.value)
        assert "found " in message
        assert "churn events" in message
        assert "--min-churn-events" in message
        found = int(message.split("found ")[1].split(" ")[0])
        assert 0 < found < 100
        result = train(workspace, store, engine, min_churn_events=found)
    assert result.artifact["churn_events"] == found


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("model", "features", 0, "coefficient"), float("nan"), "finite number"),
        (("model", "features", 0, "scale"), 0, "greater than 0"),
        (("model", "features", 0, "source"), "__import__('os')", "unknown feature"),
        (("model", "features"), [], "at least 1 item"),
        (("tiers",), {"red": 5, "banana": -1}, "tiers"),
        (("training_end",), "yesterday", "training_end"),
        (("model", "features", 0, "coefficient"), 1e308, "less than or equal to 1000"),
        (("validated",), "yes", "valid boolean"),
        (("model", "intercept"), None, "model.intercept"),
    ],
)
def test_loading_rejects_damaged_models(trained, path, value, message):
    _workspace, result = trained
    data = json.loads(result.path.read_text())
    target = data
    for key in path[:-1]:
        target = target[key]
    if value is None:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    with pytest.raises(ModelArtifactError, match=message) as error:
        parse_artifact(json.dumps(data), "edited.json")
    assert "retrain with `account-health train`" in str(error.value)


def test_tiny_cohort_trains_when_forced(tmp_path: Path):
    folder = write_company(tmp_path, accounts=40)
    workspace = load_workspace(folder)
    with open_stores(workspace) as (store, engine):
        ingest(workspace, store)
        with pytest.warns(Warning):
            result = train(workspace, store, engine, min_churn_events=1, fit_cutoffs=True)
    artifact = result.artifact
    assert artifact["accounts"] == 40
    assert artifact["regularisation"]["chosen_c"] > 0
    assert all(
        entry["low"] is None or entry["low"] <= entry["high"]
        for entry in artifact["coefficient_intervals"].values()
    )
    assert artifact["validated"] is False or artifact["metrics"]["roc_auc"]["low"] > 0.5
    assert result.report is not None and result.report.markdown.is_file()


def test_loading_rejects_repeated_model_columns(trained):
    _workspace, result = trained
    data = json.loads(result.path.read_text())
    data["model"]["features"].append(data["model"]["features"][0])
    with pytest.raises(ModelArtifactError, match="appears more than once"):
        parse_artifact(json.dumps(data), "edited.json")
