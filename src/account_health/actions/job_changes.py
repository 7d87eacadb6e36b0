"""A contact's job change received one at a time (the API's webhook), handled without the nightly run.

The batch feed of job changes (`[sources.contact_changes]`) is ingested into the analytical store and
read by the next nightly run. A change received over HTTP cannot go there: the API never opens the
DuckDB store for writing, since a nightly run may hold it. So `record_job_change`, in one transaction
of the operational store:

- keeps the change in `job_changes`;
- puts the account on the watch list with the change as the reason (default expiry, as
  `account-health watch`);
- for a contact who left the company, queues a Slack message in the outbox, when Slack is on.

The account is not re-scored: that needs the analytical store, so its tier changes only at the next
nightly run, and only if the change also arrives through the batch feed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine

from account_health.actions.watch import checked_watch
from account_health.config import Config
from account_health.errors import UnknownAccountError
from account_health.notify.job_changes import DepartedContact, enqueue_job_change
from account_health.store import actions as action_store
from account_health.store.job_changes import insert_job_change
from account_health.store.operational import latest_score_on_or_before

CHANGE_WORDS = {
    "left_company": "left the company",
    "title_change": "changed title",
    "email_bounced": "email bounced",
}
DEPARTURE = "left_company"
_LAST_DAY = datetime(9999, 12, 31)


def job_change_reason(contact_id: str, change: str, changed_at: datetime | None, note: str | None) -> str:
    """Return the watch-list reason of a job change, e.g. 'job change: contact C7 left the company on 2025-12-30'."""
    when = f" on {changed_at:%Y-%m-%d}" if changed_at else ""
    extra = f": {note}" if note else ""
    return f"job change: contact {contact_id} {CHANGE_WORDS[change]}{when}{extra}"


def record_job_change(
    config: Config,
    engine: Engine,
    account_id: str,
    contact_id: str,
    change: str,
    changed_at: datetime | None = None,
    note: str | None = None,
    received_by: str | None = None,
) -> dict[str, Any]:
    """Keep a job change, flag its account and, for a departure, queue a Slack message; return what was written.

    `changed_at` is naive UTC. Returns a dict with job_change_id, watch_id, watch_reason, watch_until and
    message_id (None when no message was queued). Nothing is written when an error is raised.

    Raises
    ------
    UnknownAccountError
        When the account has no score.
    AccountHealthError
        When the reason made of the change is too long.
    """
    if change not in CHANGE_WORDS:
        raise ValueError(f"unknown job change {change!r}; expected one of {', '.join(CHANGE_WORDS)}")
    score = latest_score_on_or_before(engine, account_id, _LAST_DAY)
    if score is None:
        raise UnknownAccountError(account_id)
    reason, until = checked_watch(
        config, engine, account_id, job_change_reason(contact_id, change, changed_at, note), None
    )
    departed = None
    if change == DEPARTURE:
        action = action_store.read_account_actions(engine, score["as_of"], account_id)
        departed = DepartedContact(
            account_id=account_id,
            contact_id=contact_id,
            changed_at=changed_at,
            note=note,
            as_of=score["as_of"],
            tier=score["tier"],
            probability=float(score["probability"]),
            name=action[0]["name"] if action else None,
            owner=action[0]["owner"] if action else None,
        )
    message_id = None
    with engine.begin() as connection:
        watch_id = action_store.insert_watch(connection, account_id, reason, until, received_by)
        if departed is not None:
            message_id = enqueue_job_change(connection, departed, config.notify)
        job_change_id = insert_job_change(
            connection, account_id, contact_id, change, changed_at, note, received_by, watch_id, message_id
        )
    return {
        "job_change_id": job_change_id,
        "watch_id": watch_id,
        "watch_reason": reason,
        "watch_until": until,
        "message_id": message_id,
    }


__all__ = ["CHANGE_WORDS", "job_change_reason", "record_job_change"]
