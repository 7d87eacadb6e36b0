"""Job changes: UserGems-style CRM fields, generic job-change files or webhook JSON, and email bounces.

Every record becomes one contact change: left_company, title_change or email_bounced. A record that
names only an email gets its contact id from the contacts table (by email), so contacts load first.
A CRM contact row whose job-change flag is false is not a change and is counted as skipped.
"""

from __future__ import annotations

from typing import ClassVar

from account_health.config import SourceConfig
from account_health.sources.vendors.base import (
    RecordAdapter,
    Reject,
    Skip,
    TableDefaults,
    first_present,
    is_true_text,
)

CONTACT_ID = ("contact_id", "contact.id", "ContactId", "Contact ID", "Id", "person.id")
EMAIL = ("email", "contact.email", "Email", "person.email", "recipient")
WHEN = ("changed_at", "occurred_at", "timestamp", "created_at", "event_time", "date")
KIND = ("change", "event", "type", "event_type", "change_type")
# UserGems-style CRM fields: a flag that the contact changed jobs, and the date it was detected.
FLAG = ("UserGems__Has_Changed_Job__c", "UserGems__HasChangedJob__c", "Has_Changed_Job__c", "job_changed")
FLAG_DATE = (
    "UserGems__Changed_Job_Date__c",
    "UserGems__Job_Change_Date__c",
    "Job_Change_Date__c",
    "LastModifiedDate",
)
# Words of the vendors' own event names, and the change each stands for.
CHANGES = {
    "left_company": (
        "left",
        "job_change",
        "job change",
        "departed",
        "changed_job",
        "contact.left_company",
        "left_company",
    ),
    "title_change": ("title", "promotion", "new_title", "role_change", "title_change"),
    "email_bounced": ("bounce", "bounced", "hard_bounce", "email_bounced", "dropped"),
}


class JobChangesAdapter(RecordAdapter):
    name = "job_changes"
    array_keys = ("events", "changes", "data", "records")
    tables: ClassVar[dict[str, TableDefaults]] = {
        "contact_changes": TableDefaults(
            columns={"contact_id": "contact_id", "changed_at": "changed_at", "change": "change"},
            resolve={"contact_id": ("email", "contacts", "email", "contact_id")},
        ),
    }

    def row(
        self, flat: dict[str, str | None], config: SourceConfig, table: str
    ) -> dict[str, str | None] | Skip | Reject:
        flag = first_present(flat, FLAG)
        if flag is not None:
            if not is_true_text(flag):
                return Skip("contact without a job change")
            change: str | None = "left_company"
            when = first_present(flat, FLAG_DATE) or first_present(flat, WHEN)
        else:
            change = _change(first_present(flat, KIND))
            when = first_present(flat, WHEN)
            if change is None:
                kind = first_present(flat, KIND)
                if kind is not None and kind.lower() in (
                    "delivered",
                    "open",
                    "click",
                    "processed",
                    "deferred",
                ):
                    return Skip(f"{kind.lower()} event")
                return Reject(
                    f"change {kind!r} is not a job change, title change or bounce; map it in [sources] values"
                )
        out = dict(flat)
        out["contact_id"] = first_present(flat, CONTACT_ID)
        out["email"] = first_present(flat, EMAIL)
        out["changed_at"] = when
        out["change"] = change
        return out


def _change(kind: str | None) -> str | None:
    if kind is None:
        return None
    word = kind.strip().lower()
    for change, words in CHANGES.items():
        if word in words or any(word.startswith(prefix) for prefix in words if len(prefix) > 4):
            return change
    return None
