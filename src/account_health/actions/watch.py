"""The watch list: a CSM's override flag with a reason and an expiry. It never changes a tier.

A flag in force on a run's as-of date shows in that date's account actions and tasks, in `explain`,
and in what the notifier sends. The API writes flags through the same functions as the CLI.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from account_health.asof import start_of_day
from account_health.config import Config, Workspace
from account_health.errors import AccountHealthError
from account_health.store import actions as action_store
from account_health.store.operational import now, scores

MAX_REASON_CHARACTERS = 1000


def add_watch_entry(
    workspace: Workspace,
    engine: Engine,
    account_id: str,
    reason: str,
    until: datetime | None = None,
    created_by: str | None = None,
) -> dict[str, Any]:
    """Flag a scored account until `until` (default: [actions] watch_default_days from today); return the entry.

    Raises
    ------
    AccountHealthError
        When the reason is empty or too long, `until` is in the past, or the account has no score.
    """
    return add_watch_with(workspace.config, engine, account_id, reason, until, created_by)


def add_watch_with(
    config: Config,
    engine: Engine,
    account_id: str,
    reason: str,
    until: datetime | None = None,
    created_by: str | None = None,
) -> dict[str, Any]:
    """`add_watch_entry` for a caller holding a config rather than a workspace (the API)."""
    reason, until = checked_watch(config, engine, account_id, reason, until)
    watch_id = action_store.add_watch(engine, account_id, reason, until, created_by)
    return {"watch_id": watch_id, "account_id": account_id, "reason": reason, "until": until}


def checked_watch(
    config: Config, engine: Engine, account_id: str, reason: str, until: datetime | None
) -> tuple[str, datetime]:
    """Check a new flag as `add_watch_entry` does; return its stripped reason and its `until`.

    For a caller that inserts the entry in its own transaction (`store.actions.insert_watch`).
    """
    reason = reason.strip()
    if not reason:
        raise AccountHealthError("the watch reason is empty; say why the account needs attention")
    if len(reason) > MAX_REASON_CHARACTERS:
        raise AccountHealthError(
            f"the watch reason has {len(reason):,} characters; shorten it to at most {MAX_REASON_CHARACTERS:,}"
        )
    today = start_of_day(now())
    if until is None:
        until = today + timedelta(days=config.actions.watch_default_days)
    if until < today:
        raise AccountHealthError(f"--until {until:%Y-%m-%d} is in the past; give a date from today on")
    if not _is_scored(engine, account_id):
        raise AccountHealthError(
            f"account {account_id!r} has no score in this workspace; check the id, or run "
            "`account-health run` first"
        )
    return reason, until


def remove_watch_entries(engine: Engine, account_id: str) -> int:
    """Remove the account's flags; return how many were in the list and not yet removed."""
    return action_store.remove_watch(engine, account_id)


def _is_scored(engine: Engine, account_id: str) -> bool:
    query = sa.select(scores.c.account_id).where(scores.c.account_id == account_id).limit(1)
    with engine.connect() as connection:
        return connection.execute(query).first() is not None


__all__ = ["add_watch_entry", "add_watch_with", "checked_watch", "remove_watch_entries"]
