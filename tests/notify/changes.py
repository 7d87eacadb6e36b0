"""Tier changes and notification settings for the notification tests."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from account_health.config import NotifySettings
from account_health.notify import TierChangeNotice
from notify.standins import SlackStandIn

AS_OF = datetime(2026, 12, 4)
TIERS = ("Red", "Orange", "Yellow", "Green", "Dark-Green")

# Retries fast enough for tests: no back-off to speak of.
FAST = {"backoff_seconds": 0.001, "max_backoff_seconds": 0.01, "timeout_seconds": 5.0}


def slack_settings(slack: SlackStandIn, **options: Any) -> NotifySettings:
    values = {"enabled": True, "base_url": slack.url + "/api", **FAST, **options}
    return NotifySettings.model_validate({"slack": values})


def notice(number: int, **changes: Any) -> TierChangeNotice:
    """Return the tier change of account A<number>, into a tier that cycles through the five."""
    values: dict[str, Any] = {
        "run_id": 1,
        "as_of": AS_OF,
        "account_id": f"A{number:05d}",
        "account_name": f"Account {number}",
        "old_tier": "Green",
        "new_tier": TIERS[number % 5] if TIERS[number % 5] != "Green" else "Yellow",
        "probability": 0.5,
        "top_signals": (("usage_trend", 12.5), ("support_load", 4.25)),
        "action": "CSM intervention",
        "due_date": date(2026, 12, 6),
        "owner": "dana@example.com",
        "renewal_stage": "Pre-Window",
        "watch_reason": None,
        "arr": 120000.0,
        "crm_id": f"C{number:05d}",
    }
    values.update(changes)
    return TierChangeNotice(**values)
