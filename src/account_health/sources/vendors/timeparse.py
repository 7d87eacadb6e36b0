"""Parse the instants vendor records carry, for ordering records inside an adapter.

The ingest parses and checks every stored timestamp in SQL; adapters only need instants to compare
records, such as a track event with its user's group calls. An instant that cannot be parsed here is
simply not used for such comparisons.
"""

from __future__ import annotations

from datetime import UTC, datetime


def parse_instant(text: str | None) -> datetime | None:
    """Return an aware UTC datetime for ISO 8601 text or epoch seconds or milliseconds, else None."""
    if text is None:
        return None
    value = text.strip()
    if not value:
        return None
    if value[-1] == "Z" and value[10:11] == "T":
        # The common shape of vendor instants, such as 2024-03-01T09:00:00.123Z, which fromisoformat
        # reads as UTC since Python 3.11. Anything it rejects takes the general path below.
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass
    if value.replace(".", "", 1).isdigit():
        number = float(value)
        if number >= 1e11:
            number /= 1000.0
        try:
            return datetime.fromtimestamp(number, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if value[-4:].upper() == " UTC":
        # BigQuery's and Redshift's text form, such as 2025-03-01 10:00:00.000000 UTC.
        value = value[:-4].rstrip() + "+00:00"
    if value.endswith(("+00", "-00")):
        value += ":00"
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)
