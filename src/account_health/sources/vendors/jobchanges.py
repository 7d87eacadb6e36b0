"""Job changes: UserGems-style CRM fields, generic job-change files or webhook JSON, and email bounces.

Every record becomes one contact change: left_company, title_change or email_bounced. A record that
names only an email gets its contact id from the contacts table (by email), so contacts load first.
A CRM contact row whose job-change flag is false or empty is not a change and is counted as skipped.
The source's `values.change` mapping applies to a change label as read, before the built-in words.
"""

from __future__ import annotations

from typing import ClassVar

from account_health.config import SourceConfig
from account_health.sources.vendors.base import (
    FALSE_WORDS,
    TRUE_WORDS,
    RecordAdapter,
    Reject,
    Skip,
    TableDefaults,
    first_present,
    is_false_text,
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
# Email events that are neither a bounce nor a job change, so they are skipped and counted by kind.
IGNORED_EVENTS = ("delivered", "open", "click", "processed", "deferred")


class JobChangesAdapter(RecordAdapter):
    name = "job_changes"
    array_keys = ("events", "changes", "data", "records")
    maps_values = ("change",)
    tables: ClassVar[dict[str, TableDefaults]] = {
        "contact_changes": TableDefaults(
            columns={"contact_id": "contact_id", "changed_at": "changed_at", "change": "change"},
            resolve={"contact_id": ("email", "contacts", "email", "contact_id")},
        ),
    }

    def row(
        self, flat: dict[str, str | None], config: SourceConfig, table: str
    ) -> dict[str, str | None] | Skip | Reject:
        flag_column = _column_named(flat, FLAG)
        change: str | Skip | Reject
        # A record with a flag column is a CRM contact row, even when the flag is empty (an unticked
        # checkbox), because such rows often carry a Type column that is not a change.
        if flag_column is not None:
            change = _flag_change(flag_column, flat[flag_column])
            when = first_present(flat, FLAG_DATE) or first_present(flat, WHEN)
        else:
            change = _read_change(first_present(flat, KIND), config.values.get("change", {}))
            when = first_present(flat, WHEN)
        if isinstance(change, (Skip, Reject)):
            return change
        out = dict(flat)
        out["contact_id"] = first_present(flat, CONTACT_ID)
        out["email"] = first_present(flat, EMAIL)
        out["changed_at"] = when
        out["change"] = change
        return out


def _column_named(flat: dict[str, str | None], names: tuple[str, ...]) -> str | None:
    """Return the record's own name of the first of `names` (case-insensitive) it has, even when empty."""
    lowered = {name.lower(): name for name in flat}
    for name in names:
        if name.lower() in lowered:
            return lowered[name.lower()]
    return None


def _flag_change(column: str, flag: str | None) -> str | Skip | Reject:
    """Read a UserGems-style flag: ticked is a departure, unticked or empty is no change."""
    if is_true_text(flag):
        return "left_company"
    if is_false_text(flag):
        return Skip("contact without a job change")
    return Reject(
        f"job-change flag {column} is {flag!r}, which is neither true ({', '.join(TRUE_WORDS)}) "
        f"nor false ({', '.join(FALSE_WORDS)}, or empty); export the flag as true or false"
    )


def _read_change(kind: str | None, mapping: dict[str, str]) -> str | Skip | Reject:
    """Classify a change label, after the source's `values.change` mapping of the label as read."""
    if kind is None:
        return Reject(
            f"the record names no change: expected one of the columns {', '.join(KIND)}, "
            f"or a job-change flag such as {FLAG[0]}"
        )
    label = kind.strip()
    mapped = mapping.get(label, label)
    change = _change(mapped)
    if change is not None:
        return change
    if mapped != label:
        return Reject(
            f"values.change maps change {label!r} to {mapped!r}, which is not one of {', '.join(CHANGES)}; "
            "map it to one of them"
        )
    if label.lower() in IGNORED_EVENTS:
        return Skip(f"{label.lower()} event")
    return Reject(
        f"change {label!r} is not a known job change, title change or bounce; to read it as one, "
        f'add values.change = {{ {_toml_string(label)} = "left_company" }} under this source\'s '
        '[sources.NAME] header, or map it to "title_change" or "email_bounced"'
    )


def _change(kind: str) -> str | None:
    """Return the change a label names; spaces, hyphens and underscores between words count as one."""
    word = _words(kind)
    for change, words in CHANGES.items():
        known = [_words(known) for known in words]
        if word in known or any(word.startswith(prefix) for prefix in known if len(prefix) > 4):
            return change
    return None


def _words(label: str) -> str:
    """Return a label in lower case with its words joined by "_" ("Left Company" is left_company)."""
    return "_".join(label.replace("-", " ").replace("_", " ").lower().split())


def _toml_string(text: str) -> str:
    """Return `text` as a TOML basic string, escaping quotes, backslashes and control characters."""
    escaped = []
    for char in text:
        if char in '"\\':
            escaped.append("\\" + char)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            escaped.append(f"\\u{ord(char):04X}")
        else:
            escaped.append(char)
    return '"' + "".join(escaped) + '"'
