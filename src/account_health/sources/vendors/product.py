"""Product analytics exports: Amplitude (zipped, gzipped JSON lines with `groups`) and Mixpanel (JSON lines).

Each event becomes one usage_events row. The account is the event's group: Amplitude's `groups`
object (the first of company, account, org, organization; else its first group type) or a Mixpanel
property such as company_id. Mixpanel raw exports carry no event id in older projects, so an event
without `$insert_id` gets one derived from its content, which makes a re-exported event count once.
"""

from __future__ import annotations

import hashlib
import json
from typing import ClassVar

from account_health.config import SourceConfig
from account_health.sources.vendors.base import RecordAdapter, Reject, Skip, TableDefaults, first_present

GROUP_TYPES = ("company", "account", "org", "organization", "account_id", "company_id")
USAGE_COLUMNS = {
    "event_id": "event_id",
    "account_id": "account",
    "user_id": "user",
    "occurred_at": "occurred_at",
    "event": "event",
}


def _first_group(flat: dict[str, str | None], prefix: str) -> str | None:
    """Return the first id of the preferred group type under `prefix` (lists are stored as JSON text)."""
    names = [name for name in flat if name.startswith(prefix)]
    preferred = [f"{prefix}{kind}" for kind in GROUP_TYPES if f"{prefix}{kind}" in flat]
    for name in preferred + sorted(names):
        value = flat.get(name)
        if value is None:
            continue
        if value.startswith("["):
            try:
                items = json.loads(value)
            except ValueError:
                continue
            if items:
                return str(items[0])
            continue
        return value
    return None


class AmplitudeAdapter(RecordAdapter):
    name = "amplitude"
    tables: ClassVar[dict[str, TableDefaults]] = {"usage_events": TableDefaults(columns=USAGE_COLUMNS)}

    def row(
        self, flat: dict[str, str | None], config: SourceConfig, table: str
    ) -> dict[str, str | None] | Skip | Reject:
        flat["event_id"] = first_present(flat, ("uuid", "$insert_id", "insert_id"))
        flat["account"] = _first_group(flat, "groups.")
        flat["user"] = first_present(flat, ("user_id", "device_id", "amplitude_id"))
        flat["occurred_at"] = first_present(flat, ("event_time", "client_event_time", "server_upload_time"))
        flat["event"] = flat.get("event_type")
        return flat


class MixpanelAdapter(RecordAdapter):
    name = "mixpanel"
    tables: ClassVar[dict[str, TableDefaults]] = {"usage_events": TableDefaults(columns=USAGE_COLUMNS)}

    def row(
        self, flat: dict[str, str | None], config: SourceConfig, table: str
    ) -> dict[str, str | None] | Skip | Reject:
        flat["event"] = flat.get("event")
        flat["user"] = first_present(
            flat, ("properties.distinct_id", "properties.$user_id", "properties.$device_id")
        )
        flat["account"] = first_present(flat, tuple(f"properties.{kind}" for kind in GROUP_TYPES))
        # Mixpanel's export writes `time` as epoch seconds (milliseconds in newer exports).
        flat["occurred_at"] = first_present(flat, ("properties.time", "properties.mp_processing_time_ms"))
        insert_id = first_present(flat, ("properties.$insert_id",))
        if insert_id is None:
            content = json.dumps([flat["event"], flat["user"], flat["occurred_at"]], default=str)
            insert_id = "derived-" + hashlib.sha1(content.encode("utf-8")).hexdigest()
        flat["event_id"] = insert_id
        return flat


class IntercomAdapter(RecordAdapter):
    """Intercom conversations (list responses or exports) as support tickets."""

    name = "intercom"
    array_keys = ("conversations", "data")
    tables: ClassVar[dict[str, TableDefaults]] = {
        "tickets": TableDefaults(
            columns={
                "ticket_id": "id",
                "account_id": "company",
                "created_at": "created_at",
                "updated_at": "updated_at",
                "solved_at": "statistics.last_close_at",
                "priority": "priority",
                "status": "state",
            },
            values={"priority": {"priority": "high", "not_priority": "normal"}},
            duplicate_keys="latest",
            latest_by="updated_at",
            identity_email="source.author.email",
        ),
    }

    def row(
        self, flat: dict[str, str | None], config: SourceConfig, table: str
    ) -> dict[str, str | None] | Skip | Reject:
        company = first_present(flat, ("company.id", "company_id", "company.company_id"))
        if company is None:
            company = _first_group(flat, "companies.")
        flat["company"] = company
        return flat
