"""Tier changes: accounts whose declared tier differs from their previous score's, with the two signals behind it."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import pandas as pd

from account_health.scoring.points import log_odds_of, probability_points
from account_health.signals.registry import SIGNALS
from account_health.training.evaluate import TIER_NAMES

_RISK_ORDER = {name: index for index, name in enumerate(TIER_NAMES)}


def tier_changes(
    scores: pd.DataFrame,
    previous: Mapping[str, Mapping[str, Any]],
    as_of: datetime,
    run_id: int | None,
    model_version: str,
    validated: bool,
    signal_settings: Mapping[str, Any],
) -> list[dict[str, Any]]:
    """Return a `tier_changes` row for every account whose declared tier changed.

    `previous` maps account ids to their latest score before `as_of`. An account without one is a
    change from no tier (old_tier None) when any account has an earlier score. On the first scored
    date nothing is a change, since every account would be.

    The top signals are the two whose probability points moved most towards the new tier since the
    previous score: up for a riskier tier, down for a safer one. A new account's move is its points.
    """
    if not previous:
        return []
    rows = []
    for record in scores.to_dict("records"):
        before = previous.get(record["account_id"])
        old_tier = before["tier"] if before is not None else None
        if old_tier == record["tier"]:
            continue
        top = _top_signals(record, before, signal_settings)
        rows.append(
            {
                "account_id": record["account_id"],
                "as_of": as_of,
                "run_id": run_id,
                "model_version": model_version,
                "old_tier": old_tier,
                "new_tier": record["tier"],
                "probability": float(record["probability"]),
                "previous_probability": float(before["probability"]) if before is not None else None,
                "previous_as_of": before["as_of"] if before is not None else None,
                "top_signal_1": top[0]["signal"] if len(top) > 0 else None,
                "top_signal_1_points": top[0]["points_move"] if len(top) > 0 else None,
                "top_signal_2": top[1]["signal"] if len(top) > 1 else None,
                "top_signal_2_points": top[1]["points_move"] if len(top) > 1 else None,
                "top_signals": json.dumps(top),
                "validated": validated,
            }
        )
    return rows


def stored_points(row: Mapping[str, Any]) -> dict[str, float]:
    """Return a stored score's probability points, derived from its log-odds for scores stored without them."""
    if row.get("probability_points"):
        return {key: float(value) for key, value in json.loads(row["probability_points"]).items()}
    contributions = json.loads(row["contributions"])
    return probability_points(log_odds_of(float(row["probability"])), contributions)


def _top_signals(
    record: Mapping[str, Any], before: Mapping[str, Any] | None, settings: Mapping[str, Any]
) -> list[dict[str, Any]]:
    now = {key: float(value) for key, value in record["probability_points"].items()}
    then = stored_points(before) if before is not None else {}
    moves = {signal: value - then.get(signal, 0.0) for signal, value in now.items() if not math.isnan(value)}
    riskier = before is None or _RISK_ORDER[record["tier"]] < _RISK_ORDER[before["tier"]]
    direction = 1.0 if riskier else -1.0
    ordered = sorted(moves, key=lambda signal: (-direction * moves[signal], signal))[:2]
    values = {**settings, **record}
    described = {definition.name: definition.describe(values) for definition in SIGNALS}
    return [
        {
            "signal": signal,
            "points_move": round(moves[signal], 4),
            "points": round(now[signal], 4),
            "text": described.get(signal, signal),
        }
        for signal in ordered
    ]


__all__ = ["stored_points", "tier_changes"]
