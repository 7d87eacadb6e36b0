from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from account_health.config import load_workspace
from account_health.signals import compute_signals
from account_health.sources.ingest import ingest
from account_health.store.analytical import open_analytical_store
from account_health.synthetic import GeneratedCompany
from account_health.synthetic.truth import FEATURES


def test_truth_features_match_one_shot_ingest(small_company: GeneratedCompany, tmp_path: Path) -> None:
    """The features the churn was drawn from are what the product computes from the final exports."""
    workspace = load_workspace(small_company.out_dir)
    with open_analytical_store(tmp_path / "analytical.duckdb") as store:
        report = ingest(workspace, store)
        assert all(counts.quarantined == 0 for counts in report.sources), report.sources
        computed = compute_signals(workspace, store, list(small_company.snapshots))
    computed["as_of"] = computed["as_of"].dt.strftime("%Y-%m-%dT%H:%M:%S")

    truth = pd.read_csv(small_company.truth_dir / "features.csv")
    joined = truth.merge(computed, on=["account_id", "as_of"], how="left", suffixes=("", "_engine"))
    assert len(joined) == len(truth)
    for feature in FEATURES:
        drawn = joined[feature].to_numpy(dtype=float)
        engine = joined[f"{feature}_engine"].to_numpy(dtype=float)
        differing = ~np.isclose(drawn, engine, rtol=1e-9, atol=1e-12, equal_nan=True)
        assert not differing.any(), (
            f"{feature}: {joined.loc[differing, ['account_id', 'as_of']].head().to_dict('records')}"
        )
