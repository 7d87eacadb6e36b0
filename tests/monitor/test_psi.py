from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from account_health.monitor.drift import PSI_FLOOR, feature_drift, population_stability_index, refit_snapshots


def test_psi_of_same_sample_is_zero():
    values = np.random.default_rng(0).normal(size=2000)
    assert population_stability_index(values, values) == pytest.approx(0.0, abs=1e-12)


def test_psi_matches_hand_computation():
    # Edges at the training quartiles: 1.5, 2.5 and 3.5 for the values 1, 2, 3, 4.
    expected = np.array([1.0, 2.0, 3.0, 4.0])
    actual = np.array([1.0, 1.0, 1.0, 4.0])
    shares_expected = np.array([0.25, 0.25, 0.25, 0.25])
    shares_actual = np.array([0.75, PSI_FLOOR, PSI_FLOOR, 0.25])
    by_hand = float(np.sum((shares_actual - shares_expected) * np.log(shares_actual / shares_expected)))
    assert population_stability_index(expected, actual, bins=4) == pytest.approx(by_hand)


def test_psi_grows_with_shift():
    rng = np.random.default_rng(1)
    training = rng.normal(size=5000)
    small = population_stability_index(training, rng.normal(0.1, 1.0, size=5000))
    large = population_stability_index(training, rng.normal(1.0, 1.0, size=5000))
    assert small < 0.1
    assert large > 0.25


def test_psi_counts_missing_as_bin():
    training = np.array([0.0, 1.0] * 50)
    current = np.array([0.0, 1.0] * 25 + [np.nan] * 50)
    psi = population_stability_index(training, current, bins=10)
    # Known values halve (0.5 -> 0.25 each), the missing bin grows from the floor to 0.5.
    by_hand = 2 * (0.25 - 0.5) * np.log(0.25 / 0.5) + (0.5 - PSI_FLOOR) * np.log(0.5 / PSI_FLOOR)
    assert psi == pytest.approx(by_hand)


def test_psi_of_binary_feature_merges_edges():
    training = np.array([0.0] * 70 + [1.0] * 30)
    current = np.array([0.0] * 30 + [1.0] * 70)
    by_hand = (0.3 - 0.7) * np.log(0.3 / 0.7) + (0.7 - 0.3) * np.log(0.7 / 0.3)
    assert population_stability_index(training, current) == pytest.approx(by_hand)


def test_psi_of_empty_sample_is_nan():
    assert np.isnan(population_stability_index(np.array([]), np.array([1.0])))


def test_feature_drift_levels_follow_thresholds():
    rng = np.random.default_rng(2)
    training = pd.DataFrame(
        {"a": rng.normal(size=3000), "b": rng.normal(size=3000), "c": rng.normal(size=3000)}
    )
    current = pd.DataFrame(
        {
            "a": rng.normal(size=3000),
            "b": rng.normal(0.5, 1.0, size=3000),
            "c": rng.normal(2.0, 1.0, size=3000),
        }
    )
    drift = feature_drift(training, current, {"a": "x", "b": "y", "c": "z"}, bins=10, warning=0.1, alert=0.25)
    levels = {entry.feature: entry.level for entry in drift}
    assert levels == {"a": "stable", "b": "moved", "c": "drifted"}, [
        (entry.feature, entry.psi) for entry in drift
    ]


def test_refit_snapshots_cover_last_closed_horizon():
    from datetime import datetime

    assert refit_snapshots(datetime(2026, 12, 1), 90, 90) == [datetime(2026, 9, 2)]
    assert refit_snapshots(datetime(2026, 12, 1), 90, 30) == [
        datetime(2026, 7, 4),
        datetime(2026, 8, 3),
        datetime(2026, 9, 2),
    ]
