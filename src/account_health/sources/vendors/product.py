"""Product analytics exports: Amplitude (zipped, gzipped JSON lines with `groups`) and Mixpanel (JSON lines).

Each event becomes one usage_events row. The account is the event's group: Amplitude's `groups`
object (the first of company, account, org, organization; else the first group type in the record) or a Mixpanel
property such as company_id. A group may be a list of group ids (and an Intercom conversation lists its
companies): one id is the account, several are quarantined, and none leaves the row unattributed. Mixpanel raw exports carry no event
id in older projects, so an event without `$insert_id` gets one derived from its content, which makes
a re-exported event count once.
"""

from __future__ import annotations

import hashlib
import json
from typing import ClassVar

from account_health.config import SourceConfig
from account_health.sources.vendors.base import (
    RecordAdapter,
    Reject,
    Skip,
    TableDefaults,
    first_present,
    scalar_text,
)

GROUP_TYPES = ("company", "account", "org", "organization", "account_id", "company_id")
USAGE_COLUMNS = {
    "event_id": "event_id",
    "account_id": "account",
    "user_id": "user",
    "occurred_at": "occurred_at",
    "event": "event",
}


def _first_group(flat: dict[str, str | None], prefix: str) -> str | Reject | None:
    """Return the id of the preferred group type under `prefix`, or why the record has no single one.

    Without a preferred type, the first group type in the record's own order wins. Lists are stored as
    JSON text; `_group_of` reads them. A `type` field beside the groups (Intercom's
    `"type": "company.list"`) names no group.
    """
    names = [name for name in flat if name.startswith(prefix) and name != f"{prefix}type"]
    preferred = [f"{prefix}{kind}" for kind in GROUP_TYPES if f"{prefix}{kind}" in flat]
    return _group_of(flat, preferred + names)


class AmplitudeAdapter(RecordAdapter):
    name = "amplitude"
    tables: ClassVar[dict[str, TableDefaults]] = {"usage_events": TableDefaults(columns=USAGE_COLUMNS)}

    def row(
        self, flat: dict[str, str | None], config: SourceConfig, table: str
    ) -> dict[str, str | None] | Skip | Reject:
        flat["event_id"] = first_present(flat, ("uuid", "$insert_id", "insert_id"))
        account = _first_group(flat, "groups.")
        if isinstance(account, Reject):
            return account
        flat["account"] = account
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
        account_column = config.columns.get("account_id", "account")
        if account_column == "account":
            group_keys = [f"properties.{kind}" for kind in GROUP_TYPES]
        else:
            group_keys = [account_column]
        account = _group_of(flat, group_keys)
        if isinstance(account, Reject):
            return account
        flat[account_column] = account
        # Mixpanel's export writes `time` as epoch seconds (milliseconds in newer exports).
        flat["occurred_at"] = first_present(flat, ("properties.time", "properties.mp_processing_time_ms"))
        insert_id = first_present(flat, ("properties.$insert_id",))
        if insert_id is None:
            content = json.dumps([flat["event"], flat["user"], flat["occurred_at"]], default=str)
            insert_id = "derived-" + hashlib.sha1(content.encode("utf-8")).hexdigest()
        flat["event_id"] = insert_id
        return flat


def _group_of(flat: dict[str, str | None], group_keys: list[str]) -> str | Reject | None:
    """Return the group id of the first of `group_keys` (case-insensitive) that names one, or why not.

    Amplitude and Mixpanel accept a list of group ids as a group's value and count the event in each
    of those groups. Intercom lists a conversation's companies. A row here has one account, so a list
    of one id is that id, a list of several is rejected with its ids, and an empty list names no group,
    like an empty value.
    """
    lowered = {name.lower(): name for name in flat}
    for key in group_keys:
        name = lowered.get(key.lower())
        value = flat.get(name) if name is not None else None
        if value is None or not value.strip():
            continue
        ids = _listed_ids(value)
        if ids is None:
            return value
        if len(ids) == 1:
            return ids[0]
        if ids:
            listed = ", ".join(repr(group) for group in ids)
            return Reject(
                f"{name} lists {len(ids)} groups ({listed}), and a row belongs to one account; "
                "send one group id per record, or map account_id to a field with one id"
            )
    return None


def _listed_ids(value: str) -> list[str] | None:
    """Return the distinct non-empty ids of a JSON list, in order, or None when `value` is not a list.

    An item that is an object (Intercom's company objects) is read as its `id`.
    """
    text = value.strip()
    if not (text.startswith("[") and text.endswith("]")):
        return None
    try:
        items = json.loads(text)
    except ValueError:
        return None
    if not isinstance(items, list):
        return None
    ids: list[str] = []
    for item in items:
        group = scalar_text(item.get("id") if isinstance(item, dict) else item)
        if group is not None and group.strip() and group.strip() not in ids:
            ids.append(group.strip())
    return ids


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
            listed = _first_group(flat, "companies.")
            if isinstance(listed, Reject):
                return listed
            company = listed
        flat["company"] = company
        return flat
