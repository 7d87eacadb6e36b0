from __future__ import annotations

from datetime import datetime

import pandas as pd
import pytest

from account_health.config import DistributionBands
from account_health.monitor.distribution import latest_distribution, monthly_distributions
from account_health.monitor.history import latest_date_per_month, month_label


def test_month_label_cuts_at_midnight_utc():
    assert month_label(datetime(2026, 1, 31, 23, 59, 59)) == "2026-01"
    assert month_label(datetime(2026, 2, 1)) == "2026-02"
    assert month_label(pd.Timestamp("2025-12-31T12:00")) == "2025-12"


def test_latest_date_per_month_in_order():
    dates = [datetime(2026, 2, 3), datetime(2026, 1, 31), datetime(2026, 1, 2), datetime(2025, 12, 31)]
    assert latest_date_per_month(dates) == {
        "2025-12": pd.Timestamp("2025-12-31"),
        "2026-01": pd.Timestamp("2026-01-31"),
        "2026-02": pd.Timestamp("2026-02-03"),
    }


def _scores(rows: list[tuple[str, str]]) -> pd.DataFrame:
    return pd.DataFrame(
        [(f"A{number}", pd.Timestamp(date), tier) for number, (date, tier) in enumerate(rows)],
        columns=["account_id", "as_of", "tier"],
    )


def test_monthly_distribution_pools_scoring_dates():
    history = _scores(
        [
            ("2026-01-05", "Red"),
            ("2026-01-05", "Green"),
            ("2026-01-31", "Orange"),
            ("2026-01-31", "Green"),
            ("2026-02-01", "Dark-Green"),
        ]
    )
    january, february = monthly_distributions(history, DistributionBands())
    assert january.period == "2026-01"
    assert january.scoring_dates == 2
    assert january.scores == 4
    assert january.counts == {"Red": 1, "Orange": 1, "Yellow": 0, "Green": 2, "Dark-Green": 0}
    assert january.red_orange_share == pytest.approx(0.5)
    assert january.band_shares["green"] == pytest.approx(0.5)
    assert january.outside_bands == ["red_orange", "yellow", "dark_green"]
    assert february.period == "2026-02"
    assert february.shares["Dark-Green"] == 1.0


def test_distribution_inside_every_band():
    tiers = ["Red"] * 4 + ["Orange"] * 4 + ["Yellow"] * 25 + ["Green"] * 52 + ["Dark-Green"] * 15
    history = _scores([("2026-03-01", tier) for tier in tiers])
    latest = latest_distribution(history, DistributionBands())
    assert latest is not None
    assert latest.period == "2026-03-01"
    assert latest.red_orange_share == pytest.approx(0.08)
    assert latest.outside_bands == []


def test_latest_distribution_without_scores():
    assert latest_distribution(_scores([]), DistributionBands()) is None
    assert monthly_distributions(_scores([]), DistributionBands()) == []
