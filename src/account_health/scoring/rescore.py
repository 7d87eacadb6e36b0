"""Re-score one account at once after a champion left, from its stored score, without the analytical store.

The API receives job changes while a nightly run may hold the DuckDB analytical store, so it cannot
compute signals. A departure changes only the champion signal, though, and the stored score keeps
every signal value. So the re-score takes the account's latest stored score and replaces the champion
features with what the champion signal computes once the departed champions are out of seat. Then it
applies the model that made the stored score, with its cut-offs and the [tiers] hysteresis.

The result is a provisional score. Its as-of date is the first midnight (UTC) after the change was
received: the earliest as-of date whose snapshot includes the change, because the nightly run makes a
received change available from the instant it arrived. It is also the as-of date of the next
nightly run by default, so that run recomputes the same champion features and supersedes the
provisional score. When the stored score is dated on or after that midnight, the provisional score
is dated the day after the stored score instead, so that it is newer.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from account_health.asof import start_of_day
from account_health.scoring.score import score_rows, score_signals
from account_health.signals.registry import DETAILS, FEATURES, number_or_none

DAY = timedelta(days=1)


@dataclass(frozen=True)
class Departure:
    """A champion's departure: the contact and the instant they left (naive UTC)."""

    contact_id: str
    left_at: datetime


@dataclass(frozen=True)
class Rescore:
    """Outcome of a departure for the account's score: a provisional score row, or the reason there is none."""

    as_of: datetime
    row: dict[str, Any] | None
    reason: str | None
    # The one-row frame `score_signals` returned, with probability points per signal; None with `reason`.
    scored: pd.DataFrame | None = None


def provisional_as_of(received_at: datetime, stored_as_of: datetime) -> datetime:
    """Return the as-of date of a provisional score (see the module docstring); both arguments naive UTC."""
    return max(start_of_day(received_at) + DAY, start_of_day(stored_as_of) + DAY)


def rescore_departure(
    score: Mapping[str, Any],
    artifact: dict[str, Any],
    champions: Sequence[str] | None,
    departure: Departure,
    earlier: Sequence[Departure],
    as_of: datetime,
    margin: float,
    cap_days: int,
) -> Rescore:
    """Re-score the account of a stored score after `departure`, or return why the departure changes nothing.

    Parameters
    ----------
    score
        The account's latest stored score (a row of the scores history).
    artifact
        The model that made `score`.
    champions
        Contact ids of the account's champions in seat on the stored score's as-of date, as the
        nightly run stored them; None when no list is stored.
    departure
        The departure just received.
    earlier
        Departures received before it for the same account. Those of champions in the list that
        left before `as_of` count too, so a second departure re-scores from the first one.
    as_of
        The provisional score's as-of date, from `provisional_as_of`.
    margin
        The [tiers] hysteresis margin.
    cap_days
        `[signals] champion_departure_cap_days`, the cap on days since a champion's departure.

    Returns
    -------
    Rescore
        `row` contains the scores-history columns of the provisional score (without run_id), with the
        declared tier set from the stored score's tier by the same hysteresis as `score`.
    """
    stored_day = f"{score['as_of']:%Y-%m-%d}"
    if champions is None:
        return Rescore(
            as_of,
            None,
            f"no list of the account's champions in seat is stored with its latest score (as of {stored_day}); "
            "the nightly run (`account-health run`) stores one",
        )
    if departure.contact_id not in champions:
        listed = ", ".join(champions[:5]) or "none"
        if len(champions) > 5:
            listed += ", ..."
        return Rescore(
            as_of,
            None,
            f"contact {departure.contact_id} was not a champion in seat on {stored_day} "
            f"(champions in seat: {listed})",
        )
    if departure.left_at >= as_of:
        return Rescore(
            as_of,
            None,
            f"the change date {departure.left_at:%Y-%m-%d} is not before the re-score's as-of date "
            f"{as_of:%Y-%m-%d}; the first nightly run after the change date scores the departure",
        )

    departed = [
        item for item in [*earlier, departure] if item.contact_id in champions and item.left_at < as_of
    ]
    signals = json.loads(score["signals"])
    features = champion_features_after(signals, champions, departed, score["as_of"], as_of, cap_days)
    frame = signal_record_frame(score["account_id"], as_of, {**signals, **features})
    scored = score_signals(frame, artifact, margin, {score["account_id"]: score["tier"]})
    row = score_rows(scored, as_of, artifact, int(score["run_id"]))[0]
    row.pop("run_id")
    return Rescore(as_of, row, None, scored)


def champion_features_after(
    signals: Mapping[str, Any],
    champions: Sequence[str],
    departed: Sequence[Departure],
    stored_as_of: datetime,
    as_of: datetime,
    cap_days: int,
) -> dict[str, float | int]:
    """Return the champion signal's values as of `as_of` once the `departed` champions are out of seat.

    As `signals.champion` computes them: champion_in_seat is 1 while a listed champion remains,
    champions_in_seat counts them, and days_since_champion_departure runs from the latest departure
    of any champion, capped at `cap_days`. An earlier departure is known from the stored score only
    through its days since departure, which grow by the days from `stored_as_of` to `as_of`.
    """
    departed_ids = {item.contact_id for item in departed}
    remaining = [contact for contact in champions if contact not in departed_ids]
    since = float(cap_days)
    if departed:
        since = min(since, (as_of - max(item.left_at for item in departed)) / DAY)
    stored = number_or_none(signals.get("days_since_champion_departure"))
    if stored is not None:
        since = min(since, stored + (as_of - stored_as_of) / DAY)
    return {
        "champion_in_seat": 1.0 if remaining else 0.0,
        "days_since_champion_departure": since,
        "champions_in_seat": len(remaining),
    }


def signal_record_frame(account_id: str, as_of: datetime, signals: Mapping[str, Any]) -> pd.DataFrame:
    """Return a one-row signal frame, as `score.signal_frame` builds, from a stored score's signal values."""
    record: dict[str, Any] = {"account_id": account_id, "as_of": as_of}
    for name in FEATURES:
        value = number_or_none(signals.get(name))
        record[name] = math.nan if value is None else value
    for name in DETAILS:
        record[name] = signals.get(name)
    return pd.DataFrame([record])


__all__ = [
    "Departure",
    "Rescore",
    "champion_features_after",
    "provisional_as_of",
    "rescore_departure",
    "signal_record_frame",
]
