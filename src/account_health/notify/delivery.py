"""Deliver the outbox: send what is pending, retry with back-off, and record every outcome.

Each request is preceded by a committed claim of its rows (attempt counted, lease taken, `in_doubt`
set) and followed by a committed outcome. A process killed in between leaves its rows in doubt. The
Slack Web API path then searches the channel's history for them before posting again. The webhook
path cannot search, so it posts again (at-least-once). A CRM update is simply repeated, which leaves
the same values.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from account_health.config import NotifySettings, RetrySettings
from account_health.notify.crm import HubSpotCompanies, SalesforceAccounts
from account_health.notify.rows import OutboxRow, Sender
from account_health.notify.slack import SlackWebApi, SlackWebhook
from account_health.notify.transport import (
    Counters,
    Retry,
    SecretFilter,
    SendResult,
    backoff_seconds,
    redact,
)
from account_health.store.operational import now
from account_health.store.outbox import FAILED, PENDING, SENT, outbox

log = logging.getLogger(__name__)

DESTINATIONS = ("slack", "hubspot", "salesforce")
# A lease outlives one request by this margin; a live process renews it before every request.
_LEASE_MARGIN_SECONDS = 60.0

Progress = Callable[[str, int, int], None]


@dataclass
class DestinationReport:
    """The outcome of one delivery for one destination."""

    destination: str
    sent: int = 0
    # Rows found already delivered (in the Slack channel's history) instead of being sent again.
    recovered: int = 0
    # Rows whose attempts in this delivery all failed; they stay in the outbox as failed.
    failed: int = 0
    # Rows not attempted, because the destination stopped or another live delivery has leased them.
    left_pending: int = 0
    # Rows in doubt that the webhook path posted again without being able to check.
    resent_in_doubt: int = 0
    counters: Counters = field(default_factory=Counters)
    # Why the destination was not delivered to (missing secret, rejected token, long Retry-After).
    error: str | None = None


@dataclass
class DeliveryReport:
    """The outcome of one `deliver` call, per enabled destination."""

    destinations: list[DestinationReport] = field(default_factory=list)

    @property
    def sent(self) -> int:
        return sum(report.sent for report in self.destinations)

    @property
    def unsent(self) -> int:
        return sum(report.failed + report.left_pending for report in self.destinations)

    @property
    def ok(self) -> bool:
        return self.unsent == 0 and all(report.error is None for report in self.destinations)


def deliver(engine: Engine, config: NotifySettings, progress: Progress | None = None) -> DeliveryReport:
    """Send every pending or failed outbox row of the enabled destinations; return what happened.

    Call it after the transaction that enqueued the rows has committed. Secrets are read from the
    environment variables that the config names.
    """
    report = DeliveryReport()
    owner = _owner_id()
    for destination in DESTINATIONS:
        settings: RetrySettings = getattr(config, destination)
        if not getattr(settings, "enabled", False):
            continue
        destination_report = DestinationReport(destination)
        report.destinations.append(destination_report)
        try:
            sender = _sender(config, destination)
        except _MissingSecret as exc:
            destination_report.error = str(exc)
            destination_report.left_pending = _count_unsent(engine, destination)
            log.error("%s: %s", destination, exc)
            continue
        _deliver_destination(engine, sender, settings, owner, destination_report, progress)
    return report


class _MissingSecret(Exception):
    pass


def _sender(config: NotifySettings, destination: str) -> Sender:
    if destination == "slack":
        slack = config.slack
        if slack.method == "webhook":
            return SlackWebhook(slack, _secret(slack.webhook_url_env, "the Slack incoming webhook URL"))
        token = _secret(slack.token_env, "the Slack bot token")
        return SlackWebApi(slack, token, _secret(slack.channel_env, "the Slack channel id"))
    if destination == "hubspot":
        return HubSpotCompanies(config.hubspot, _secret(config.hubspot.token_env, "the HubSpot access token"))
    return SalesforceAccounts(
        config.salesforce, _secret(config.salesforce.token_env, "the Salesforce access token")
    )


def _secret(variable: str, what: str) -> str:
    value = os.environ.get(variable, "").strip()
    if not value:
        raise _MissingSecret(
            f"{variable} is not set; export {what} in it, or disable the destination in [notify]"
        )
    return value


def _deliver_destination(
    engine: Engine,
    sender: Sender,
    settings: RetrySettings,
    owner: str,
    report: DestinationReport,
    progress: Progress | None,
) -> None:
    rows = _unsent_rows(engine, sender.destination)
    dead = _dead_owners(engine)
    secret_filter = SecretFilter(sender.secrets)
    http_log = logging.getLogger("httpx")
    http_log.addFilter(secret_filter)
    log.info("%s: delivering %d outbox messages", sender.destination, len(rows))
    try:
        with httpx.Client(timeout=settings.timeout_seconds) as client:
            done = 0
            for batch in _batches(rows, sender):
                if report.error is None:
                    _deliver_batch(engine, sender, client, settings, owner, dead, batch, report)
                else:
                    report.left_pending += len(batch)
                done += len(batch)
                if progress is not None:
                    progress(sender.destination, done, len(rows))
    finally:
        http_log.removeFilter(secret_filter)
    log.info(
        "%s: %d sent, %d found already delivered, %d failed, %d left pending, %d requests (%d rate limited)",
        sender.destination,
        report.sent,
        report.recovered,
        report.failed,
        report.left_pending,
        report.counters.requests,
        report.counters.rate_limited,
    )


def _deliver_batch(
    engine: Engine,
    sender: Sender,
    client: httpx.Client,
    settings: RetrySettings,
    owner: str,
    dead: Sequence[str],
    batch: list[int],
    report: DestinationReport,
) -> None:
    """Send one batch until every row is delivered or rejected, or its attempts are used up."""
    lease = timedelta(seconds=3 * settings.timeout_seconds + _LEASE_MARGIN_SECONDS)
    remaining = list(batch)
    failures = 0
    while remaining:
        rows = _claim(engine, remaining, owner, dead, lease)
        report.left_pending += len(remaining) - len(rows)
        if not rows:
            return
        result, resolved = _attempt(engine, sender, client, rows, report)
        _record(engine, owner, rows, result, resolved, sender.secrets)
        report.sent += len(result.delivered)
        report.failed += len(result.rejected)
        remaining = [row.message_id for row in rows if row.message_id not in result.delivered]
        remaining = [message_id for message_id in remaining if message_id not in result.rejected]
        if result.stop is not None:
            report.error = redact(result.stop, sender.secrets)
            _give_up(engine, remaining, report.error)
            report.failed += len(remaining)
            log.error("%s: %s", sender.destination, report.error)
            return
        if result.retry is None or not remaining:
            continue
        failures += 1
        wait = _wait(result.retry, failures, settings)
        if failures >= settings.max_attempts or wait is None:
            error = redact(result.retry.error, sender.secrets)
            if wait is None:
                report.error = f"{error}: asked to wait more than max_retry_after_seconds ({settings.max_retry_after_seconds:g} s)"
            _give_up(engine, remaining, f"{error} (after {failures} failed attempts in this delivery)")
            report.failed += len(remaining)
            log.warning("%s: giving up on %d messages for now: %s", sender.destination, len(remaining), error)
            return
        report.counters.retried += 1
        log.info(
            "%s: %s; retrying in %.2f s", sender.destination, redact(result.retry.error, sender.secrets), wait
        )
        time.sleep(wait)


def _attempt(
    engine: Engine, sender: Sender, client: httpx.Client, rows: list[OutboxRow], report: DestinationReport
) -> tuple[SendResult, bool]:
    """Make one attempt at `rows`; return its result and whether an earlier attempt's doubt was resolved.

    Where the receiver can be searched (the Slack Web API), rows in doubt are looked for there first.
    The rows found count as delivered and are not sent again.
    """
    doubtful = [row for row in rows if row.in_doubt]
    found = SendResult()
    if doubtful and sender.can_recover:
        after = _last_delivered_before(engine, sender.destination, doubtful)
        found = sender.recover(client, doubtful, report.counters, after)
        if found.retry is not None or found.stop is not None:
            return found, False
        report.recovered += len(found.delivered)
        if found.delivered:
            log.info("%s: found %d messages already delivered", sender.destination, len(found.delivered))
    elif doubtful:
        report.resent_in_doubt += len(doubtful)
        log.warning(
            "%s: %d messages may have been delivered by an attempt whose response was lost; the %s path cannot "
            "search for them, so they are sent again",
            sender.destination,
            len(doubtful),
            type(sender).__name__,
        )

    todo = [row for row in rows if row.message_id not in found.delivered]
    if not todo:
        return found, True
    result = sender.send(client, todo, report.counters)
    result.delivered.update(found.delivered)
    return result, True


def _wait(retry: Retry, failures: int, settings: RetrySettings) -> float | None:
    """Return the seconds to wait before the next attempt, or None when Retry-After is too long."""
    if retry.retry_after is not None:
        if retry.retry_after > settings.max_retry_after_seconds:
            return None
        return retry.retry_after
    return backoff_seconds(failures, settings.backoff_seconds, settings.max_backoff_seconds)


def _batches(rows: list[OutboxRow], sender: Sender) -> list[list[int]]:
    """Group row ids into requests of at most batch_size, each changing a receiver's record at most once.

    A later update of the same record goes into a later request, so the newest values win.
    """
    batches: list[list[int]] = []
    waiting = list(rows)
    while waiting:
        batch: list[int] = []
        keys: set[str] = set()
        deferred = []
        for row in waiting:
            key = sender.record_key(row)
            if len(batch) >= sender.batch_size or (key is not None and key in keys):
                deferred.append(row)
                continue
            batch.append(row.message_id)
            if key is not None:
                keys.add(key)
        batches.append(batch)
        waiting = deferred
    return batches


def _unsent_rows(engine: Engine, destination: str) -> list[OutboxRow]:
    query = (
        sa.select(outbox)
        .where(outbox.c.destination == destination, outbox.c.status != SENT)
        .order_by(outbox.c.message_id)
    )
    with engine.connect() as connection:
        return [OutboxRow.from_mapping(dict(row._mapping)) for row in connection.execute(query)]


def _count_unsent(engine: Engine, destination: str) -> int:
    query = sa.select(sa.func.count()).where(outbox.c.destination == destination, outbox.c.status != SENT)
    with engine.connect() as connection:
        return int(connection.execute(query).scalar_one())


def _claim(
    engine: Engine, message_ids: list[int], owner: str, dead: Sequence[str], lease: timedelta
) -> list[OutboxRow]:
    """Take the lease on the unsent rows among `message_ids` that no live delivery holds, and mark them in doubt.

    One transaction: the claim's UPDATE comes first, so this process holds the rows (a row lock in
    PostgreSQL, the write lock in SQLite) while it reads them. The rows returned carry what the
    previous attempt left: whether it may have reached the receiver, and when it started. Once this
    commits, a request may leave: a process killed from here on leaves the rows in doubt.
    """
    instant = now()
    free = sa.or_(
        outbox.c.lease_owner.is_(None),
        outbox.c.lease_owner == owner,
        outbox.c.lease_until < instant,
        outbox.c.lease_owner.in_(list(dead)),
    )
    mine = sa.and_(
        outbox.c.message_id.in_(message_ids), outbox.c.lease_owner == owner, outbox.c.status != SENT
    )
    with engine.begin() as connection:
        connection.execute(
            outbox.update()
            .where(outbox.c.message_id.in_(message_ids), outbox.c.status != SENT, free)
            .values(lease_owner=owner, lease_until=instant + lease, attempts=outbox.c.attempts + 1)
        )
        query = sa.select(outbox).where(mine).order_by(outbox.c.message_id)
        rows = [OutboxRow.from_mapping(dict(row._mapping)) for row in connection.execute(query)]
        connection.execute(outbox.update().where(mine).values(in_doubt=True, last_attempt_at=instant))
    return rows


def _last_delivered_before(engine: Engine, destination: str, rows: list[OutboxRow]) -> str | None:
    """Return the receiver's reference of the last row recorded as sent before any of `rows` was attempted."""
    started = min(row.last_attempt_at or row.created_at for row in rows)
    query = (
        sa.select(outbox.c.remote_ref)
        .where(
            outbox.c.destination == destination,
            outbox.c.status == SENT,
            outbox.c.sent_at < started,
            outbox.c.remote_ref.is_not(None),
        )
        .order_by(outbox.c.sent_at.desc(), outbox.c.message_id.desc())
        .limit(1)
    )
    with engine.connect() as connection:
        return connection.execute(query).scalar()


def _record(
    engine: Engine,
    owner: str,
    rows: list[OutboxRow],
    result: SendResult,
    resolved: bool,
    secrets: Sequence[str],
) -> None:
    """Store the outcome of one attempt and release the lease, in one transaction."""
    instant = now()
    retry = result.retry
    with engine.begin() as connection:
        for row in rows:
            mine = sa.and_(outbox.c.message_id == row.message_id, outbox.c.lease_owner == owner)
            values: dict[str, object] = {"lease_owner": None, "lease_until": None}
            if row.message_id in result.delivered:
                values |= {
                    "status": SENT,
                    "sent_at": instant,
                    "remote_ref": result.delivered[row.message_id],
                    "in_doubt": False,
                    "last_error": None,
                }
            elif row.message_id in result.rejected:
                values |= {
                    "status": FAILED,
                    "in_doubt": False,
                    "last_error": redact(result.rejected[row.message_id], secrets),
                }
            else:
                # A rate limit or a rejected token proves that this request was not acted on. An
                # earlier attempt's doubt stays unless the receiver was searched for it.
                in_doubt = (retry is not None and retry.in_doubt) or (row.in_doubt and not resolved)
                error = retry.error if retry is not None else result.stop
                values |= {
                    "status": PENDING,
                    "in_doubt": in_doubt,
                    "last_error": redact(error or "", secrets),
                }
            connection.execute(outbox.update().where(mine).values(**values))


def _give_up(engine: Engine, message_ids: list[int], error: str) -> None:
    if not message_ids:
        return
    with engine.begin() as connection:
        connection.execute(
            outbox.update()
            .where(outbox.c.message_id.in_(message_ids), outbox.c.status != SENT)
            .values(status=FAILED, last_error=error)
        )


def _owner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _dead_owners(engine: Engine) -> list[str]:
    """Return lease owners on this host whose process has exited, so their rows need not wait for the lease."""
    query = sa.select(outbox.c.lease_owner).where(outbox.c.lease_owner.is_not(None)).distinct()
    with engine.connect() as connection:
        owners = list(connection.execute(query).scalars())
    host = socket.gethostname()
    return [owner for owner in owners if _is_dead(owner, host)]


def _is_dead(owner: str, host: str) -> bool:
    # NOTE: this trusts that a host name and a process id identify one process. Containers that share
    # a host name but not a process namespace must not deliver the same outbox at the same time.
    parts = owner.rsplit(":", 2)
    if len(parts) != 3 or parts[0] != host or not parts[1].isdigit():
        return False
    try:
        os.kill(int(parts[1]), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        # The process exists but belongs to another user.
        return False
    return False
