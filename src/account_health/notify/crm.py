"""Writing health fields to the CRM: HubSpot companies and Salesforce accounts, in batches.

A CRM update sets fields to values, so sending one again after a lost response leaves the same record;
neither CRM needs to be asked whether an earlier request arrived.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

from account_health.config import HubSpotSettings, SalesforceSettings
from account_health.notify.rows import OutboxRow
from account_health.notify.transport import Counters, Retry, SendResult, exchange

log = logging.getLogger(__name__)


class HubSpotCompanies:
    """POST /crm/v3/objects/companies/batch/update, at most 100 companies a request."""

    destination = "hubspot"
    can_recover = False

    def __init__(self, settings: HubSpotSettings, token: str) -> None:
        self.settings = settings
        self.batch_size = settings.batch_size
        self.url = settings.base_url.rstrip("/") + "/crm/v3/objects/companies/batch/update"
        self.headers = {"Authorization": f"Bearer {token}"}
        self.secrets: tuple[str, ...] = (token,)

    def record_key(self, row: OutboxRow) -> str | None:
        return str(row.payload["record_id"])

    def recover(
        self, client: httpx.Client, rows: list[OutboxRow], counters: Counters, after: str | None
    ) -> SendResult:
        return SendResult()

    def send(self, client: httpx.Client, rows: list[OutboxRow], counters: Counters) -> SendResult:
        inputs = []
        for row in rows:
            entry: dict[str, Any] = {
                "id": row.payload["record_id"],
                "properties": _strings(row.payload["fields"]),
            }
            if self.settings.id_property:
                entry["idProperty"] = self.settings.id_property
            inputs.append(entry)
        response = exchange(client, counters, "POST", self.url, json={"inputs": inputs}, headers=self.headers)
        if isinstance(response, Retry):
            return SendResult(retry=response)
        if response.status_code in (401, 403):
            return SendResult(
                stop=f"HubSpot rejected the request with HTTP {response.status_code}: {_message(response)}; check the token "
                f"in ${self.settings.token_env} and its crm.objects.companies.write scope"
            )
        if response.status_code not in (200, 207):
            error = f"HubSpot rejected the batch (HTTP {response.status_code}): {_message(response)}"
            return SendResult(rejected={row.message_id: error for row in rows})
        return _hubspot_outcome(rows, response)


class SalesforceAccounts:
    """PATCH /services/data/vXX.X/composite/sobjects with allOrNone false, at most 200 records a request."""

    destination = "salesforce"
    can_recover = False

    def __init__(self, settings: SalesforceSettings, token: str) -> None:
        assert settings.base_url is not None
        self.settings = settings
        self.batch_size = settings.batch_size
        self.url = f"{settings.base_url.rstrip('/')}/services/data/{settings.api_version}/composite/sobjects"
        self.headers = {"Authorization": f"Bearer {token}"}
        self.secrets: tuple[str, ...] = (token,)

    def record_key(self, row: OutboxRow) -> str | None:
        return str(row.payload["record_id"])

    def recover(
        self, client: httpx.Client, rows: list[OutboxRow], counters: Counters, after: str | None
    ) -> SendResult:
        return SendResult()

    def send(self, client: httpx.Client, rows: list[OutboxRow], counters: Counters) -> SendResult:
        records = [
            {
                "attributes": {"type": self.settings.sobject},
                "id": row.payload["record_id"],
                **row.payload["fields"],
            }
            for row in rows
        ]
        body = {"allOrNone": False, "records": records}
        response = exchange(client, counters, "PATCH", self.url, json=body, headers=self.headers)
        if isinstance(response, Retry):
            return SendResult(retry=response)
        if response.status_code in (401, 403):
            # 403 also means the org's daily API request limit is used up (REQUEST_LIMIT_EXCEEDED).
            return SendResult(
                stop=f"Salesforce rejected the request with HTTP {response.status_code}: {_message(response)}; check the access "
                f"token in ${self.settings.token_env}, its API access and the org's API request limit"
            )
        if response.status_code != 200:
            error = f"Salesforce rejected the batch (HTTP {response.status_code}): {_message(response)}"
            return SendResult(rejected={row.message_id: error for row in rows})
        return _salesforce_outcome(rows, response)


def _hubspot_outcome(rows: list[OutboxRow], response: httpx.Response) -> SendResult:
    """Split a 200 or 207 response into updated companies and the ones listed under errors."""
    body = _body(response)
    errors: dict[str, str] = {}
    for error in body.get("errors", []) if isinstance(body, dict) else []:
        text = f"HubSpot {error.get('category', 'error')}: {error.get('message', 'no message')}"
        for record_id in (error.get("context") or {}).get("ids", []):
            errors[str(record_id)] = text
    result = SendResult()
    for row in rows:
        record_id = str(row.payload["record_id"])
        if record_id in errors:
            result.rejected[row.message_id] = errors[record_id]
        else:
            result.delivered[row.message_id] = record_id
    return result


def _salesforce_outcome(rows: list[OutboxRow], response: httpx.Response) -> SendResult:
    """Read the per-record results, which Salesforce returns in the order of the records sent."""
    body = _body(response)
    if not isinstance(body, list) or len(body) != len(rows):
        return SendResult(
            retry=Retry("Salesforce returned a result list that does not match the records", in_doubt=True)
        )
    result = SendResult()
    for row, outcome in zip(rows, body, strict=True):
        if outcome.get("success"):
            result.delivered[row.message_id] = outcome.get("id") or str(row.payload["record_id"])
            continue
        problems = [
            f"{problem.get('statusCode', 'ERROR')}: {problem.get('message', 'no message')}"
            for problem in outcome.get("errors") or []
        ]
        result.rejected[row.message_id] = "Salesforce " + ("; ".join(problems) or "rejected the record")
    return result


def _strings(fields: dict[str, Any]) -> dict[str, str]:
    # HubSpot takes every property value as a string; an empty string clears the property.
    return {name: "" if value is None else str(value) for name, value in fields.items()}


def _body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _message(response: httpx.Response) -> str:
    body = _body(response)
    if isinstance(body, list) and body and isinstance(body[0], dict):
        body = body[0]
    if isinstance(body, dict):
        return str(body.get("message") or body.get("errorCode") or body)[:300]
    return response.text.strip()[:300] or response.reason_phrase
