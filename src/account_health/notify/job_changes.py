"""The Slack message of a contact who left, queued in the outbox when the API receives the job change.

The API re-scores the account at once when the contact was one of its champions in seat. A re-score
that moves the account into an immediate tier ([notify.slack] immediate_tiers) is alerted by a
tier-change message instead of this one. This message covers the rest. For a champion whose
departure left the tier outside the immediate tiers, it gives the provisional score. For a contact
whose role is unknown because no list of champions is stored, it gives the latest stored score and
the reason the account was not re-scored.
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
    """The facts of the message: the contact, the account, its latest stored score and the re-score."""

    account_id: str
    contact_id: str
    changed_at: datetime | None
    note: str | None
    as_of: datetime
    tier: str
    probability: float
    name: str | None = None
    owner: str | None = None
    # True when the contact was a champion in seat on the stored score's as-of date.
    champion: bool = False
    # The provisional score, when the account was re-scored.
    provisional_as_of: datetime | None = None
    provisional_tier: str | None = None
    provisional_probability: float | None = None
    # Why the account was not re-scored, when it was not.
    rescore_note: str | None = None


def job_change_message(departed: DepartedContact) -> SlackMessage:
    """Build the message: who left which account, and its provisional score or why it has none."""
    account = escape(departed.name or departed.account_id)
    when = f" on {departed.changed_at:%Y-%m-%d}" if departed.changed_at else ""
    title = "Champion left" if departed.champion else "Contact left"
    headline = (
        f":rotating_light: *{title}* {account}: contact {escape(departed.contact_id)} left the company{when}"
    )
    stored = (
        f"{escape(departed.tier)} ({departed.probability * 100:.1f} % churn probability) "
        f"as of {departed.as_of:%Y-%m-%d}"
    )
    if departed.provisional_tier is not None and departed.provisional_as_of is not None:
        probability = departed.provisional_probability or 0.0
        score_line = (
            f"*Re-scored at once*: {escape(departed.provisional_tier)} ({probability * 100:.1f} % churn "
            f"probability), provisional as of {departed.provisional_as_of:%Y-%m-%d} until the nightly run of "
            f"that date replaces it; before: {stored}"
        )
    else:
        note = escape(departed.rescore_note or "not re-scored", 1000)
        score_line = f"*Latest tier*: {stored}; not re-scored: {note}"
    lines = [
        score_line,
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
    date is one message, and the id of the one already queued is returned.
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
