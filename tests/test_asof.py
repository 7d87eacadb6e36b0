"""The default as-of date and the warning for a date past the newest data."""

from __future__ import annotations

from datetime import datetime

from account_health.asof import days_past_data, default_as_of
from account_health.store.analytical import open_analytical_store


def test_days_past_data_after_newest_row(tmp_path):
    with open_analytical_store(tmp_path / "analytical.duckdb") as store:
        assert days_past_data(store, datetime(2026, 12, 9)) == 0
        store.connection.execute(
            "INSERT INTO tickets (ticket_id, account_id, created_at) VALUES ('t1', 'a1', TIMESTAMP '2026-11-30 18:00')"
        )
        assert default_as_of(store, today=datetime(2026, 12, 9)) == datetime(2026, 12, 1)
        assert days_past_data(store, datetime(2026, 12, 1)) == 0
        assert days_past_data(store, datetime(2026, 11, 20)) == 0
        assert days_past_data(store, datetime(2026, 12, 9, 13)) == 8
