"""The default as-of instant: the start of today in UTC, or the day after the newest ingested data."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from account_health.store.analytical import AnalyticalStore

# The years an as-of instant may fall in, the same range the ingest accepts for timestamps.
FIRST_YEAR, LAST_YEAR = 1900, 2199

# Activity tables and the column that dates their newest row; contracts are left out because their
# end dates lie in the future.
_ACTIVITY_COLUMNS = {
    "usage_events": "occurred_at",
    "usage_daily": "CAST(day AS TIMESTAMP)",
    "sentiment_responses": "responded_at",
    "tickets": "created_at",
    "churn_events": "churned_at",
    "contact_changes": "changed_at",
    "integrations": "connected_at",
}


def newest_data(store: AnalyticalStore) -> datetime | None:
    """Return the newest event instant in the activity tables, or None when they are empty."""
    return _edge_of_data(store, "max", tuple(_ACTIVITY_COLUMNS))


def oldest_data(store: AnalyticalStore, tables: tuple[str, ...] | None = None) -> datetime | None:
    """Return the oldest event instant in the activity tables (or those of `tables`), or None when they are empty."""
    return _edge_of_data(store, "min", tables or tuple(_ACTIVITY_COLUMNS))


def _edge_of_data(store: AnalyticalStore, aggregate: str, tables: tuple[str, ...]) -> datetime | None:
    """Return the `aggregate` ("min" or "max") of the event instants of `tables`."""
    parts = [f'SELECT {aggregate}({_ACTIVITY_COLUMNS[table]}) AS edge FROM "{table}"' for table in tables]
    rows = store.connection.execute(f"SELECT {aggregate}(edge) FROM ({' UNION ALL '.join(parts)})").fetchall()
    value = rows[0][0]
    return value if isinstance(value, datetime) else None


def start_of_day(value: date | datetime) -> datetime:
    return datetime(value.year, value.month, value.day)


def default_as_of(store: AnalyticalStore, today: datetime | None = None) -> datetime:
    """Return the start of today (UTC) or, when the newest data is older, the start of the day after it."""
    today_start = start_of_day(today or datetime.now(UTC))
    newest = newest_data(store)
    if newest is None:
        return today_start
    return min(today_start, start_of_day(newest) + timedelta(days=1))


def days_past_data(store: AnalyticalStore, as_of: datetime) -> int:
    """Return how many days `as_of` lies after the day following the newest ingested data, else 0.

    Past that day, usage looks as if activity stopped and churn that happened is not known yet, so
    the signals, scores and the monitoring report describe data that is missing, not the accounts.
    """
    newest = newest_data(store)
    if newest is None:
        return 0
    return max(0, (start_of_day(as_of) - (start_of_day(newest) + timedelta(days=1))).days)


def parse_as_of(text: str) -> datetime:
    """Parse a command-line as-of value: a date (YYYY-MM-DD) or an ISO instant, returned as naive UTC.

    Raises ValueError for text that is not ISO 8601 and for an instant outside the years 1900 to 2199
    (UTC), where a signal window would reach past the dates Python and the stores represent.
    """
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        # Python names the part that is wrong, such as a day out of range for its month.
        raise ValueError(
            f"invalid as-of date {text!r} ({exc}); write it as YYYY-MM-DD or 2024-03-20T00:00:00Z"
        ) from None
    outside = ValueError(
        f"as-of date {text!r} is outside the accepted years {FIRST_YEAR} to {LAST_YEAR} (UTC); "
        "choose a date in that range"
    )
    if parsed.tzinfo is not None:
        try:
            parsed = parsed.astimezone(UTC).replace(tzinfo=None)
        except OverflowError:
            raise outside from None
    if not FIRST_YEAR <= parsed.year <= LAST_YEAR:
        raise outside
    return parsed
