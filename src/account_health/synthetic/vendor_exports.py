"""Write the generated company as the vendors' own exports, and the sources that read them.

The canonical writer in `exports` lays every table out in the product's own columns. This one writes
what a company's tools would export. Segment group, identify and track calls cover users and usage,
Zendesk incremental export pages cover tickets, and Salesforce Bulk API CSV covers accounts, contacts
and contracts. Sentiment comes as an NPS survey CSV and call-sentiment JSON lines, job changes as a
feed, and integrations as the product's own table. The sources use the matching `format = "..."`
adapters, so the same rows reach the canonical tables through the real adapters.

Ids stay the generator's (acct-00001, t-000001), so a vendor id is already a known account id and no
identity map is needed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa

from account_health.synthetic import exports

# Tickets per Zendesk export page.
ZENDESK_PAGE_ITEMS = 1000
# Instants of each user's group and identify calls: before any activity, so every event finds its group.
# The identify call comes second, so the users source keeps its row (the latest) with the email.
SEGMENT_CALLS_AT = "2000-01-01T00:00:00Z"
SEGMENT_IDENTIFY_AT = "2000-01-01T00:00:01Z"


def write_vendor_tables(
    folder: Path, frames: dict[str, Any], segment_usage: bool = True
) -> dict[str, dict[str, Any]]:
    """Write the vendor-format sources under `folder` from the canonical frames; return their config entries.

    `frames` holds the canonical frames by source name (as `exports` builds them). Sources without a
    vendor format here are absent from the result, and the caller writes them as canonical files.
    """
    sources: dict[str, dict[str, Any]] = {}
    sources.update(_salesforce(folder, frames["accounts"], frames["contacts"], frames["contracts"]))
    sources["users"] = _segment_users(folder, frames["users"])
    if segment_usage:
        sources["usage_events"] = _segment_tracks(folder, frames["usage_events"])
    sources["tickets"] = _zendesk_tickets(folder, frames["tickets"])
    sources.update(_sentiment(folder, frames["sentiment_responses"]))
    sources["contact_changes"] = _job_changes(folder, frames["contact_changes"])
    sources["integrations"] = _integrations(folder, frames["integrations"])
    return sources


def _salesforce(
    folder: Path, accounts: pd.DataFrame, contacts: pd.DataFrame, contracts: pd.DataFrame
) -> dict[str, dict[str, Any]]:
    """Accounts, contacts and contracts as Bulk API query results: CSV with API field names."""
    out = folder / "exports/salesforce"
    account_rows = pd.DataFrame(
        {
            "Id": accounts["account_id"].to_numpy(),
            "Name": accounts["name"].to_numpy(),
            "AnnualRevenue": accounts["arr"].to_numpy(),
            "CurrencyIsoCode": accounts["currency"].to_numpy(),
            "Segment__c": accounts["segment"].to_numpy(),
            "Owner.Name": accounts["owner"].to_numpy(),
            "Timezone__c": accounts["timezone"].to_numpy(),
        }
    )
    exports.write_table(account_rows, out / "Account.csv")
    contact_rows = pd.DataFrame(
        {
            "Id": contacts["contact_id"].to_numpy(),
            "AccountId": contacts["account_id"].to_numpy(),
            "Email": contacts["email"].to_numpy(),
            "Title": contacts["title"].to_numpy(),
            "Champion__c": contacts["is_champion"].to_numpy(),
        }
    )
    exports.write_table(contact_rows, out / "Contact.csv")
    contract_rows = pd.DataFrame(
        {
            "Id": contracts["contract_id"].to_numpy(),
            "AccountId": contracts["account_id"].to_numpy(),
            "StartDate": contracts["start_at"].to_numpy(),
            "EndDate": contracts["end_at"].to_numpy(),
            "ContractTerm": contracts["term_months"].to_numpy(),
            "ARR__c": contracts["arr"].to_numpy(),
            "Auto_Renew__c": contracts["auto_renew"].to_numpy(),
            "Locked__c": contracts["locked"].to_numpy(),
        }
    )
    exports.write_table(contract_rows, out / "Contract.csv")
    return {
        "accounts": {
            "table": "accounts",
            "format": "salesforce",
            "files": ["exports/salesforce/Account.csv"],
            "columns": {
                "owner": "Owner.Name",
                "arr": "AnnualRevenue",
                "currency": "CurrencyIsoCode",
                "segment": "Segment__c",
                "timezone": "Timezone__c",
            },
        },
        "contacts": {
            "table": "contacts",
            "format": "salesforce",
            "files": ["exports/salesforce/Contact.csv"],
            "champion": {"field": "Champion__c"},
        },
        "contracts": {
            "table": "contracts",
            "format": "salesforce",
            "files": ["exports/salesforce/Contract.csv"],
            "columns": {"arr": "ARR__c", "auto_renew": "Auto_Renew__c", "locked": "Locked__c"},
        },
    }


def _segment_users(folder: Path, users: pd.DataFrame) -> dict[str, Any]:
    """One group call then one identify call per user, as Segment JSON lines."""
    path = folder / "exports/segment/users.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="\n") as handle:
        for user_id, account_id, email, internal in users[
            ["user_id", "account_id", "email", "is_internal"]
        ].itertuples(index=False):
            group = {
                "type": "group",
                "messageId": f"grp-{user_id}",
                "userId": user_id,
                "groupId": account_id,
                "timestamp": SEGMENT_CALLS_AT,
            }
            identify = {
                "type": "identify",
                "messageId": f"idn-{user_id}",
                "userId": user_id,
                "traits": {"email": _text(email), "is_internal": internal == "true"},
                "timestamp": SEGMENT_IDENTIFY_AT,
            }
            handle.write(json.dumps(group) + "\n")
            handle.write(json.dumps(identify) + "\n")
    return {
        "table": "users",
        "format": "segment",
        "files": ["exports/segment/users.jsonl"],
        "columns": {"is_internal": "traits.is_internal"},
    }


def _segment_tracks(folder: Path, usage: pa.Table) -> dict[str, Any]:
    """Track calls as Segment JSON lines; the account comes from the users' group calls."""
    path = folder / "exports/segment/tracks.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    # DuckDB writes the millions of lines in one statement instead of a json.dumps call per row. One
    # thread keeps the rows in the table's order.
    connection = duckdb.connect()
    try:
        connection.execute("SET threads = 1")
        connection.register("usage", usage)
        target = str(path).replace("'", "''")
        connection.execute(
            f"""COPY (SELECT 'track' AS type, event_id AS messageId, user_id AS userId, event,
                             occurred_at AS timestamp, synced_at AS receivedAt FROM usage)
                TO '{target}' (FORMAT json)"""
        )
    finally:
        connection.close()
    return {
        "table": "usage_events",
        "format": "segment",
        # The group calls in users.jsonl place each user's events in an account.
        "files": ["exports/segment/tracks.jsonl", "exports/segment/users.jsonl"],
        "loaded_at": "received_at",
    }


def _zendesk_tickets(folder: Path, tickets: pd.DataFrame) -> dict[str, Any]:
    """Cursor-based incremental export pages of tickets, with their solve times as sideloaded metric sets."""
    out = folder / "exports/zendesk"
    out.mkdir(parents=True, exist_ok=True)
    records = [{key: _text(value) for key, value in row.items()} for row in tickets.to_dict("records")]
    pages = [
        records[start : start + ZENDESK_PAGE_ITEMS] for start in range(0, len(records), ZENDESK_PAGE_ITEMS)
    ]
    pages = pages or [[]]
    for number, page in enumerate(pages, start=1):
        last = number == len(pages)
        cursor = f"cursor-{number}"
        document = {
            "tickets": [
                {
                    "id": row["ticket_id"],
                    "organization_id": row["account_id"],
                    "created_at": row["created_at"],
                    "updated_at": row["updated_at"],
                    "priority": row["priority"],
                    "status": row["status"],
                }
                for row in page
            ],
            "metric_sets": [{"ticket_id": row["ticket_id"], "solved_at": row["solved_at"]} for row in page],
            "after_cursor": None if last else cursor,
            "after_url": None
            if last
            else f"https://example.zendesk.com/api/v2/incremental/tickets/cursor.json?cursor={cursor}",
            "before_cursor": f"cursor-{number - 1}" if number > 1 else None,
            "end_of_stream": last,
        }
        (out / f"tickets-page-{number}.json").write_text(json.dumps(document) + "\n", encoding="utf-8")
    return {
        "table": "tickets",
        "format": "zendesk",
        "files": ["exports/zendesk/tickets-page-*.json"],
    }


def _sentiment(folder: Path, responses: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """NPS answers as a survey tool's CSV, call sentiment as a conversation tool's JSON lines."""
    nps = responses[responses["kind"] == "nps"]
    survey = pd.DataFrame(
        {
            "Response ID": nps["response_id"].to_numpy(),
            "Account ID": nps["account_id"].to_numpy(),
            "Date": nps["responded_at"].to_numpy(),
            "How likely are you to recommend us?": nps["score"].to_numpy(),
            "Status": ["dismissed" if flag == "true" else "answered" for flag in nps["dismissed"]],
        }
    )
    exports.write_table(survey, folder / "exports/nps/responses.csv")
    calls = responses[responses["kind"] == "call"]
    path = folder / "exports/calls/calls.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="\n") as handle:
        for call_id, account_id, started_at, tag in calls[
            ["response_id", "account_id", "responded_at", "tag"]
        ].itertuples(index=False):
            record = {
                "call_id": call_id,
                "account_id": account_id,
                "started_at": _text(started_at),
                "sentiment": _text(tag),
            }
            handle.write(json.dumps(record) + "\n")
    return {
        "nps": {
            "table": "sentiment_responses",
            "format": "nps",
            "files": ["exports/nps/responses.csv"],
            "columns": {
                "response_id": "Response ID",
                "account_id": "Account ID",
                "responded_at": "Date",
                "score": "How likely are you to recommend us?",
            },
        },
        "calls": {
            "table": "sentiment_responses",
            "format": "calls",
            "files": ["exports/calls/calls.jsonl"],
        },
    }


def _job_changes(folder: Path, changes: pd.DataFrame) -> dict[str, Any]:
    """A job-change feed: one event per change, naming the contact and the kind of change."""
    feed = pd.DataFrame(
        {
            "contact_id": changes["contact_id"].to_numpy(),
            "event": changes["change"].to_numpy(),
            "occurred_at": changes["changed_at"].to_numpy(),
        }
    )
    exports.write_table(feed, folder / "exports/job_changes/changes.csv")
    return {
        "table": "contact_changes",
        "format": "job_changes",
        "files": ["exports/job_changes/changes.csv"],
    }


def _integrations(folder: Path, integrations: pd.DataFrame) -> dict[str, Any]:
    """The product's own integrations table, dumped as CSV under its own column names."""
    table = pd.DataFrame(
        {
            "tenant": integrations["account_id"].to_numpy(),
            "provider": integrations["integration"].to_numpy(),
            "created_at": integrations["connected_at"].to_numpy(),
            "revoked_at": integrations["disconnected_at"].to_numpy(),
        }
    )
    exports.write_table(table, folder / "exports/app/account_integrations.csv")
    return {
        "table": "integrations",
        "files": ["exports/app/account_integrations.csv"],
        "columns": {
            "account_id": "tenant",
            "integration": "provider",
            "connected_at": "created_at",
            "disconnected_at": "revoked_at",
        },
    }


def _text(value: Any) -> Any:
    """The value for JSON, with a missing cell (None, NaN) as null."""
    return None if value is None or pd.isna(value) else value
