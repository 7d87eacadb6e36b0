from __future__ import annotations

from datetime import datetime

import pandas as pd
import pytest

from account_health.monitor.arr import arr_by_tier, churned_arr_caught

WINDOW = (datetime(2026, 9, 1), datetime(2026, 12, 1))


def _churns() -> pd.DataFrame:
    return pd.DataFrame(
        [
            # Red 30 days before churning: caught, 30 days ahead.
            ("A", "2026-10-01", 100_000.0, "USD"),
            # Orange 80 days and Red 10 days before: caught, counted from the earliest flag (80 days).
            ("B", "2026-11-20", 50_000.0, "USD"),
            # Yellow before churning, Red only after: not caught.
            ("C", "2026-10-15", 30_000.0, "USD"),
            # Red, but 120 days before churning, beyond the 90-day lookback: not caught.
            ("D", "2026-11-29", 20_000.0, "USD"),
            # Never scored.
            ("E", "2026-09-10", 10_000.0, "USD"),
            # Churned before the window: left out.
            ("F", "2026-08-01", 999_000.0, "USD"),
        ],
        columns=["account_id", "churned_at", "arr", "currency"],
    ).assign(churned_at=lambda frame: pd.to_datetime(frame["churned_at"]))


def _scores() -> pd.DataFrame:
    return pd.DataFrame(
        [
            ("A", "2026-09-01", "Red"),
            ("A", "2026-08-01", "Green"),
            ("B", "2026-09-01", "Orange"),
            ("B", "2026-11-10", "Red"),
            ("C", "2026-10-01", "Yellow"),
            ("C", "2026-10-16", "Red"),
            ("D", "2026-08-01", "Red"),
            ("D", "2026-11-01", "Green"),
            ("F", "2026-07-01", "Red"),
        ],
        columns=["account_id", "as_of", "tier"],
    ).assign(as_of=lambda frame: pd.to_datetime(frame["as_of"]))


def test_churned_arr_caught_by_hand():
    (result,) = churned_arr_caught(_churns(), _scores(), *WINDOW, lookback_days=90)
    assert result.currency == "USD"
    assert result.churn_events == 5
    assert result.churned_arr == 210_000.0
    assert result.caught_events == 2
    assert result.caught_arr == 150_000.0
    assert result.caught_share == pytest.approx(150_000 / 210_000)
    assert result.not_scored_events == 1
    assert result.median_days_before == pytest.approx((30 + 80) / 2)


def test_churned_arr_caught_without_churn():
    (result,) = churned_arr_caught(_churns().iloc[:0], _scores(), *WINDOW, lookback_days=90)
    assert result.churn_events == 0
    assert result.caught_share is None
    assert result.median_days_before is None


def test_churned_arr_caught_per_currency():
    churns = _churns()
    churns.loc[churns["account_id"] == "B", "currency"] = "EUR"
    results = {
        entry.currency: entry for entry in churned_arr_caught(churns, _scores(), *WINDOW, lookback_days=90)
    }
    assert results["EUR"].caught_arr == 50_000.0
    assert results["EUR"].median_days_before == pytest.approx(80)
    assert results["USD"].caught_arr == 100_000.0


def test_arr_by_tier_sums_probability_times_arr():
    scores = pd.DataFrame(
        {
            "account_id": ["A", "B", "C"],
            "tier": ["Red", "Red", "Green"],
            "probability": [0.7, 0.5, 0.1],
            "arr": [100.0, 200.0, None],
            "currency": ["USD", "USD", "USD"],
        }
    )
    by_tier = {entry.tier: entry for entry in arr_by_tier(scores)}
    assert by_tier["Red"].accounts == 2
    assert by_tier["Red"].arr == 300.0
    assert by_tier["Red"].arr_at_risk == pytest.approx(170.0)
    assert by_tier["Green"].arr == 0.0
    assert by_tier["Yellow"].accounts == 0
