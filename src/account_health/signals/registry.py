"""The five signals: their features (the model's inputs), details (shown by explain) and wording."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SignalDefinition:
    """One signal: the model features it contributes and how to describe its value to a CSM."""

    name: str
    label: str
    features: tuple[str, ...]
    details: tuple[str, ...]
    source_tables: tuple[str, ...]
    describe: Callable[[Mapping[str, Any]], str]


def number_or_none(value: Any) -> float | None:
    """Return the value as a float, or None when it is missing, NaN or not a number."""
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def _describe_usage(row: Mapping[str, Any]) -> str:
    trend = number_or_none(row.get("usage_trend"))
    start = number_or_none(row.get("usage_start"))
    end = number_or_none(row.get("usage_end"))
    if trend is None or start is None or end is None:
        return "usage trend: no data"
    days = row.get("usage_window_days", 28)
    measure = row.get("usage_measure") or "dau_mau"
    direction = "held"
    if end > start:
        direction = "rose"
    elif end < start:
        direction = "fell"
    if measure == "dau_mau":
        return (
            f"usage trend {trend:+.4f}/day: DAU/MAU {direction} from {start:.2f} to {end:.2f} "
            f"(first and last week averages) over {days} days"
        )
    noun = "daily active users" if measure == "active_users" else "daily event volume"
    return (
        f"usage trend {trend:+.3f}/day: {noun} {direction} from {start:.1f} to {end:.1f} "
        f"(first and last week averages) over {days} days"
    )


def _describe_sentiment(row: Mapping[str, Any]) -> str:
    score = number_or_none(row.get("sentiment_score"))
    count = int(number_or_none(row.get("sentiment_responses")) or 0)
    if score is None:
        return "sentiment: no responses in the lookback window"
    text = f"sentiment {score:.1f}/10 from {count} response{'s' if count != 1 else ''}"
    latest = number_or_none(row.get("nps_latest"))
    change = number_or_none(row.get("nps_change"))
    if latest is not None:
        text += f"; latest NPS {latest:.0f}"
        if change is not None and change != 0:
            text += f" ({'up' if change > 0 else 'down'} {abs(change):.0f} since the previous response)"
    return text


def _describe_support(row: Mapping[str, Any]) -> str:
    load = number_or_none(row.get("support_load"))
    if load is None:
        return "support load: no data"
    tickets = int(number_or_none(row.get("support_tickets")) or 0)
    backlog = int(number_or_none(row.get("support_open_backlog")) or 0)
    days = row.get("support_window_days", 90)
    return (
        f"support load: {load:.1f} severity-weighted tickets in {days} days "
        f"({tickets} ticket{'s' if tickets != 1 else ''}, {backlog} open now)"
    )


def _describe_champion(row: Mapping[str, Any]) -> str:
    in_seat = number_or_none(row.get("champion_in_seat"))
    if in_seat is None:
        return "champion: none tagged"
    since = number_or_none(row.get("days_since_champion_departure"))
    cap = row.get("champion_departure_cap_days", 365)
    left = "" if since is None or since >= cap else f"; the last champion left {since:.0f} days ago"
    if in_seat:
        count = int(number_or_none(row.get("champions_in_seat")) or 0)
        return f"champion in seat ({count} champion{'s' if count != 1 else ''}){left}"
    return f"no champion in seat{left}"


def _describe_integrations(row: Mapping[str, Any]) -> str:
    active = number_or_none(row.get("integrations_active"))
    if active is None:
        return "integrations: no data"
    change = number_or_none(row.get("integrations_change_90d")) or 0.0
    days = row.get("integrations_change_days", 90)
    return f"integrations: {active:.0f} active, {change:+.0f} over {days} days"


SIGNALS: tuple[SignalDefinition, ...] = (
    SignalDefinition(
        "usage",
        "usage trend",
        ("usage_trend",),
        ("usage_level", "usage_start", "usage_end", "usage_measure"),
        ("usage_events", "usage_daily"),
        _describe_usage,
    ),
    SignalDefinition(
        "sentiment",
        "sentiment",
        ("sentiment_score",),
        ("sentiment_responses", "sentiment_excluded", "nps_latest", "nps_change"),
        ("sentiment_responses",),
        _describe_sentiment,
    ),
    SignalDefinition(
        "support",
        "support load",
        ("support_load",),
        ("support_tickets", "support_open_backlog"),
        ("tickets",),
        _describe_support,
    ),
    SignalDefinition(
        "champion",
        "champion in seat",
        ("champion_in_seat", "days_since_champion_departure"),
        ("champions_in_seat",),
        ("contacts",),
        _describe_champion,
    ),
    SignalDefinition(
        "integrations",
        "integration depth",
        ("integrations_active", "integrations_change_90d"),
        (),
        ("integrations",),
        _describe_integrations,
    ),
)

SIGNALS_BY_NAME = {signal.name: signal for signal in SIGNALS}
FEATURES: tuple[str, ...] = tuple(feature for signal in SIGNALS for feature in signal.features)
DETAILS: tuple[str, ...] = tuple(detail for signal in SIGNALS for detail in signal.details)


def signal_of(feature: str) -> SignalDefinition:
    for signal in SIGNALS:
        if feature in signal.features:
            return signal
    raise KeyError(feature)
