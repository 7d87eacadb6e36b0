"""The default as-of date and the warning for a date past the newest data."""

from __future__ import annotations

from datetime import datetime

import pytest

from account_health.asof import days_past_data, default_as_of, parse_as_of
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


def test_parse_as_of_accepts_the_edge_years():
    assert parse_as_of("1900-01-01") == datetime(1900, 1, 1)
    assert parse_as_of("2199-12-31T23:59:59Z") == datetime(2199, 12, 31, 23, 59, 59)
    assert parse_as_of("1900-01-01T01:00:00+01:00") == datetime(1900, 1, 1)


@pytest.mark.parametrize(
    "text",
    [
        "0001-01-01",
        "1899-12-31T23:59:59",
        "2200-01-01",
        "9999-12-31T23:00:00-05:00",
        "0001-01-01T00:00+01:00",
    ],
)
def test_parse_as_of_rejects_other_years(text):
    with pytest.raises(ValueError, match=r"outside the accepted years 1900 to 2199") as error:
        parse_as_of(text)
    assert repr(text) in str(error.value)
