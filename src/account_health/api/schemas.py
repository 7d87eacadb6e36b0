"""Request and response bodies of the HTTP API, as published in its OpenAPI document.

Missing values are JSON null. A non-finite float that slips through is written as null too
(`ser_json_inf_nan`), so no response ever carries NaN, which JSON does not allow.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Tier = Literal["Red", "Orange", "Yellow", "Green", "Dark-Green"]
# Text without NUL characters. PostgreSQL text columns cannot store NUL, so a request value holding one
# is rejected as invalid before it reaches the operational store.
NO_NUL = r"^[^\x00]*$"
Expansion = Literal["suppressed", "after-workshop", "allowed", "aggressive"]


class Body(BaseModel):
    model_config = ConfigDict(ser_json_inf_nan="null")


class Problem(Body):
    """An error: a short machine-readable code and a message that names the next step."""

    error: str
    message: str


class Reason(Body):
    """One signal's push on the churn odds."""

    signal: str
    text: str = Field(description="The signal's value in words, with its unit and window.")
    log_odds: float | None = Field(description="Contribution to the log-odds of churn.")
    points: float | None = Field(
        description="Percentage points of churn probability against the same account with this signal at its "
        "training average."
    )


class WatchEntry(Body):
    """A watch-list entry, as `account-health watch --list --all` shows it."""

    watch_id: int
    reason: str
    until: datetime = Field(description="The last as-of date the flag applies to.")
    created_at: datetime
    created_by: str | None
    removed_at: datetime | None


JobChangeKind = Literal["left_company", "title_change", "email_bounced"]


class ProvisionalCause(Body):
    """Why a score is provisional: the job change that re-scored the account at once, and from what."""

    job_change_id: int = Field(description="The row of the job_changes table that caused the re-score.")
    contact_id: str
    change: JobChangeKind
    changed_at: datetime | None = Field(description="When the change happened, as sent; null when undated.")
    received_at: datetime
    based_on_as_of: datetime = Field(description="As-of date of the stored score the re-score started from.")
    previous_tier: Tier = Field(description="The declared tier of that stored score.")
    previous_probability: float
    text: str = Field(description="The cause in words, and what replaces the provisional score.")


class Health(Body):
    """An account's current health: its newest score, provisional when the API re-scored it after a job change."""

    account_id: str
    as_of: datetime
    tier: Tier
    raw_tier: Tier | None = Field(description="The tier from the cut-offs alone, before hysteresis.")
    probability: float = Field(description="Churn probability within the horizon, 0 to 1.")
    horizon_days: int | None
    model_version: str
    validated: bool = Field(description="False when the model could not be shown to beat the base rate.")
    top_reasons: list[Reason] = Field(description="Signals with the largest contributions, at most three.")
    watched: bool = Field(
        description="Whether a watch-list entry is in force on the as-of date (not removed, `until` on or "
        "after it), as `account-health explain` shows it."
    )
    watch: list[WatchEntry] = Field(
        description="The entry in force on the as-of date (the one expiring last), or none."
    )
    provisional: bool = Field(
        description="True when this score is a provisional re-score made by the API after a champion left, "
        "not yet replaced by a nightly run's score; `provisional_cause` says why."
    )
    provisional_cause: ProvisionalCause | None = Field(
        description="The job change behind a provisional score; null for a score of a nightly run or "
        "`account-health score`."
    )


class Prompt(Body):
    key: str
    text: str | None


class Experience(Body):
    """The product experience of this account: in-app prompt, chat persona and expansion policy."""

    account_id: str
    as_of: datetime
    tier: Tier
    prompt: Prompt | None
    persona_key: str
    expansion: Expansion
    expansion_allowed: bool
    source: Literal["account_actions", "tier defaults", "provisional tier playbook"] = Field(
        description="account_actions when the nightly run stored this account's actions; provisional tier "
        "playbook while a job change's provisional score is in force (the tier's [actions] playbook); else "
        "the tier's defaults."
    )


class AccountSummary(Body):
    account_id: str
    name: str | None
    owner: str | None
    arr: float | None
    renewal_stage: str | None
    tier: Tier
    probability: float
    model_version: str
    validated: bool
    watched: bool


class AccountList(Body):
    as_of: datetime | None
    total: int
    limit: int
    offset: int
    items: list[AccountSummary]


class HistoryPoint(Body):
    as_of: datetime
    probability: float
    tier: Tier
    raw_tier: Tier | None
    model_version: str
    validated: bool
    model_changed: bool = Field(description="True when this score's model differs from the previous score's.")
    provisional: bool = Field(
        description="True for the provisional re-score after a job change, shown last until a nightly run "
        "replaces it."
    )
    job_change_id: int | None = Field(description="The job change behind a provisional score, else null.")


class History(Body):
    account_id: str
    items: list[HistoryPoint]


class Interval(Body):
    value: float | None
    low: float | None
    high: float | None


class Coefficient(Body):
    column: str
    value: float | None = Field(description="Standardised coefficient, in log-odds per standard deviation.")
    low: float | None
    high: float | None
    spans_zero: bool | None


class Weight(Body):
    signal: str
    share: float | None = Field(description="Share of the total absolute standardised weight, 0 to 1.")
    flagged: bool | None
    coefficients: list[Coefficient]


class TierCalibration(Body):
    tier: Tier
    cutoff: float | None = Field(
        description="Lower bound of churn probability, inclusive; null for Dark-Green."
    )
    rows: int | None
    churned: int | None
    mean_predicted: float | None
    observed: float | None
    observed_low: float | None
    observed_high: float | None
    consistent: bool | None
    band_low: float | None
    band_high: float | None


class Model(Body):
    model_version: str
    created_at: datetime
    training_start: str | None
    training_end: str | None
    horizon_days: int | None
    validated: bool
    validation_reason: str | None
    signals_used: list[str]
    weights: list[Weight]
    cutoffs: dict[str, float]
    metrics: dict[str, Any] = Field(
        description="Hold-out metrics: roc_auc and pr_auc with 95 % intervals, brier, log_loss, "
        "top_decile_lift, calibration_slope and calibration_intercept."
    )
    tiers: list[TierCalibration]
    caveats: list[str]


class TierCount(Body):
    tier: Tier
    accounts: int
    share: float


class Distribution(Body):
    as_of: datetime | None
    total: int
    tiers: list[TierCount]
    red_orange_share: float | None
    healthy_red_orange_share: tuple[float, float]


class DistributionHistory(Body):
    items: list[Distribution]


class WatchRequest(Body):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=1000, pattern=NO_NUL)
    until: date | None = Field(
        None,
        description="The last as-of date (YYYY-MM-DD) the flag applies to, today or later; "
        "[actions] watch_default_days from today when absent, as `account-health watch --until`.",
    )


class WatchCreated(Body):
    watch_id: int
    account_id: str
    reason: str
    until: datetime
    created_by: str


class JobChange(Body):
    """One contact's job change, as a job-change service sends it."""

    model_config = ConfigDict(extra="forbid")

    account_id: str = Field(min_length=1, max_length=255, pattern=NO_NUL)
    contact_id: str = Field(min_length=1, max_length=255, pattern=NO_NUL)
    change: JobChangeKind
    changed_at: datetime | None = Field(
        None,
        description="When the change happened, in the years 1900 to 2199 (UTC; a time without a zone is "
        "UTC). An undated change counts as happening when it is received.",
    )
    note: str | None = Field(None, max_length=1000, pattern=NO_NUL)


class JobChangeAccepted(Body):
    """Outcome of a job change: what was stored and queued, and the provisional score when the account was re-scored."""

    job_change_id: int = Field(description="The row of the job_changes table that keeps this change.")
    duplicate: bool = Field(
        description="True when the same change (account, contact, change and changed_at) was received "
        "before: nothing new is stored or sent, and the response repeats what the first one did."
    )
    account_id: str
    contact_id: str
    change: JobChangeKind
    watch_id: int | None
    watch_reason: str | None
    watch_until: datetime | None
    slack_message_id: int | None = Field(
        description="The outbox row of the Slack message this change queued; null when none was queued "
        "(Slack off, not a departure, or a contact known not to be a champion)."
    )
    slack_message_kind: Literal["tier_change", "job_change"] | None = Field(
        description="tier_change: the re-score moved the account into an immediate tier (Red or Orange by "
        "default); job_change: a champion (or a contact of unknown role) left."
    )
    rescored: bool = Field(
        description="True when a champion in seat left and the account was re-scored at once; the "
        "provisional score is then what GET /v1/accounts/{id}/health returns."
    )
    not_rescored_reason: str | None = Field(
        description="Why the account was not re-scored; null when it was."
    )
    previous_as_of: datetime | None = Field(
        description="As-of date of the stored score the re-score started from."
    )
    previous_tier: Tier | None
    previous_probability: float | None
    provisional_as_of: datetime | None = Field(
        description="As-of date of the provisional score: the first midnight (UTC) after the change was "
        "received, or the day after the stored score's date when that is later."
    )
    provisional_tier: Tier | None
    provisional_raw_tier: Tier | None
    provisional_probability: float | None = Field(description="Churn probability within the horizon, 0 to 1.")
    champions_in_seat: int | None = Field(description="Champions still in seat after the departure.")


class Status(Body):
    status: Literal["ok"]
    latest_as_of: datetime | None
