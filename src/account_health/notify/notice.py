"""The input of the notification stage: one account's tier change in one run."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime


@dataclass(frozen=True)
class TierChangeNotice:
    """An account whose declared tier changed, with what a CSM needs to act on it."""

    # None for a provisional re-score made by the API after a job change, which belongs to no run.
    run_id: int | None
    as_of: datetime
    account_id: str
    account_name: str | None
    old_tier: str | None
    new_tier: str
    probability: float
    # The two signals that moved the probability most, with their percentage points of churn probability.
    top_signals: tuple[tuple[str, float], ...]
    action: str | None
    due_date: date | None
    owner: str | None
    renewal_stage: str | None
    watch_reason: str | None
    arr: float | None
    # The account's id in the CRM (the accounts table's crm_id); CRM write-back needs it unless
    # [notify.hubspot] id_property addresses companies by the account id.
    crm_id: str | None = None
    # The horizon the probability refers to ([training] horizon_days), shown beside it when set.
    horizon_days: int | None = None
    # False when the scoring model could not be shown to beat the base rate; messages then say so.
    validated: bool = True
    # Set for a provisional re-score: what caused it and what supersedes it, shown in the message.
    provisional_cause: str | None = None

    @property
    def change_id(self) -> str:
        """Identify this change across runs of the same as-of date: the base of every deduplication key."""
        return f"{self.as_of:%Y-%m-%dT%H:%M:%S}:{self.account_id}:{self.old_tier or '-'}:{self.new_tier}"
