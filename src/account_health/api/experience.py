"""The in-app experience of each tier: prompt key, chat persona and expansion policy.

The nightly run's playbook writes the same keys to `account_actions`, per account; these defaults
apply to accounts it has not covered, or to stores without that table.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TierExperience:
    prompt_key: str | None
    persona_key: str
    expansion: str

    @property
    def expansion_allowed(self) -> bool:
        return self.expansion in EXPANSION_ALLOWED


# "after-workshop" allows expansion only after a re-score following a workshop, so not today.
EXPANSION_ALLOWED = frozenset({"allowed", "aggressive"})

TIER_EXPERIENCE = {
    "Red": TierExperience("talk-to-your-csm", "executive-escalation", "suppressed"),
    "Orange": TierExperience(None, "csm-handoff", "suppressed"),
    "Yellow": TierExperience(None, "standard", "after-workshop"),
    "Green": TierExperience("expansion-offer", "feature-tips", "allowed"),
    "Dark-Green": TierExperience("refer-a-colleague", "review-request", "aggressive"),
}
