from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from account_health.monitor.drift import weight_refit
from account_health.signals.registry import FEATURES
from account_health.training.intervals import coefficient_intervals
from account_health.training.model import ChurnModel

# Log-odds per standard deviation of each feature, in FEATURES order.
TRUE_WEIGHTS = np.array([-0.8, -0.6, 0.5, -0.7, -0.3, -0.4, -0.2])
SNAPSHOT = [datetime(2026, 9, 2)]


def _rows(rng: np.random.Generator, count: int, weights: np.ndarray, prefix: str) -> pd.DataFrame:
    correlation = 0.3 * np.ones((len(FEATURES), len(FEATURES))) + 0.7 * np.eye(len(FEATURES))
    values = rng.multivariate_normal(np.zeros(len(FEATURES)), correlation, size=count)
    probability = 1 / (1 + np.exp(-(-2.9 + values @ weights)))
    frame = pd.DataFrame(values, columns=list(FEATURES))
    frame["label"] = (rng.random(count) < probability).astype("int64")
    frame["account_id"] = [f"{prefix}{number}" for number in range(count)]
    return frame


def _artifact(rng: np.random.Generator) -> dict:
    training = _rows(rng, 1600, TRUE_WEIGHTS, "T")
    model = ChurnModel(list(FEATURES), C=0.1).fit(training, training["label"].to_numpy())
    intervals, _caveats = coefficient_intervals(model, training)
    return {"model": model.to_dict(), "coefficient_intervals": intervals, "rows": len(training)}


def test_refit_on_same_truth_changes_nothing():
    # One seeded draw. Over 100 draws of this set-up, 3 % (600 refit rows) to 6 % (1,500) flagged a
    # column at alpha = 0.05, the family-wise rate the Bonferroni split aims for.
    rng = np.random.default_rng(11)
    refit = weight_refit(_artifact(rng), _rows(rng, 600, TRUE_WEIGHTS, "N"), SNAPSHOT, alpha=0.05)
    assert refit.changed_signals() == [], [(entry.column, entry.z) for entry in refit.columns]
    assert refit.critical_z == pytest.approx(norm.ppf(1 - 0.05 / (2 * len(FEATURES))))
    assert all(entry.z is not None and abs(entry.z) < refit.critical_z for entry in refit.columns)


def test_refit_names_tripled_weight():
    # A tripled weight, not a doubled one: with 1,500 refit rows a doubled support weight went unseen in
    # some seeded draws (z 1.3 against 2.7), while a tripled one was named in 20 draws of 20.
    rng = np.random.default_rng(11)
    tripled = TRUE_WEIGHTS.copy()
    tripled[FEATURES.index("support_load")] *= 3
    refit = weight_refit(_artifact(rng), _rows(rng, 1500, tripled, "N"), SNAPSHOT, alpha=0.05)
    assert refit.changed_signals() == ["support"]
    support = next(entry for entry in refit.columns if entry.column == "support_load")
    assert support.outside_model_interval
    assert support.refit is not None and support.refit > support.model


def test_refit_skips_rare_indicator():
    rng = np.random.default_rng(12)
    rows = _rows(rng, 600, TRUE_WEIGHTS, "N")
    rows.loc[rows.index[:3], "sentiment_score"] = np.nan
    rows.loc[rows.index[:3], "label"] = 0
    model_with_indicator = ChurnModel(list(FEATURES), C=0.1)
    training = _rows(rng, 1600, TRUE_WEIGHTS, "T")
    training.loc[training.index[:200], "sentiment_score"] = np.nan
    model_with_indicator.fit(training, training["label"].to_numpy())
    intervals, _caveats = coefficient_intervals(model_with_indicator, training)
    artifact = {"model": model_with_indicator.to_dict(), "coefficient_intervals": intervals, "rows": 1600}
    refit = weight_refit(artifact, rows, SNAPSHOT, alpha=0.05)
    indicator = next(entry for entry in refit.columns if entry.column == "sentiment_missing")
    assert indicator.refit is None
    assert indicator.note.startswith("too few rows at one of its two values (3, 0 churned)")
    assert not indicator.changed


def test_refit_without_churn_is_noted():
    rng = np.random.default_rng(13)
    rows = _rows(rng, 50, TRUE_WEIGHTS, "N").assign(label=0)
    refit = weight_refit(_artifact(rng), rows, SNAPSHOT, alpha=0.05)
    assert refit.columns == []
    assert refit.note == "no refit: the last closed horizon has no churn"


def test_refit_with_few_events_is_not_tested():
    rng = np.random.default_rng(11)
    doubled = TRUE_WEIGHTS.copy()
    doubled[FEATURES.index("support_load")] *= 2
    rows = _rows(rng, 1500, doubled, "N")
    refit = weight_refit(
        _artifact(np.random.default_rng(11)), rows, SNAPSHOT, 0.05, min_events_per_column=100
    )
    assert refit.changed_signals() == []
    assert refit.note.startswith(f"not tested: {refit.churned} churn events in the last closed horizon for 7")
    assert all(entry.refit is not None for entry in refit.columns)
