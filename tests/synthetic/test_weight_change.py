from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.special import logit

from account_health.synthetic import GeneratedCompany, WeightChange, generate_company
from account_health.synthetic.truth import TruthModel

from .conftest import SMALL_ACCOUNTS, SMALL_MONTHS, SMALL_SEED


def test_scaled_truth_changes_one_coefficient():
    truth = TruthModel(-2.0, {"usage_trend": -1.0, "support_load": 0.5}, {}, {})
    doubled = truth.scaled("support_load", 2.0)
    assert doubled.coefficients == {"usage_trend": -1.0, "support_load": 1.0}
    assert doubled.intercept == -2.0
    assert truth.coefficients["support_load"] == 0.5


def test_weight_change_rejects_bad_arguments():
    with pytest.raises(ValueError, match="unknown feature 'nps'"):
        WeightChange("nps")
    with pytest.raises(ValueError, match=r"from_snapshot must be in 0\.\.2, got 3"):
        WeightChange("usage_trend", from_snapshot=3).first_snapshot(3)
    assert WeightChange("usage_trend").first_snapshot(6) == 3


def test_weight_change_keeps_earlier_snapshots(small_company: GeneratedCompany, tmp_path: Path) -> None:
    changed = generate_company(
        tmp_path / "changed",
        accounts=SMALL_ACCOUNTS,
        months=SMALL_MONTHS,
        seed=SMALL_SEED,
        weight_change=WeightChange("support_load", factor=3.0, from_snapshot=1),
    )
    truth = json.loads((changed.truth_dir / "truth.json").read_text())
    plain = json.loads((small_company.truth_dir / "truth.json").read_text())
    assert truth["weight_change"] == {"feature": "support_load", "factor": 3.0, "from_snapshot": 1}
    assert "weight_change" not in plain

    labels = pd.read_csv(changed.truth_dir / "labels.csv")
    plain_labels = pd.read_csv(small_company.truth_dir / "labels.csv")
    first = labels["as_of"].min()
    pd.testing.assert_frame_equal(
        labels[labels["as_of"] == first].reset_index(drop=True),
        plain_labels[plain_labels["as_of"] == first].reset_index(drop=True),
    )
    # The second snapshot has the same accounts and features, so only support_load's coefficient differs.
    second = sorted(labels["as_of"].unique())[1]
    changed_rows = labels[labels["as_of"] == second].reset_index(drop=True)
    plain_rows = plain_labels[plain_labels["as_of"] == second].reset_index(drop=True)
    assert changed_rows["account_id"].tolist() == plain_rows["account_id"].tolist()
    features = pd.read_csv(changed.truth_dir / "features.csv")
    support = features.loc[features["as_of"] == second, "support_load"].fillna(0.0).to_numpy()
    gap = logit(changed_rows["true_probability"].to_numpy()) - logit(
        plain_rows["true_probability"].to_numpy()
    )
    expected = 2.0 * truth["coefficients"]["support_load"] * support
    assert np.abs(gap - expected).max() < 1e-6, f"log-odds gaps {gap[:5]} differ from {expected[:5]}"
    assert np.abs(gap).max() > 0.1
