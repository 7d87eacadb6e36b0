"""The canonical tables every source adapter produces, and how each one is versioned.

Each table lists its columns with their types and the enumerated values a column may take. Its key
columns identify a row, so a newer row with the same key is a new version of it. Its event-time
column sets the row's `available_at`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Metadata columns added to every stored canonical table.
META_COLUMNS: dict[str, str] = {
    "_available_at": "timestamp",
    "_ingested_at": "timestamp",
    "_load_id": "int",
    "_source": "string",
    "_file": "string",
    "_row_number": "int",
    "_row_hash": "string",
    "_unattributed": "bool",
}


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    required: bool = False
    allowed: tuple[str, ...] = ()


@dataclass(frozen=True)
class TableSpec:
    """A canonical table: columns, key, event time and the column that ties a row to an account."""

    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    event_time: str | None
    account_column: str | None = "account_id"
    # A date column whose whole day must pass before the row is known (daily aggregates).
    event_day: str | None = None
    description: str = ""
    # Key columns the ingest fills itself when the export lacks them, with how.
    derived: dict[str, str] = field(default_factory=dict)

    @property
    def column_names(self) -> list[str]:
        return [column.name for column in self.columns]

    def column(self, name: str) -> Column:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)


def _c(name: str, type_: str, required: bool = False, allowed: tuple[str, ...] = ()) -> Column:
    return Column(name, type_, required, allowed)


PRIORITIES = ("urgent", "high", "normal", "low")
SENTIMENT_KINDS = ("nps", "survey", "call")
CALL_TAGS = ("positive", "neutral", "negative")
CONTACT_CHANGES = ("left_company", "title_change", "email_bounced")

TABLES: dict[str, TableSpec] = {
    spec.name: spec
    for spec in (
        TableSpec(
            "accounts",
            (
                _c("account_id", "string", True),
                _c("name", "string"),
                _c("arr", "float"),
                _c("currency", "string"),
                _c("segment", "string"),
                _c("owner", "string"),
                _c("timezone", "string"),
                _c("crm_id", "string"),
                _c("pltv", "float"),
            ),
            key=("account_id",),
            event_time=None,
            account_column=None,
            description="one row per customer account",
        ),
        TableSpec(
            "contracts",
            (
                _c("contract_id", "string", True),
                _c("account_id", "string", True),
                _c("start_at", "timestamp", True),
                _c("end_at", "timestamp"),
                _c("term_months", "int"),
                _c("arr", "float"),
                _c("auto_renew", "bool"),
                _c("locked", "bool"),
            ),
            key=("contract_id",),
            event_time="start_at",
            description="contracts and subscriptions; end_at is the renewal date",
        ),
        TableSpec(
            "churn_events",
            (
                _c("account_id", "string", True),
                _c("churned_at", "timestamp", True),
                _c("reason", "string"),
            ),
            key=("account_id", "churned_at"),
            event_time="churned_at",
            description="past churn; an account can churn, come back and churn again",
        ),
        TableSpec(
            "usage_events",
            (
                _c("event_id", "string", True),
                _c("account_id", "string", True),
                _c("user_id", "string", True),
                _c("occurred_at", "timestamp", True),
                _c("event", "string"),
            ),
            key=("event_id",),
            event_time="occurred_at",
            description="event-level product usage; an event id counts once",
        ),
        TableSpec(
            "usage_daily",
            (
                _c("account_id", "string", True),
                _c("day", "date", True),
                _c("active_users", "float"),
                _c("event_count", "float"),
            ),
            key=("account_id", "day"),
            event_time=None,
            event_day="day",
            description="product usage already aggregated per account and day",
        ),
        TableSpec(
            "users",
            (
                _c("user_id", "string", True),
                _c("account_id", "string", True),
                _c("email", "string"),
                _c("is_internal", "bool"),
            ),
            key=("user_id",),
            event_time=None,
            description="product users; internal, bot and service users are excluded from active counts",
        ),
        TableSpec(
            "sentiment_responses",
            (
                _c("response_id", "string"),
                _c("account_id", "string", True),
                _c("responded_at", "timestamp", True),
                _c("kind", "string", True, SENTIMENT_KINDS),
                _c("score", "float"),
                _c("tag", "string", False, CALL_TAGS),
                _c("scale", "string"),
                _c("dismissed", "bool"),
            ),
            key=("response_id",),
            event_time="responded_at",
            derived={"response_id": "hash of the row's other columns and email when the export has no id"},
            description="NPS (0-10), surveys on any scale, call sentiment tags",
        ),
        TableSpec(
            "tickets",
            (
                _c("ticket_id", "string", True),
                _c("account_id", "string", True),
                _c("created_at", "timestamp", True),
                _c("updated_at", "timestamp"),
                _c("solved_at", "timestamp"),
                _c("priority", "string", False, PRIORITIES),
                _c("status", "string"),
            ),
            key=("ticket_id",),
            event_time="created_at",
            description="support tickets; each ticket counts once, in its latest version",
        ),
        TableSpec(
            "contacts",
            (
                _c("contact_id", "string", True),
                _c("account_id", "string", True),
                _c("email", "string"),
                _c("title", "string"),
                _c("is_champion", "bool"),
            ),
            key=("contact_id",),
            event_time=None,
            description="CRM contacts; is_champion tags the account's champions",
        ),
        TableSpec(
            "contact_activity",
            (
                _c("contact_id", "string", True),
                _c("day", "date", True),
                _c("emails", "float"),
                _c("meetings", "float"),
                _c("product_events", "float"),
            ),
            key=("contact_id", "day"),
            event_time=None,
            event_day="day",
            account_column=None,
            description="per-contact daily CRM and product activity",
        ),
        TableSpec(
            "contact_changes",
            (
                _c("contact_id", "string", True),
                _c("changed_at", "timestamp", True),
                _c("change", "string", True, CONTACT_CHANGES),
            ),
            key=("contact_id", "changed_at", "change"),
            event_time="changed_at",
            account_column=None,
            description="job-change feed for contacts",
        ),
        TableSpec(
            "integrations",
            (
                _c("account_id", "string", True),
                _c("integration", "string", True),
                _c("connected_at", "timestamp", True),
                _c("disconnected_at", "timestamp"),
            ),
            key=("account_id", "integration", "connected_at"),
            event_time="connected_at",
            description="integrations each account has connected",
        ),
    )
}
