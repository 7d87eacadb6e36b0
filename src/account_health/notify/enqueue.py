"""Put tier-change messages and CRM updates into the outbox, inside the caller's transaction."""

from __future__ import annotations

import json
import logging
from collections.abc import Collection, Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from account_health.config import NotifySettings
from account_health.notify.crm_records import crm_record
from account_health.notify.notice import TierChangeNotice
from account_health.notify.slack_messages import digest_messages, tier_change_message
from account_health.store.operational import now
from account_health.store.outbox import PENDING, outbox

log = logging.getLogger(__name__)

# Keys looked up per query when checking which messages are already in the outbox.
_KEYS_PER_QUERY = 500


def enqueue(
    connection: Connection,
    notices: Sequence[TierChangeNotice],
    config: NotifySettings,
    announced: Collection[str] = (),
) -> int:
    """Add the messages and CRM updates of `notices` to the outbox; return how many rows were added.

    Runs in the caller's transaction, so the outbox rows commit or roll back with the run that
    produced them. Every row has a deduplication key derived from the as-of date, the account and the
    tiers, so enqueueing the same changes again adds nothing. `announced` lists change ids whose
    Slack message a provisional re-score already queued; they get no second one, but CRM updates.
    """
    # The same change listed twice is one change.
    notices = list({notice.change_id: notice for notice in notices}.values())
    rows: list[dict[str, Any]] = []
    if config.slack.enabled:
        unannounced = [notice for notice in notices if notice.change_id not in announced]
        rows += _slack_rows(connection, unannounced, config)
    if config.hubspot.enabled:
        rows += _crm_rows(
            "hubspot", notices, config.hubspot.fields, by_account_id=bool(config.hubspot.id_property)
        )
    if config.salesforce.enabled:
        rows += _crm_rows("salesforce", notices, config.salesforce.fields, by_account_id=False)
    added = _insert_new(connection, rows)
    log.info("enqueued %d outbox messages (%d already there)", added, len(rows) - added)
    return added


def enqueue_tier_alert(
    connection: Connection, notice: TierChangeNotice, config: NotifySettings
) -> int | None:
    """Add the Slack message of one tier change to the outbox in the caller's transaction; return its id.

    For a provisional re-score's move into an immediate tier. The message has the deduplication key
    the nightly run gives the same change on the same as-of date, so that run adds no second one.
    Returns None when Slack is off or the new tier is not in `immediate_tiers`.
    """
    if not config.slack.enabled or notice.new_tier not in config.slack.immediate_tiers:
        return None
    message = tier_change_message(notice)
    _insert_new(
        connection, [_row(message.dedupe_key, "slack", message.kind, message.payload(), notice, single=True)]
    )
    found = connection.execute(
        sa.select(outbox.c.message_id).where(outbox.c.dedupe_key == message.dedupe_key)
    ).scalar_one()
    return int(found)


def _slack_rows(
    connection: Connection, notices: Sequence[TierChangeNotice], config: NotifySettings
) -> list[dict[str, Any]]:
    immediate = set(config.slack.immediate_tiers)
    messages = [tier_change_message(notice) for notice in notices if notice.new_tier in immediate]
    if config.slack.digest:
        rest = [notice for notice in notices if notice.new_tier not in immediate]
        for as_of in sorted({notice.as_of for notice in rest}):
            covered = _digested_changes(connection, as_of)
            todo = [notice for notice in rest if notice.as_of == as_of and notice.change_id not in covered]
            messages += digest_messages(todo)
    by_change = {notice.change_id: notice for notice in notices}
    return [
        _row(
            message.dedupe_key,
            "slack",
            message.kind,
            message.payload(),
            by_change[message.change_ids[0]],
            single=message.kind == "tier_change",
        )
        for message in messages
    ]


def _digested_changes(connection: Connection, as_of: datetime) -> set[str]:
    """Return the change ids already in a digest of this as-of date, so a second enqueue repeats none."""
    query = sa.select(outbox.c.payload).where(
        outbox.c.destination == "slack", outbox.c.kind == "digest", outbox.c.as_of == as_of
    )
    covered: set[str] = set()
    for payload in connection.execute(query).scalars():
        covered.update(json.loads(payload).get("items", []))
    return covered


def _crm_rows(
    destination: str, notices: Sequence[TierChangeNotice], fields: dict[str, str], by_account_id: bool
) -> list[dict[str, Any]]:
    rows = []
    missing = []
    for notice in notices:
        record_id = notice.account_id if by_account_id else notice.crm_id
        if not record_id:
            missing.append(notice.account_id)
            continue
        payload = crm_record(notice, fields, record_id)
        key = f"{destination}:crm-update:{notice.change_id}"
        rows.append(_row(key, destination, "crm_update", payload, notice, single=True))
    if missing:
        # NOTE: these accounts reach the CRM only through the CSV file until their crm_id is known.
        log.warning(
            "%d accounts have no crm_id, so no %s update was enqueued for them (first: %r); "
            "fill accounts.crm_id in the accounts export",
            len(missing),
            destination,
            missing[0],
        )
    return rows


def _row(
    key: str, destination: str, kind: str, payload: dict[str, Any], notice: TierChangeNotice, single: bool
) -> dict[str, Any]:
    """Return a new outbox row; `notice` is the change it is about, or any change of its digest."""
    return {
        "dedupe_key": key,
        "destination": destination,
        "kind": kind,
        "run_id": notice.run_id,
        "as_of": notice.as_of,
        "account_id": notice.account_id if single else None,
        "payload": json.dumps(payload, sort_keys=True),
        "status": PENDING,
        "attempts": 0,
        "in_doubt": False,
        "created_at": now(),
    }


def _insert_new(connection: Connection, rows: list[dict[str, Any]]) -> int:
    """Insert the rows whose deduplication key is not in the outbox yet; return how many were new."""
    keys = [row["dedupe_key"] for row in rows]
    present = set(_existing_keys(connection, keys))
    new = [row for row in rows if row["dedupe_key"] not in present]
    new = list({row["dedupe_key"]: row for row in new}.values())
    if not new:
        return 0
    dialect = connection.dialect.name
    if dialect in ("postgresql", "sqlite"):
        insert = (postgresql if dialect == "postgresql" else sqlite).insert(outbox)
        # A concurrent enqueue of the same change loses the race quietly instead of failing the run.
        connection.execute(insert.on_conflict_do_nothing(index_elements=["dedupe_key"]), new)
    else:
        connection.execute(outbox.insert(), new)
    return len(new)


def _existing_keys(connection: Connection, keys: list[str]) -> Iterable[str]:
    for start in range(0, len(keys), _KEYS_PER_QUERY):
        chunk = keys[start : start + _KEYS_PER_QUERY]
        yield from connection.execute(
            sa.select(outbox.c.dedupe_key).where(outbox.c.dedupe_key.in_(chunk))
        ).scalars()
