from __future__ import annotations

import warnings
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import ConvergenceWarning

from account_health.config import TierSettings, load_workspace
from account_health.errors import EarlySnapshotWarning, SeparationWarning
from account_health.sources.ingest import ingest
from account_health.training.dataset import label_rows
from account_health.training.evaluate import evaluate
from account_health.training.intervals import coefficient_intervals, flagged_signals
from account_health.training.model import ChurnModel
from account_health.training.regularisation import choose_c, time_folds
from account_health.training.train import _data_caveats, _snapshots_before_usage
from account_health.workspace import open_stores
from company import write_company

FEATURES = ["usage_trend", "support_load", "sentiment_score"]


def _frame(rows: int = 4000, seed: int = 0, snapshots: int = 8) -> pd.DataFrame:
    """Rows whose churn follows a logistic function of three features on very different scales."""
    rng = np.random.default_rng(seed)
    usage = rng.normal(0, 0.004, rows)  # slopes per day: thousandths
    support = rng.gamma(2.0, 40.0, rows)  # weighted tickets: tens to hundreds
    sentiment = rng.uniform(0, 10, rows)
    log_odds = -2.5 - 250 * usage + 0.01 * (support - 80) - 0.3 * (sentiment - 5)
    labels = (rng.random(rows) < 1 / (1 + np.exp(-log_odds))).astype("int64")
    start = datetime(2024, 1, 1)
    return pd.DataFrame(
        {
            "account_id": [f"A{i % (rows // snapshots)}" for i in range(rows)],
            "as_of": [start + timedelta(days=90 * (i // (rows // snapshots))) for i in range(rows)],
            "usage_trend": usage,
            "support_load": support,
            "sentiment_score": sentiment,
            "label": labels,
        }
    )


def test_wildly_different_scales_converge():
    frame = _frame()
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = ChurnModel(FEATURES, C=100.0).fit(frame, frame["label"].to_numpy())
    by_name = dict(zip([spec.name for spec in model.specs_], model.coef_, strict=True))
    assert by_name["usage_trend"] < 0
    assert by_name["support_load"] > 0
    assert by_name["sentiment_score"] < 0


def test_balanced_class_weights_keep_probabilities_calibrated():
    frame = _frame(rows=6000)
    labels = frame["label"].to_numpy()
    corrected = ChurnModel(FEATURES, C=100.0, class_weight="balanced").fit(frame, labels)
    plain = ChurnModel(FEATURES, C=100.0).fit(frame, labels)
    assert labels.mean() < 0.3
    assert corrected.predict_proba(frame).mean() == pytest.approx(labels.mean(), abs=0.02)
    assert plain.predict_proba(frame).mean() == pytest.approx(labels.mean(), abs=0.01)
    inflated = 1 / (1 + np.exp(-(corrected.decision_function(frame) + corrected._weight_shift(labels))))
    assert inflated.mean() > labels.mean() + 0.15


def test_perfect_separation_is_named():
    frame = _frame(rows=800)
    frame["support_load"] = np.where(frame["label"] == 1, 500.0, 10.0) + np.arange(len(frame)) * 1e-6
    with pytest.warns(SeparationWarning, match="support_load separates"):
        caveats = _data_caveats(frame, FEATURES)
    assert any("support_load" in caveat for caveat in caveats)
    model = ChurnModel(FEATURES, C=1.0).fit(frame, frame["label"].to_numpy())
    assert np.isfinite(model.coef_).all()


def test_collinear_features_are_named():
    frame = _frame(rows=800)
    frame["sentiment_score"] = frame["support_load"] * 0.05 + 1.0
    with pytest.warns(SeparationWarning, match="collinear"):
        caveats = _data_caveats(frame, FEATURES)
    assert any("support_load and sentiment_score" in caveat for caveat in caveats)


def test_coefficient_intervals_cover_true_signs_and_flag_noise():
    frame = _frame(rows=6000)
    frame["integrations_active"] = np.random.default_rng(9).normal(size=len(frame))
    features = [*FEATURES, "integrations_active"]
    model = ChurnModel(features, C=100.0).fit(frame, frame["label"].to_numpy())
    intervals, caveats = coefficient_intervals(model, frame)
    assert caveats == []
    assert intervals["usage_trend"]["high"] < 0
    assert intervals["support_load"]["low"] > 0
    assert intervals["integrations_active"]["spans_zero"] is True
    assert flagged_signals(intervals) == ["integrations"]


def test_time_folds_keep_validation_apart():
    frame = _frame(rows=4000)
    pairs = time_folds(frame, folds=3, horizon_days=90)
    assert pairs
    for training, validation in pairs:
        first_validated = frame.loc[validation, "as_of"].min()
        assert (frame.loc[training, "as_of"] + timedelta(days=90) <= first_validated).all()
        assert not set(frame.loc[training, "account_id"]) & set(frame.loc[validation, "account_id"])


def test_choose_c_picks_lowest_loss():
    frame = _frame(rows=4000)
    chosen, table = choose_c(frame, FEATURES, horizon_days=90)
    losses = {entry["C"]: entry["log_loss"] for entry in table}
    assert chosen in losses
    assert losses[chosen] == min(losses.values())


def test_churn_at_snapshot_is_labelled(tmp_path: Path):
    folder = write_company(tmp_path, accounts=30)
    churns = pd.read_csv(folder / "exports" / "churn.csv")
    account, churned_at = churns.iloc[0]["account_id"], pd.Timestamp(churns.iloc[0]["churned_at"])
    workspace = load_workspace(folder)
    with open_stores(workspace) as (store, _engine):
        ingest(workspace, store)
        rows = pd.DataFrame(
            {
                "account_id": [account, account, account],
                "as_of": [
                    churned_at,
                    churned_at + timedelta(microseconds=1),
                    churned_at - timedelta(days=90),
                ],
            }
        )
        labelled = label_rows(store, rows, horizon_days=90)
    assert list(labelled["label"]) == [1, 0, 0]


def test_intervals_match_statsmodels_without_penalty():
    import statsmodels.api as sm

    frame = _frame(rows=6000)
    model = ChurnModel(FEATURES, C=1e6).fit(frame, frame["label"].to_numpy())
    intervals, _caveats = coefficient_intervals(model, frame)
    design = sm.add_constant(model.standardised(frame))
    groups = pd.factorize(frame["account_id"])[0]
    reference = sm.GLM(frame["label"].to_numpy(), design, family=sm.families.Binomial()).fit(
        cov_type="cluster", cov_kwds={"groups": groups}
    )
    for index, name in enumerate(FEATURES, start=1):
        half_width = (intervals[name]["high"] - intervals[name]["low"]) / 2
        assert intervals[name]["value"] == pytest.approx(reference.params[index], abs=2e-3)
        assert half_width == pytest.approx(1.959963984540054 * reference.bse[index], rel=0.02)


def test_near_constant_model_not_validated():
    rng = np.random.default_rng(4)
    labels = (rng.random(4_000) < 0.1).astype("int64")
    frame = pd.DataFrame({"account_id": [f"A{number % 800}" for number in range(4_000)], "label": labels})
    # Probabilities that rank the churners first but stay within a millionth of the base rate.
    probability = 0.1 + 1e-6 * (labels - 0.5)
    metrics = evaluate(frame, probability, 0.1, TierSettings(), {}, samples=200, seed=0)

    assert metrics["roc_auc"]["low"] > 0.5
    assert 0 < metrics["log_loss_improvement"]["low"] < metrics["log_loss_improvement_needed"]
    assert metrics["beats_base_rate"] is False

    useful = evaluate(frame, np.where(labels == 1, 0.3, 0.08), 0.1, TierSettings(), {}, samples=200, seed=0)
    assert useful["beats_base_rate"] is True


def test_snapshots_before_usage_get_caveat(tmp_path: Path):
    (tmp_path / "account-health.toml").write_text(
        '[workspace]\nanalytical_store = "analytical.duckdb"\n\n'
        '[sources.accounts]\ntable = "accounts"\nfiles = ["accounts.csv"]\n\n'
        '[sources.usage]\ntable = "usage_events"\nfiles = ["events.csv"]\n',
        encoding="utf-8",
    )
    (tmp_path / "accounts.csv").write_text("account_id\nA1\n", encoding="utf-8")
    (tmp_path / "events.csv").write_text(
        "event_id,account_id,user_id,occurred_at\nE1,A1,U1,2025-03-01T10:00:00Z\n", encoding="utf-8"
    )
    workspace = load_workspace(tmp_path)
    snapshots = [datetime(2025, 1, 1), datetime(2025, 2, 1), datetime(2025, 4, 1)]

    with open_stores(workspace) as (store, _engine):
        ingest(workspace, store)
        with pytest.warns(EarlySnapshotWarning):
            caveats = _snapshots_before_usage(store, snapshots)
        assert _snapshots_before_usage(store, snapshots[2:]) == []

    assert caveats == [
        "2 of 3 snapshots (2025-01-01 to 2025-02-01) come before the oldest usage row (2025-03-01), so every "
        "account reads as idle in them; shorten [training] window_months or pass a later --end"
    ]
