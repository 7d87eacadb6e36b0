"""Tier distribution by month against the healthy bands, and the Red + Orange alert."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd

from account_health.config import DistributionBands
from account_health.monitor.history import month_label
from account_health.training.evaluate import TIER_NAMES

# Band keys of DistributionBands, and the tiers each one counts.
BAND_TIERS = {
    "red_orange": ("Red", "Orange"),
    "yellow": ("Yellow",),
    "green": ("Green",),
    "dark_green": ("Dark-Green",),
}
BAND_LABELS = {"red_orange": "Red + Orange", "yellow": "Yellow", "green": "Green", "dark_green": "Dark-Green"}


@dataclass
class TierDistribution:
    """Declared tiers of the scores in one period: a calendar month, or one scoring date.

    A month pools every score of its scoring dates, so an account scored nightly counts once a night.
    """

    period: str
    first_date: datetime
    last_date: datetime
    scoring_dates: int
    scores: int
    counts: dict[str, int]
    shares: dict[str, float]
    band_shares: dict[str, float]
    outside_bands: list[str] = field(default_factory=list)

    @property
    def red_orange_share(self) -> float:
        return self.band_shares["red_orange"]


def tier_distribution(period: str, scores: pd.DataFrame, bands: DistributionBands) -> TierDistribution:
    """Count the declared tiers of `scores` (columns as_of and tier) and check each band."""
    total = len(scores)
    counts = {tier: int((scores["tier"] == tier).sum()) for tier in TIER_NAMES}
    shares = {tier: counts[tier] / total if total else float("nan") for tier in TIER_NAMES}
    band_shares = {band: sum(shares[tier] for tier in tiers) for band, tiers in BAND_TIERS.items()}
    outside = [
        band
        for band, share in band_shares.items()
        if total and not getattr(bands, band)[0] <= share <= getattr(bands, band)[1]
    ]
    dates = pd.to_datetime(scores["as_of"])
    return TierDistribution(
        period=period,
        first_date=dates.min().to_pydatetime(),
        last_date=dates.max().to_pydatetime(),
        scoring_dates=int(dates.nunique()),
        scores=total,
        counts=counts,
        shares=shares,
        band_shares=band_shares,
        outside_bands=outside,
    )


def monthly_distributions(history: pd.DataFrame, bands: DistributionBands) -> list[TierDistribution]:
    """Return one distribution per calendar month of the scores history, oldest first."""
    if history.empty:
        return []
    months = history["as_of"].map(month_label)
    return [tier_distribution(month, rows, bands) for month, rows in history.groupby(months, sort=True)]


def latest_distribution(history: pd.DataFrame, bands: DistributionBands) -> TierDistribution | None:
    """Return the distribution of the latest scoring date, or None without scores."""
    if history.empty:
        return None
    latest = history["as_of"].max()
    return tier_distribution(f"{latest:%Y-%m-%d}", history[history["as_of"] == latest], bands)
