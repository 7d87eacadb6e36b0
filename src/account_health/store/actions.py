"""Operational tables of the nightly run: tier changes, tasks, the watch list and account actions.

The nightly run writes a date's rows of all four, its scores and its run record in one transaction
(`account_health.nightly`), so readers see either the previous complete run or the new one. The
functions taking a `Connection` run inside that transaction; those taking an `Engine` open their own.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from account_health.errors import AccountHealthError
from account_health.store.operational import metadata, now, runs

NIGHTLY = "nightly"

tier_changes = sa.Table(
    "tier_changes",
    metadata,
    sa.Column("account_id", sa.String(255), primary_key=True),
    sa.Column("as_of", sa.DateTime, primary_key=True),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.run_id"), nullable=False),
    sa.Column("model_version", sa.String(64), nullable=False),
    # NULL for an account scored for the first time after the first scored date.
    sa.Column("old_tier", sa.String(16)),
    sa.Column("new_tier", sa.String(16), nullable=False),
    sa.Column("probability", sa.Float, nullable=False),
    sa.Column("previous_probability", sa.Float),
    sa.Column("previous_as_of", sa.DateTime),
    # The two signals whose probability points moved most towards the new tier, and by how many points.
    sa.Column("top_signal_1", sa.String(64)),
    sa.Column("top_signal_1_points", sa.Float),
    sa.Column("top_signal_2", sa.String(64)),
    sa.Column("top_signal_2_points", sa.Float),
    # JSON list of {signal, points_move, points, text} for the same two signals.
    sa.Column("top_signals", sa.Text, nullable=False),
    sa.Column("validated", sa.Boolean, nullable=False),
)

tasks = sa.Table(
    "tasks",
    metadata,
    sa.Column("task_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("account_id", sa.String(255), nullable=False),
    sa.Column("as_of", sa.DateTime, nullable=False),
    sa.Column("motion", sa.String(64), nullable=False),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.run_id"), nullable=False),
    sa.Column("owner", sa.String(255), nullable=False),
    sa.Column("tier", sa.String(16), nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("due_date", sa.Date, nullable=False),
    sa.Column("probability", sa.Float, nullable=False),
    sa.Column("arr", sa.Float),
    # probability x ARR (0 when the ARR is unknown): the order in which capacity is handed out.
    sa.Column("arr_at_risk", sa.Float, nullable=False),
    sa.Column("rank", sa.Integer, nullable=False),
    # "open" (within its owner's capacity) or "overflow" (beyond it).
    sa.Column("status", sa.String(16), nullable=False),
    # End of the motion's cooldown: until then the task is in force and blocks a new one for the same motion.
    sa.Column("expires_at", sa.DateTime, nullable=False),
    sa.Column("workshop", sa.Boolean, nullable=False),
    sa.Column("watch_reason", sa.Text),
    sa.Column("validated", sa.Boolean, nullable=False),
    sa.Column("completed_at", sa.DateTime),
    sa.UniqueConstraint("account_id", "as_of", "motion", name="uq_tasks_account_as_of_motion"),
)

watch_list = sa.Table(
    "watch_list",
    metadata,
    sa.Column("watch_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("account_id", sa.String(255), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    # The entry applies to as-of dates up to and including this instant.
    sa.Column("until", sa.DateTime, nullable=False),
    sa.Column("created_by", sa.String(255)),
    sa.Column("removed_at", sa.DateTime),
)

account_actions = sa.Table(
    "account_actions",
    metadata,
    sa.Column("account_id", sa.String(255), primary_key=True),
    sa.Column("as_of", sa.DateTime, primary_key=True),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.run_id"), nullable=False),
    sa.Column("name", sa.Text),
    sa.Column("owner", sa.String(255), nullable=False),
    sa.Column("arr", sa.Float),
    sa.Column("tier", sa.String(16), nullable=False),
    sa.Column("probability", sa.Float, nullable=False),
    sa.Column("model_version", sa.String(64), nullable=False),
    sa.Column("validated", sa.Boolean, nullable=False),
    sa.Column("renewal_stage", sa.String(16)),
    sa.Column("renewal_date", sa.DateTime),
    sa.Column("locked_multi_year", sa.Boolean, nullable=False),
    sa.Column("pltv", sa.Float),
    sa.Column("pltv_decile", sa.Integer),
    sa.Column("champion_strength", sa.String(16), nullable=False),
    sa.Column("motion", sa.String(64), nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    # JSON list of extra steps from the cross-cuts (renewal stage, champion strength).
    sa.Column("steps", sa.Text, nullable=False),
    sa.Column("due_date", sa.Date, nullable=False),
    # "open", "overflow", "cooldown" (an earlier task for the motion is still in force) or "none".
    sa.Column("task_status", sa.String(16), nullable=False),
    sa.Column("expansion", sa.String(16), nullable=False),
    sa.Column("expansion_allowed", sa.Boolean, nullable=False),
    sa.Column("prompt_key", sa.String(64)),
    sa.Column("persona_key", sa.String(64), nullable=False),
    sa.Column("watch_reason", sa.Text),
    sa.Column("watch_until", sa.DateTime),
    # JSON list of {contact_id, email, title, product_events, emails, meetings, score}, best first.
    sa.Column("replacement_candidates", sa.Text, nullable=False),
    # JSON list of the contact ids of the champions in seat on the as-of date (migration 0007); NULL
    # in rows written before it, whose list is unknown.
    sa.Column("champions", sa.Text),
)

sa.Index("ix_tier_changes_run_id", tier_changes.c.run_id)
sa.Index("ix_tasks_as_of", tasks.c.as_of)
sa.Index("ix_tasks_owner", tasks.c.owner)
sa.Index("ix_watch_list_account_id", watch_list.c.account_id)
sa.Index("ix_account_actions_as_of", account_actions.c.as_of)


# Writing, inside the nightly run's transaction.


def replace_tier_changes(connection: Connection, as_of: datetime, rows: Sequence[Mapping[str, Any]]) -> None:
    connection.execute(sa.delete(tier_changes).where(tier_changes.c.as_of == as_of))
    if rows:
        connection.execute(tier_changes.insert(), list(rows))


def replace_account_actions(
    connection: Connection, as_of: datetime, rows: Sequence[Mapping[str, Any]]
) -> None:
    connection.execute(sa.delete(account_actions).where(account_actions.c.as_of == as_of))
    if rows:
        connection.execute(account_actions.insert(), list(rows))


def sync_tasks(connection: Connection, as_of: datetime, rows: Sequence[Mapping[str, Any]]) -> None:
    """Make the tasks of `as_of` equal to `rows`, keeping the id and completion of each kept task.

    A task is the same task when its account and motion match, so a re-run of a date keeps the task
    ids that a CRM or a CSM may already refer to.
    """
    existing = {
        (row.account_id, row.motion): row.task_id
        for row in connection.execute(
            sa.select(tasks.c.task_id, tasks.c.account_id, tasks.c.motion).where(tasks.c.as_of == as_of)
        )
    }
    new_keys = {(row["account_id"], row["motion"]) for row in rows}
    stale = [task_id for key, task_id in existing.items() if key not in new_keys]
    if stale:
        connection.execute(sa.delete(tasks).where(tasks.c.task_id.in_(stale)))
    for row in rows:
        task_id = existing.get((row["account_id"], row["motion"]))
        if task_id is None:
            connection.execute(tasks.insert().values(**row))
        else:
            connection.execute(tasks.update().where(tasks.c.task_id == task_id).values(**row))


def finish_run_in(
    connection: Connection, run_id: int, status: str, as_of: datetime | None, details: Mapping[str, Any]
) -> None:
    connection.execute(
        runs.update()
        .where(runs.c.run_id == run_id)
        .values(status=status, finished_at=now(), as_of=as_of, details=json.dumps(details, default=str))
    )


def abandon_running(engine: Engine, kind: str = NIGHTLY) -> list[int]:
    """Mark runs of `kind` still recorded as running as abandoned; return their ids.

    Call it only while holding the analytical store for writing: DuckDB admits one writing process,
    so no other nightly run can be alive, and a run still marked running was killed.
    """
    with engine.begin() as connection:
        ids = list(
            connection.execute(
                sa.select(runs.c.run_id).where(runs.c.kind == kind, runs.c.status == "running")
            ).scalars()
        )
        if ids:
            connection.execute(
                runs.update().where(runs.c.run_id.in_(ids)).values(status="abandoned", finished_at=now())
            )
    return ids


# Reading, for the nightly run itself.


def tasks_in_force(engine: Engine, as_of: datetime) -> list[dict[str, Any]]:
    """Return open tasks of earlier dates whose cooldown has not ended by `as_of`."""
    query = sa.select(tasks).where(
        tasks.c.as_of < as_of, tasks.c.expires_at > as_of, tasks.c.status == "open"
    )
    with engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(query)]


def accounts_with_completed_workshop(engine: Engine, before: datetime) -> set[str]:
    """Return accounts with a workshop task completed strictly before `before`."""
    query = sa.select(tasks.c.account_id).where(
        tasks.c.workshop.is_(True), tasks.c.completed_at.is_not(None), tasks.c.completed_at < before
    )
    with engine.connect() as connection:
        return set(connection.execute(query.distinct()).scalars())


# The watch list.


def add_watch(
    engine: Engine, account_id: str, reason: str, until: datetime, created_by: str | None = None
) -> int:
    with engine.begin() as connection:
        return insert_watch(connection, account_id, reason, until, created_by)


def insert_watch(
    connection: Connection, account_id: str, reason: str, until: datetime, created_by: str | None = None
) -> int:
    """Insert a watch-list entry inside the caller's transaction; return its id."""
    result = connection.execute(
        watch_list.insert().values(
            account_id=account_id, reason=reason, created_at=now(), until=until, created_by=created_by
        )
    )
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def remove_watch(engine: Engine, account_id: str) -> int:
    """Remove every current watch-list entry of the account; return how many were removed."""
    with engine.begin() as connection:
        result = connection.execute(
            watch_list.update()
            .where(watch_list.c.account_id == account_id, watch_list.c.removed_at.is_(None))
            .values(removed_at=now())
        )
        return int(result.rowcount or 0)


def active_watches(
    engine: Engine, on: datetime, account_id: str | None = None, account_ids: Iterable[str] | None = None
) -> dict[str, dict[str, Any]]:
    """Return, per account, the watch-list entry in force on `on` (the one expiring last).

    `account_id` or `account_ids` keep only those accounts.
    """
    query = sa.select(watch_list).where(watch_list.c.removed_at.is_(None), watch_list.c.until >= on)
    if account_id is not None:
        query = query.where(watch_list.c.account_id == account_id)
    if account_ids is not None:
        query = query.where(watch_list.c.account_id.in_(list(account_ids)))
    found: dict[str, dict[str, Any]] = {}
    with engine.connect() as connection:
        for row in connection.execute(query.order_by(watch_list.c.until, watch_list.c.watch_id)):
            found[row.account_id] = dict(row._mapping)
    return found


def list_watches(
    engine: Engine, include_inactive: bool = False, account_id: str | None = None
) -> list[dict[str, Any]]:
    """Return watch-list entries (of one account when given), those in force now only unless `include_inactive`."""
    query = sa.select(watch_list)
    if account_id is not None:
        query = query.where(watch_list.c.account_id == account_id)
    if not include_inactive:
        query = query.where(watch_list.c.removed_at.is_(None), watch_list.c.until >= now())
    with engine.connect() as connection:
        rows = connection.execute(query.order_by(watch_list.c.account_id, watch_list.c.watch_id))
        return [dict(row._mapping) for row in rows]


# Reading, for the CLI, the API and the notifier.


def latest_nightly_run(engine: Engine) -> dict[str, Any] | None:
    """Return the latest succeeded nightly run (by as-of date, then run id), or None."""
    query = (
        sa.select(runs)
        .where(runs.c.kind == NIGHTLY, runs.c.status == "succeeded")
        .order_by(runs.c.as_of.desc(), runs.c.run_id.desc())
        .limit(1)
    )
    with engine.connect() as connection:
        row = connection.execute(query).first()
    return dict(row._mapping) if row is not None else None


def read_account_actions(
    engine: Engine, as_of: datetime | None = None, account_id: str | None = None
) -> list[dict[str, Any]]:
    """Return account actions of one as-of date (the latest nightly run's when None), riskiest first.

    JSON columns (`steps`, `replacement_candidates`, `champions`) come back parsed; `champions` is
    None in rows written before the column existed.
    """
    if as_of is None:
        latest = latest_nightly_run(engine)
        if latest is None:
            return []
        as_of = latest["as_of"]
    query = sa.select(account_actions).where(account_actions.c.as_of == as_of)
    if account_id is not None:
        query = query.where(account_actions.c.account_id == account_id)
    query = query.order_by(account_actions.c.probability.desc(), account_actions.c.account_id)
    with engine.connect() as connection:
        return [_parsed_action(dict(row._mapping)) for row in connection.execute(query)]


def _parsed_action(row: dict[str, Any]) -> dict[str, Any]:
    row["steps"] = json.loads(row["steps"])
    row["replacement_candidates"] = json.loads(row["replacement_candidates"])
    row["champions"] = json.loads(row["champions"]) if row.get("champions") is not None else None
    return row


def tier_changes_of_run(bind: Engine | Connection, run_id: int) -> list[dict[str, Any]]:
    """Return the tier changes written by a run, each with what a Slack message needs.

    `bind` may be the connection of the run's own transaction (as `nightly._notify` receives it),
    which sees the run's rows before they commit, or an engine.

    Each dict has the tier change's columns: account_id, as_of, old_tier, new_tier, probability,
    previous_probability, top_signal_1/2 and their points, top_signals parsed, validated. It also
    has the account's action on that date: name, owner, arr, motion, description, due_date, renewal_stage,
    renewal_date, pltv_decile, champion_strength, expansion, watch_reason, watch_until, task_status
    and replacement_candidates. Riskiest new tier first.
    """
    action_columns = [
        account_actions.c[name]
        for name in (
            "name",
            "owner",
            "arr",
            "motion",
            "description",
            "due_date",
            "renewal_stage",
            "renewal_date",
            "pltv_decile",
            "champion_strength",
            "expansion",
            "watch_reason",
            "watch_until",
            "task_status",
            "replacement_candidates",
        )
    ]
    query = (
        sa.select(tier_changes, *action_columns)
        .select_from(
            tier_changes.outerjoin(
                account_actions,
                sa.and_(
                    account_actions.c.account_id == tier_changes.c.account_id,
                    account_actions.c.as_of == tier_changes.c.as_of,
                ),
            )
        )
        .where(tier_changes.c.run_id == run_id)
        .order_by(tier_changes.c.probability.desc(), tier_changes.c.account_id)
    )
    if isinstance(bind, Connection):
        rows = [dict(row._mapping) for row in bind.execute(query)]
    else:
        with bind.connect() as connection:
            rows = [dict(row._mapping) for row in connection.execute(query)]
    for row in rows:
        row["top_signals"] = json.loads(row["top_signals"])
        row["replacement_candidates"] = json.loads(row["replacement_candidates"] or "[]")
    return rows


def read_tier_changes(engine: Engine, as_of: datetime) -> list[dict[str, Any]]:
    """Return the tier changes declared on `as_of`, by account."""
    query = sa.select(tier_changes).where(tier_changes.c.as_of == as_of).order_by(tier_changes.c.account_id)
    with engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(query)]


def read_tasks(
    engine: Engine,
    on: datetime | None = None,
    owner: str | None = None,
    tiers: Iterable[str] | None = None,
    account_id: str | None = None,
) -> list[dict[str, Any]]:
    """Return the tasks in force on `on` (the latest nightly run's as-of date when None).

    These are the tasks created on that date (open and overflow) and the open, uncompleted tasks of
    earlier dates whose cooldown has not ended. Ordered by rank within their date, newest date first.
    """
    if on is None:
        latest = latest_nightly_run(engine)
        if latest is None:
            return []
        on = latest["as_of"]
    earlier = sa.and_(
        tasks.c.as_of < on,
        tasks.c.expires_at > on,
        tasks.c.status == "open",
        tasks.c.completed_at.is_(None),
    )
    query = sa.select(tasks).where(sa.or_(tasks.c.as_of == on, earlier))
    if owner is not None:
        query = query.where(tasks.c.owner == owner)
    if tiers is not None:
        query = query.where(tasks.c.tier.in_(list(tiers)))
    if account_id is not None:
        query = query.where(tasks.c.account_id == account_id)
    query = query.order_by(tasks.c.as_of.desc(), tasks.c.rank)
    with engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(query)]


def complete_task(
    engine: Engine, task_id: int, completed_at: datetime | None = None
) -> dict[str, Any] | None:
    """Mark a task completed (now by default); return the task, or None when no task has that id.

    A completion before the task's as-of date or more than a day in the future is refused: it would
    let a workshop that never happened release a Yellow account's expansion. Completing a completed
    task corrects its date, and the returned task has the earlier date as `previously_completed_at`.
    """
    moment = completed_at or now()
    with engine.begin() as connection:
        row = connection.execute(sa.select(tasks).where(tasks.c.task_id == task_id)).first()
        if row is None:
            return None
        if moment < row.as_of or moment > now() + timedelta(days=1):
            raise AccountHealthError(
                f"completion date {moment:%Y-%m-%d} is outside the task's life: give a date from "
                f"{row.as_of:%Y-%m-%d} (when it was created) to today"
            )
        previously = row.completed_at
        connection.execute(tasks.update().where(tasks.c.task_id == task_id).values(completed_at=moment))
        row = connection.execute(sa.select(tasks).where(tasks.c.task_id == task_id)).first()
    return {**row._mapping, "previously_completed_at": previously} if row is not None else None


def as_datetime(value: date) -> datetime:
    return datetime(value.year, value.month, value.day)


__all__ = [
    "NIGHTLY",
    "abandon_running",
    "account_actions",
    "accounts_with_completed_workshop",
    "active_watches",
    "add_watch",
    "as_datetime",
    "complete_task",
    "finish_run_in",
    "insert_watch",
    "latest_nightly_run",
    "list_watches",
    "read_account_actions",
    "read_tasks",
    "read_tier_changes",
    "remove_watch",
    "replace_account_actions",
    "replace_tier_changes",
    "sync_tasks",
    "tasks",
    "tasks_in_force",
    "tier_changes",
    "tier_changes_of_run",
    "watch_list",
]
