"""Explanations a CSM can read: each signal's value in words and its push on the churn odds."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine

from account_health.errors import NoDataError
from account_health.signals.registry import SIGNALS
from account_health.store import operational


@dataclass
class Reason:
    signal: str
    text: str
    log_odds: float


@dataclass
class Explanation:
    account_id: str
    as_of: datetime
    model_version: str
    validated: bool
    probability: float
    tier: str
    reasons: list[Reason]


def reasons_for(
    signals: dict[str, Any], contributions: dict[str, float], settings: dict[str, Any]
) -> list[Reason]:
    """Return every signal's description and log-odds contribution, largest first, then the unused signals."""
    values = {**settings, **signals}
    reasons = []
    for signal in SIGNALS:
        contribution = contributions.get(signal.name)
        text = signal.describe(values)
        if contribution is None:
            reasons.append(Reason(signal.name, f"{text} (not used by the model)", math.nan))
        else:
            reasons.append(Reason(signal.name, text, float(contribution)))
    return sorted(
        reasons, key=lambda reason: -abs(reason.log_odds) if not math.isnan(reason.log_odds) else 1.0
    )


def explain(engine: Engine, account_id: str, as_of: datetime | None = None) -> Explanation:
    """Explain an account's stored score (the latest as-of date unless one is given)."""
    rows = operational.read_scores(engine, as_of=as_of, account_id=account_id)
    if not rows:
        when = f" on {as_of:%Y-%m-%d}" if as_of else ""
        raise NoDataError(
            f"no score for account {account_id!r}{when}; check the id, or run `account-health score` first"
        )
    row = rows[0]
    artifact_row = operational.latest_model_row(engine)
    settings: dict[str, Any] = {}
    if artifact_row is not None:
        settings = json.loads(artifact_row["artifact"]).get("signal_settings", {})
    return Explanation(
        account_id=row["account_id"],
        as_of=row["as_of"],
        model_version=row["model_version"],
        validated=bool(row["validated"]),
        probability=float(row["probability"]),
        tier=row["tier"],
        reasons=reasons_for(json.loads(row["signals"]), json.loads(row["contributions"]), settings),
    )
