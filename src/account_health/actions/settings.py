"""The [actions] section: a playbook per tier and the cross-cuts that change an account's action.

Kept apart from `account_health.config` so that the playbook defaults sit next to the code that reads
them; `config.Config` includes `ActionSettings` as its `actions` field.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Expansion = Literal["suppressed", "after-workshop", "allowed", "aggressive"]
TIERS = ("Red", "Orange", "Yellow", "Green", "Dark-Green")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Playbook(_Section):
    """The CSM motion, due date, expansion policy, in-app prompt and chat persona of one tier."""

    # A short key naming the CSM motion; tasks are de-duplicated per account and motion.
    motion: str = Field(min_length=1)
    description: str = ""
    # A fixed owner for this tier's tasks; empty means the account's owner.
    owner: str | None = None
    due_days: int = Field(ge=0, le=3650)
    expansion: Expansion
    prompt_key: str | None = None
    persona_key: str = Field(min_length=1)
    # An account gets no new task for the same motion while an earlier one is this recent.
    cooldown_days: int = Field(ge=0, le=3650)
    # False: the tier gets its motion, expansion policy, prompt and persona, but no task.
    task: bool = True
    # True: completing this tier's task counts as the value workshop that Yellow expansion waits for.
    workshop: bool = False


DEFAULT_PLAYBOOKS: dict[str, dict[str, Any]] = {
    "Red": {
        "motion": "exec-sponsor-outreach",
        "description": "executive-sponsor outreach today; product escalation when a feature gap is the cause",
        "due_days": 0,
        "expansion": "suppressed",
        "prompt_key": "talk-to-your-csm",
        "persona_key": "executive-escalation",
        "cooldown_days": 7,
    },
    "Orange": {
        "motion": "csm-intervention",
        "description": "CSM intervention within 48 hours; schedule a value workshop",
        "due_days": 2,
        "expansion": "suppressed",
        "prompt_key": None,
        "persona_key": "csm-handoff",
        "cooldown_days": 14,
        "workshop": True,
    },
    "Yellow": {
        "motion": "value-review",
        "description": "weekly review; value-realisation audit",
        "due_days": 7,
        "expansion": "after-workshop",
        "prompt_key": None,
        "persona_key": "standard",
        "cooldown_days": 7,
    },
    "Green": {
        "motion": "monthly-check-in",
        "description": "monthly check-in; expansion ask",
        "due_days": 30,
        "expansion": "allowed",
        "prompt_key": "expansion-offer",
        "persona_key": "feature-tips",
        "cooldown_days": 30,
    },
    "Dark-Green": {
        "motion": "advocacy-ask",
        "description": "reference and community asks",
        "due_days": 30,
        "expansion": "aggressive",
        "prompt_key": "refer-a-colleague",
        "persona_key": "review-request",
        "cooldown_days": 90,
    },
}


class Playbooks(_Section):
    """One playbook per tier. A tier's table in the config overrides only the keys it sets."""

    red: Playbook = Field(alias="Red")
    orange: Playbook = Field(alias="Orange")
    yellow: Playbook = Field(alias="Yellow")
    green: Playbook = Field(alias="Green")
    dark_green: Playbook = Field(alias="Dark-Green")

    @model_validator(mode="before")
    @classmethod
    def _merge_defaults(cls, data: Any) -> Any:
        data = dict(data or {})
        merged: dict[str, Any] = {}
        for tier in TIERS:
            field = tier.lower().replace("-", "_")
            override = data.pop(tier, data.pop(field, {}))
            if isinstance(override, Playbook):
                override = override.model_dump()
            merged[tier] = {**DEFAULT_PLAYBOOKS[tier], **(override or {})}
        # Anything left is not a tier name; pydantic's extra="forbid" names it in the error.
        return {**merged, **data}

    def for_tier(self, tier: str) -> Playbook:
        playbook: Playbook = getattr(self, tier.lower().replace("-", "_"))
        return playbook


class RenewalSettings(_Section):
    """Renewal stages from the active contract's end date, and the locked multi-year save plan."""

    # Window-Open: the renewal date is at most this many days after the as-of date.
    window_open_days: int = Field(90, ge=0)
    # Pre-Window: at most this many days (and more than window_open_days). Further out: Renewal-Far.
    pre_window_days: int = Field(180, ge=0)
    # A locked contract of at least this many months is multi-year: its Red accounts get a save plan.
    multi_year_months: int = Field(24, ge=13)
    # The save plan of a locked multi-year contract starts this many months before its renewal date.
    save_plan_months_before: int = Field(12, ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> RenewalSettings:
        if self.pre_window_days < self.window_open_days:
            raise ValueError(
                f"pre_window_days ({self.pre_window_days}) must not be smaller than window_open_days "
                f"({self.window_open_days})"
            )
        return self


class PltvSettings(_Section):
    """Predicted lifetime value: ARR times expected remaining lifetime, or a supplied accounts.pltv."""

    # Expected remaining lifetime is horizon / churn probability, capped here so that a near-zero
    # probability does not give an unbounded value.
    max_lifetime_years: float = Field(10.0, gt=0)
    # Red accounts in these deciles (10 = highest pLTV) get the executive save program.
    executive_save_deciles: list[int] = Field(default_factory=lambda: [10])
    # Red accounts in these deciles (1 = lowest pLTV) get a graceful-exit conversation.
    graceful_exit_deciles: list[int] = Field(default_factory=lambda: [1])
    graceful_exit_due_days: int = Field(14, ge=0)


class ActionSettings(_Section):
    """The [actions] section."""

    playbook: Playbooks = Field(default_factory=lambda: Playbooks.model_validate({}))
    renewal: RenewalSettings = RenewalSettings()
    pltv: PltvSettings = PltvSettings()
    # Open tasks per owner; tasks beyond it are stored with status "overflow", never dropped.
    owner_capacity: int = Field(25, ge=0)
    # Owner of accounts whose accounts.owner is empty.
    default_owner: str = Field("unassigned", min_length=1)
    # Replacement candidates listed for an account whose champions have all left.
    replacement_candidates: int = Field(3, ge=0, le=50)
    # Product activity and email or meeting participation counted for candidates, in days before as-of.
    activity_window_days: int = Field(90, ge=1)
    # A watch-list entry without --until expires this many days after it was added.
    watch_default_days: int = Field(30, ge=1)


__all__ = ["DEFAULT_PLAYBOOKS", "TIERS", "ActionSettings", "Playbook", "Playbooks"]
