"""The Slack message of a champion who left, queued in the outbox when the API receives the job change.

The account is not re-scored here, because that needs the analytical store, which the API never
writes. The message gives the account's latest stored tier and states that the nightly run re-scores it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from account_health.config import NotifySettings
from account_health.notify.enqueue import _insert_new
from account_health.notify.slack_messages import SlackMessage, _section, escape
from account_health.store.operational import now
from account_health.store.outbox import PENDING, outbox

KIND = "job_change"


@dataclass(frozen=True)
class DepartedContact:
    """The facts of the message: the contact, the account and the account's latest stored score."""

    account_id: str
    contact_id: str
    changed_at: datetime | None
    note: str | None
    as_of: datetime
    tier: str
    probability: float
    name: str | None = None
    owner: str | None = None


def job_change_message(departed: DepartedContact) -> SlackMessage:
    """Build the message: who left which account, its latest tier, and that the re-score is nightly."""
    account = escape(departed.name or departed.account_id)
    when = f" on {departed.changed_at:%Y-%m-%d}" if departed.changed_at else ""
    headline = (
        f":rotating_light: *Champion left* {account}: contact {escape(departed.contact_id)} "
        f"left the company{when}"
    )
    lines = [
        f"*Latest tier*: {escape(departed.tier)} ({departed.probability * 100:.1f} % churn probability) "
        f"as of {departed.as_of:%Y-%m-%d}; the next nightly run re-scores the account with this change",
        f"*Owner*: {escape(departed.owner or 'unknown')}",
        "*Watch list*: the account is flagged with this job change",
    ]
    if departed.note:
        lines.append(f"*Note*: {escape(departed.note, 1000)}")
    changed = f"{departed.changed_at:%Y-%m-%d}" if departed.changed_at else "undated"
    return SlackMessage(
        dedupe_key=f"slack:{KIND}:{departed.account_id}:{departed.contact_id}:{changed}",
        kind=KIND,
        text="\n".join([headline, *lines]),
        blocks=[_section(headline), *(_section(line) for line in lines)],
        change_ids=(),
    )


def enqueue_job_change(
    connection: Connection, departed: DepartedContact, config: NotifySettings
) -> int | None:
    """Add the message to the outbox in the caller's transaction; return its outbox id.

    Returns None when Slack is off. The same contact's departure from the same account on the same
    date (a webhook sent twice) is one message, and the id of the one already queued is returned.
    """
    if not config.slack.enabled:
        return None
    message = job_change_message(departed)
    row: dict[str, Any] = {
        "dedupe_key": message.dedupe_key,
        "destination": "slack",
        "kind": message.kind,
        "run_id": None,
        "as_of": departed.as_of,
        "account_id": departed.account_id,
        "payload": json.dumps(message.payload(), sort_keys=True),
        "status": PENDING,
        "attempts": 0,
        "in_doubt": False,
        "created_at": now(),
    }
    _insert_new(connection, [row])
    found = connection.execute(
        sa.select(outbox.c.message_id).where(outbox.c.dedupe_key == message.dedupe_key)
    ).scalar_one()
    return int(found)


__all__ = ["DepartedContact", "enqueue_job_change", "job_change_message"]
