"""Helpers shared by the API tests: the scoring dates, tier cut-offs and bearer headers."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from account_health.store import operational

SCORING_DATES = (datetime(2025, 10, 1), datetime(2025, 11, 15), datetime(2025, 12, 31))
# The test company's probabilities stay below about 0.35, so lower cut-offs give every tier members.
TIERS = """
[tiers]
red = 0.22
orange = 0.15
yellow = 0.08
green = 0.04
"""


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def latest_scores(engine: sa.Engine) -> list[dict]:
    """Return the latest date's scores, riskiest first."""
    return operational.read_scores(engine)
