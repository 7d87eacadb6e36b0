from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime

import pytest
import sqlalchemy as sa

from account_health.monitor.history import read_score_history, read_score_signals
from account_health.store import operational
from postgres import fresh_database


@pytest.fixture
def postgresql_engine() -> Iterator[sa.Engine]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    with fresh_database() as url:
        engine = operational.open_operational_store(url)
        try:
            yield engine
        finally:
            engine.dispose()


@pytest.fixture
def sqlite_engine(tmp_path) -> Iterator[sa.Engine]:
    engine = operational.open_operational_store(f"sqlite:///{tmp_path / 'operational.sqlite'}")
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request) -> sa.Engine:
    return request.getfixturevalue(f"{request.param}_engine")


def _score(
    account: str, as_of: datetime, run_id: int, tier: str, model_version: str, usage: float | None
) -> dict:
    return {
        "account_id": account,
        "as_of": as_of,
        "model_version": model_version,
        "probability": 0.5,
        "tier": tier,
        "raw_tier": tier,
        "contributions": "{}",
        "signals": json.dumps({"usage_trend": usage, "support_load": 2.0}),
        "validated": True,
        "run_id": run_id,
    }


def test_history_keeps_latest_run_per_date(engine: sa.Engine):
    first, second = datetime(2026, 1, 1), datetime(2026, 2, 1)
    runs = [operational.start_run(engine, "score") for _ in range(3)]
    operational.replace_scores(engine, first, "m1", [_score("A", first, runs[0], "Red", "m1", 0.1)])
    operational.replace_scores(engine, first, "m2", [_score("A", first, runs[1], "Green", "m2", 0.2)])
    operational.replace_scores(
        engine,
        second,
        "m2",
        [_score("A", second, runs[2], "Yellow", "m2", None), _score("B", second, runs[2], "Red", "m2", 0.3)],
    )

    history = read_score_history(engine, until=first)
    assert history[["account_id", "tier", "model_version"]].values.tolist() == [["A", "Green", "m2"]]
    assert len(read_score_history(engine, until=second)) == 3

    signals = read_score_signals(engine, second, ["usage_trend", "support_load"]).set_index("account_id")
    assert signals.loc["B", "usage_trend"] == 0.3
    assert signals.loc["A", "support_load"] == 2.0
    assert signals["usage_trend"].isna().tolist() == [True, False]
