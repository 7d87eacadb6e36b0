"""One HTTP exchange with a notification destination, sorted into delivered, retry later or rejected."""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from account_health.errors import first_line

log = logging.getLogger(__name__)

# With no Retry-After on a 429, wait as after a failed attempt.
_STATUS_TOO_MANY_REQUESTS = 429


@dataclass(frozen=True)
class Retry:
    """A request that failed in a way worth repeating: rate limited, a 5xx, a time-out, a lost connection."""

    error: str
    # Seconds the receiver asked to wait (Retry-After), or None to back off.
    retry_after: float | None = None
    # True when the receiver may have acted on the request although no success came back.
    in_doubt: bool = False
    rate_limited: bool = False


@dataclass
class SendResult:
    """What one request did to each outbox row it carried."""

    # message_id -> the receiver's id for it (Slack ts, CRM record id), or None.
    delivered: dict[int, str | None] = field(default_factory=dict)
    # message_id -> why the receiver rejected it; repeating the same request would fail the same way.
    rejected: dict[int, str] = field(default_factory=dict)
    retry: Retry | None = None
    # The destination as a whole refused (bad token, missing channel): stop delivering to it.
    stop: str | None = None


@dataclass
class Counters:
    """Requests made to one destination during a delivery."""

    requests: int = 0
    rate_limited: int = 0
    retried: int = 0


class SecretFilter(logging.Filter):
    """Replace secrets (tokens, webhook URLs) in log records of the HTTP client with a placeholder."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = [secret for secret in secrets if secret]

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if any(secret in message for secret in self.secrets):
            for secret in self.secrets:
                message = message.replace(secret, "[secret]")
            record.msg, record.args = message, None
        return True


def redact(text: str, secrets: Iterable[str]) -> str:
    """Return `text` with every secret replaced by a placeholder, for errors stored or shown."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[secret]")
    return text


def exchange(
    client: httpx.Client, counters: Counters, method: str, url: str, **options: Any
) -> httpx.Response | Retry:
    """Send one request; return the response, or a Retry for 429, 5xx, time-outs and connection failures.

    Other 4xx responses are returned for the caller to read, because each API words its rejections
    differently.
    """
    counters.requests += 1
    try:
        response = client.request(method, url, **options)
    except httpx.ConnectError as exc:
        # The connection never opened, so the receiver cannot have seen the request.
        return Retry(f"connection failed: {first_line(exc)}", in_doubt=False)
    except httpx.TimeoutException as exc:
        return Retry(f"timed out: {type(exc).__name__}", in_doubt=not isinstance(exc, httpx.ConnectTimeout))
    except httpx.TransportError as exc:
        return Retry(f"connection lost: {type(exc).__name__}: {first_line(exc)}", in_doubt=True)
    if response.status_code == _STATUS_TOO_MANY_REQUESTS:
        counters.rate_limited += 1
        wait = retry_after_seconds(response.headers.get("Retry-After"))
        return Retry("rate limited (HTTP 429)", retry_after=wait, rate_limited=True)
    if response.status_code >= 500:
        return Retry(f"HTTP {response.status_code}: {_body_excerpt(response)}", in_doubt=True)
    return response


def retry_after_seconds(value: str | None) -> float | None:
    """Parse a Retry-After header: seconds (decimals accepted) or an HTTP date; None when absent or invalid."""
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def backoff_seconds(attempt: int, base: float, maximum: float) -> float:
    """Return the wait after the `attempt`-th failure: base doubled per attempt, capped, with jitter."""
    wait = min(maximum, base * 2 ** max(0, attempt - 1))
    # Full jitter in the upper half keeps several deliverers from retrying in step.
    return wait * random.uniform(0.5, 1.0)


def _body_excerpt(response: httpx.Response, limit: int = 200) -> str:
    text = response.text.strip().replace("\n", " ")
    return text[:limit] or response.reason_phrase
