"""Posting outbox messages to Slack: the Web API (chat.postMessage) or an incoming webhook."""

from __future__ import annotations

import contextlib
import logging
import time
from datetime import UTC, timedelta
from typing import Any

import httpx

from account_health.config import SlackSettings
from account_health.notify.rows import OutboxRow
from account_health.notify.transport import Counters, Retry, SendResult, exchange, retry_after_seconds

log = logging.getLogger(__name__)

# chat.postMessage stores this metadata with each message; conversations.history returns it, which is
# how a message whose response was lost is found again.
METADATA_EVENT_TYPE = "account_health_notice"
HISTORY_PAGE_SIZE = 200

# Web API errors that Slack documents as temporary on its side.
_TEMPORARY_ERRORS = {"internal_error", "fatal_error", "service_unavailable", "request_timeout", "ratelimited"}
# Errors that every message to this channel with this token would get too.
_DESTINATION_ERRORS = {
    "invalid_auth",
    "not_authed",
    "account_inactive",
    "token_revoked",
    "token_expired",
    "no_permission",
    "missing_scope",
    "channel_not_found",
    "not_in_channel",
    "is_archived",
    "restricted_action",
    "invalid_token",
    "no_service",
    "channel_is_archived",
    "action_prohibited",
    "team_disabled",
}
_BLOCK_ERRORS = {"invalid_blocks", "invalid_blocks_format"}


class _SlackSender:
    """Post one message per request, and post it again as text alone when Slack rejects its blocks."""

    destination = "slack"
    batch_size = 1
    # Messages whose blocks Slack rejected in this delivery; they are posted as text alone.
    text_only: set[int]

    def record_key(self, row: OutboxRow) -> str | None:
        return None

    def send(self, client: httpx.Client, rows: list[OutboxRow], counters: Counters) -> SendResult:
        (row,) = rows
        result = self._post(client, row, counters)
        if result is _BLOCKS_REJECTED:
            log.warning(
                "Slack rejected the blocks of outbox message %d; posting its text alone", row.message_id
            )
            self.text_only.add(row.message_id)
            result = self._post(client, row, counters)
        assert isinstance(result, SendResult)
        return result

    def _post(self, client: httpx.Client, row: OutboxRow, counters: Counters) -> SendResult | object:
        raise NotImplementedError


class SlackWebApi(_SlackSender):
    """chat.postMessage with a bot token; conversations.history finds messages whose response was lost."""

    can_recover = True

    def __init__(self, settings: SlackSettings, token: str, channel: str) -> None:
        self.settings = settings
        self.base_url = settings.base_url.rstrip("/")
        self.channel = channel
        self.secrets: tuple[str, ...] = (token,)
        self.headers = {"Authorization": f"Bearer {token}"}
        self.text_only = set()

    def recover(
        self, client: httpx.Client, rows: list[OutboxRow], counters: Counters, after: str | None
    ) -> SendResult:
        expected = {row.dedupe_key: row.message_id for row in rows}
        params: dict[str, Any] = {
            "channel": self.channel,
            "oldest": f"{self._oldest(rows, after):.6f}",
            "limit": HISTORY_PAGE_SIZE,
            "include_all_metadata": "true",
        }
        found: dict[int, str | None] = {}
        while True:
            response = self._history_page(client, params, counters)
            if isinstance(response, Retry):
                return SendResult(retry=response)
            data = _json(response)
            if not data.get("ok"):
                error = str(data.get("error"))
                failure = _error_result(error, response, [], "conversations.history")
                if failure.stop or failure.retry:
                    return failure
                # Without the history the earlier attempt stays in doubt, so nothing is posted yet.
                return SendResult(retry=Retry(f"Slack conversations.history: {error}", in_doubt=True))
            for message in data.get("messages", []):
                metadata = message.get("metadata") or {}
                key = (metadata.get("event_payload") or {}).get("dedupe_key")
                if metadata.get("event_type") == METADATA_EVENT_TYPE and key in expected:
                    found[expected[key]] = message.get("ts")
            cursor = (data.get("response_metadata") or {}).get("next_cursor")
            if not cursor or len(found) == len(expected):
                return SendResult(delivered=found)
            params["cursor"] = cursor

    def _oldest(self, rows: list[OutboxRow], after: str | None) -> float:
        """Return the Slack timestamp after which the rows' messages can be: the later of two bounds.

        Slack stamps messages in order, so a message posted after `after` was confirmed has a later
        ts. This machine's clock gives the other bound, widened by history_margin_seconds for skew.
        """
        started = min(row.last_attempt_at or row.created_at for row in rows)
        by_clock = started.replace(tzinfo=UTC) - timedelta(seconds=self.settings.history_margin_seconds)
        bound = by_clock.timestamp()
        if after:
            with contextlib.suppress(ValueError):
                bound = max(bound, float(after))
        return bound

    def _history_page(
        self, client: httpx.Client, params: dict[str, Any], counters: Counters
    ) -> httpx.Response | Retry:
        """Fetch one page of history, waiting out rate limits so a long search is not restarted."""
        for _attempt in range(self.settings.max_attempts):
            response = exchange(
                client,
                counters,
                "GET",
                f"{self.base_url}/conversations.history",
                params=params,
                headers=self.headers,
            )
            if not isinstance(response, Retry) or not response.rate_limited:
                return response
            wait = response.retry_after if response.retry_after is not None else self.settings.backoff_seconds
            if wait > self.settings.max_retry_after_seconds:
                return response
            time.sleep(wait)
        return response

    def _post(self, client: httpx.Client, row: OutboxRow, counters: Counters) -> SendResult | object:
        body: dict[str, Any] = {
            "channel": self.channel,
            "text": row.payload["text"],
            "unfurl_links": False,
            "unfurl_media": False,
            "metadata": {"event_type": METADATA_EVENT_TYPE, "event_payload": {"dedupe_key": row.dedupe_key}},
        }
        if row.message_id not in self.text_only:
            body["blocks"] = row.payload["blocks"]
        response = exchange(
            client, counters, "POST", f"{self.base_url}/chat.postMessage", json=body, headers=self.headers
        )
        if isinstance(response, Retry):
            return SendResult(retry=response)
        data = _json(response)
        if data.get("ok"):
            return SendResult(delivered={row.message_id: data.get("ts")})
        error = str(data.get("error"))
        if error in _BLOCK_ERRORS and row.message_id not in self.text_only:
            return _BLOCKS_REJECTED
        return _error_result(error, response, [row], "chat.postMessage")


class SlackWebhook(_SlackSender):
    """An incoming webhook: posts only, so a message whose response was lost may be posted twice."""

    can_recover = False

    def __init__(self, settings: SlackSettings, url: str) -> None:
        self.settings = settings
        self.url = url
        self.secrets: tuple[str, ...] = (url,)
        self.text_only = set()

    def recover(
        self, client: httpx.Client, rows: list[OutboxRow], counters: Counters, after: str | None
    ) -> SendResult:
        return SendResult()

    def _post(self, client: httpx.Client, row: OutboxRow, counters: Counters) -> SendResult | object:
        body: dict[str, Any] = {"text": row.payload["text"]}
        if row.message_id not in self.text_only:
            body["blocks"] = row.payload["blocks"]
        response = exchange(client, counters, "POST", self.url, json=body)
        if isinstance(response, Retry):
            return SendResult(retry=response)
        error = response.text.strip()
        if response.status_code == 200:
            return SendResult(delivered={row.message_id: None})
        if error in _BLOCK_ERRORS and row.message_id not in self.text_only:
            return _BLOCKS_REJECTED
        return _error_result(error or f"HTTP {response.status_code}", response, [row], "the webhook")


_BLOCKS_REJECTED = object()


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {"ok": False, "error": f"HTTP {response.status_code} without a JSON body"}
    return data if isinstance(data, dict) else {"ok": False, "error": "a JSON body that is not an object"}


def _error_result(error: str, response: httpx.Response, rows: list[OutboxRow], method: str) -> SendResult:
    """Sort a Slack error code into retry, stop the destination, or reject the message."""
    if error in _TEMPORARY_ERRORS:
        wait = retry_after_seconds(response.headers.get("Retry-After"))
        limited = error == "ratelimited"
        return SendResult(
            retry=Retry(
                f"Slack {method}: {error}", retry_after=wait, in_doubt=not limited, rate_limited=limited
            )
        )
    if error in _DESTINATION_ERRORS or response.status_code in (401, 403, 404, 410):
        return SendResult(
            stop=f"Slack {method} failed with {error!r}; check the token or webhook URL, the channel, and the app's "
            "scopes (chat:write, channels:history or groups:history)"
        )
    return SendResult(
        rejected={row.message_id: f"Slack {method} rejected the message: {error}" for row in rows}
    )
