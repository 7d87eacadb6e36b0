"""Every read and write of the operational store that the API and the dashboard make.

The scores history and the model registry always exist. The tables written by the nightly run
(`account_actions`, `tasks`, `watch_list`, `tier_changes`) may not exist yet in a given store: they are
looked up by name, their columns are read from the database, and each function that needs one returns
None (or raises `TableMissing` for writes) when it is absent. This module is the only place that
names them, so wiring them to their final schema touches only this file.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from account_health.store import operational
from account_health.store.operational import models, runs, scores
from account_health.training.artifact import parse_artifact

log = logging.getLogger(__name__)

ACCOUNT_ACTIONS = "account_actions"
TASKS = "tasks"
WATCH_LIST = "watch_list"
TIER_CHANGES = "tier_changes"
OPTIONAL_TABLES = (ACCOUNT_ACTIONS, TASKS, WATCH_LIST, TIER_CHANGES)

# A table created by a migration while the server runs is found within this many seconds.
TABLE_RECHECK_SECONDS = 30.0

# Models kept in memory by version. A store contains one per training run, so this is rarely reached.
MODELS_CACHED = 64

# Columns written to watch_list, in the order tried; only those the table has are written.
WATCH_COLUMNS = ("account_id", "reason", "expires_at", "created_at", "created_by", "source")


class TableMissing(Exception):
    """An optional table that a request needs is not in this operational store yet."""

    def __init__(self, table: str) -> None:
        super().__init__(table)
        self.table = table


@dataclass(frozen=True)
class ModelInfo:
    """A registered model with its parsed artifact."""

    model_version: str
    created_at: datetime
    validated: bool
    artifact: dict[str, Any]


@dataclass(frozen=True)
class AccountPage:
    """One page of the accounts list on the latest scoring date."""

    as_of: datetime | None
    total: int
    rows: list[dict[str, Any]]


class StoreReader:
    """Queries of one operational store, with the optional tables found by inspection."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._lock = threading.Lock()
        self._tables: dict[str, sa.Table | None] = {}
        self._checked_at = -TABLE_RECHECK_SECONDS
        self._artifacts: dict[tuple[str, str], dict[str, Any]] = {}
        self._models: dict[str, ModelInfo] = {}

    # -- optional tables ---------------------------------------------------------------------------

    def table(self, name: str) -> sa.Table | None:
        """Return the reflected optional table `name`, or None when the store does not have it."""
        with self._lock:
            if time.monotonic() - self._checked_at >= TABLE_RECHECK_SECONDS:
                self._reflect()
            return self._tables.get(name)

    def has_table(self, name: str) -> bool:
        return self.table(name) is not None

    def _reflect(self) -> None:
        present = set(sa.inspect(self.engine).get_table_names())
        reflected = sa.MetaData()
        for name in OPTIONAL_TABLES:
            if name not in present:
                self._tables[name] = None
            elif self._tables.get(name) is None:
                self._tables[name] = sa.Table(name, reflected, autoload_with=self.engine)
        self._checked_at = time.monotonic()

    # -- scores ------------------------------------------------------------------------------------

    def latest_as_of(self) -> datetime | None:
        with self.engine.connect() as connection:
            return connection.execute(sa.select(sa.func.max(scores.c.as_of))).scalar()

    def latest_score(self, account_id: str) -> dict[str, Any] | None:
        """Return the account's newest score (latest as-of date, then latest run), or None."""
        query = (
            sa.select(scores)
            .where(scores.c.account_id == account_id)
            .order_by(scores.c.as_of.desc(), scores.c.run_id.desc())
            .limit(1)
        )
        with self.engine.connect() as connection:
            row = connection.execute(query).first()
        return dict(row._mapping) if row is not None else None

    def account_history(self, account_id: str) -> list[dict[str, Any]]:
        """Return one score per as-of date (the latest run's), oldest first."""
        query = (
            sa.select(
                scores.c.as_of,
                scores.c.probability,
                scores.c.tier,
                scores.c.raw_tier,
                scores.c.model_version,
                scores.c.validated,
                scores.c.run_id,
            )
            .where(scores.c.account_id == account_id)
            .order_by(scores.c.as_of, scores.c.run_id)
        )
        with self.engine.connect() as connection:
            by_date = {row.as_of: dict(row._mapping) for row in connection.execute(query)}
        return list(by_date.values())

    def list_accounts(
        self,
        tiers: Sequence[str] = (),
        owner: str | None = None,
        renewal_stage: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> AccountPage:
        """Return the accounts scored on the latest date, riskiest first, with their actions when known.

        Filtering by owner or renewal stage needs `account_actions`; without it `TableMissing` is raised.
        """
        as_of = self.latest_as_of()
        if as_of is None:
            return AccountPage(None, 0, [])
        current = _current_scores(scores.c.as_of == as_of)
        actions = self.table(ACCOUNT_ACTIONS)
        if actions is None and (owner is not None or renewal_stage is not None):
            raise TableMissing(ACCOUNT_ACTIONS)

        columns: list[Any] = [
            current.c.account_id,
            current.c.as_of,
            current.c.probability,
            current.c.tier,
            current.c.model_version,
            current.c.validated,
        ]
        source: Any = current
        conditions: list[Any] = []
        if tiers:
            conditions.append(current.c.tier.in_(list(tiers)))
        if actions is not None:
            for name in ("name", "owner", "arr", "renewal_stage"):
                if name in actions.c:
                    columns.append(actions.c[name])
            source = current.outerjoin(
                actions,
                sa.and_(actions.c.account_id == current.c.account_id, actions.c.as_of == current.c.as_of),
            )
            if owner is not None:
                conditions.append(actions.c.owner == owner)
            if renewal_stage is not None:
                conditions.append(actions.c.renewal_stage == renewal_stage)

        base = sa.select(*columns).select_from(source).where(*conditions)
        count = sa.select(sa.func.count()).select_from(base.subquery())
        page = base.order_by(current.c.probability.desc(), current.c.account_id).limit(limit).offset(offset)
        with self.engine.connect() as connection:
            total = int(connection.execute(count).scalar_one())
            rows = [dict(row._mapping) for row in connection.execute(page)]
        watched = self.watched_accounts([row["account_id"] for row in rows])
        for row in rows:
            row["watched"] = None if watched is None else row["account_id"] in watched
        return AccountPage(as_of, total, rows)

    def tier_counts(self, as_of: datetime | None = None) -> tuple[datetime | None, dict[str, int]]:
        """Return the as-of date used (the latest by default) and the number of accounts per tier."""
        as_of = as_of or self.latest_as_of()
        if as_of is None:
            return None, {}
        current = _current_scores(scores.c.as_of == as_of)
        query = sa.select(current.c.tier, sa.func.count()).group_by(current.c.tier)
        with self.engine.connect() as connection:
            return as_of, {tier: int(count) for tier, count in connection.execute(query)}

    def tier_counts_over_time(self) -> dict[datetime, dict[str, int]]:
        """Return the number of accounts per tier on every scored as-of date, oldest first."""
        current = _current_scores()
        query = (
            sa.select(current.c.as_of, current.c.tier, sa.func.count())
            .group_by(current.c.as_of, current.c.tier)
            .order_by(current.c.as_of)
        )
        history: dict[datetime, dict[str, int]] = {}
        with self.engine.connect() as connection:
            for as_of, tier, count in connection.execute(query):
                history.setdefault(as_of, {})[tier] = int(count)
        return history

    # -- models ------------------------------------------------------------------------------------

    def model(self, model_version: str | None = None) -> ModelInfo | None:
        """Return a registered model (the newest by default) with its parsed artifact, or None.

        A model named by version is served from memory after its first read: a version names one
        training run, and every score refers to its model by version.
        """
        if model_version is not None and model_version in self._models:
            return self._models[model_version]
        query = sa.select(models.c.model_version, models.c.created_at, models.c.validated, models.c.sha256)
        if model_version is None:
            query = query.order_by(models.c.created_at.desc(), models.c.model_version.desc()).limit(1)
        else:
            query = query.where(models.c.model_version == model_version)
        with self.engine.connect() as connection:
            row = connection.execute(query).first()
        if row is None:
            return None
        info = ModelInfo(row.model_version, row.created_at, bool(row.validated), self._artifact(row))
        if model_version is not None:
            with self._lock:
                if len(self._models) >= MODELS_CACHED:
                    self._models.clear()
                self._models[model_version] = info
        return info

    def _artifact(self, row: Any) -> dict[str, Any]:
        # A version is re-registered only with new content, so (version, sha256) names one artifact.
        key = (row.model_version, row.sha256)
        cached = self._artifacts.get(key)
        if cached is None:
            text = operational.model_row(self.engine, row.model_version)
            assert text is not None
            cached = parse_artifact(text["artifact"], f"model {row.model_version} in the operational store")
            self._artifacts[key] = cached
        return cached

    def latest_run(self, kind: str | None = None) -> dict[str, Any] | None:
        query = sa.select(runs).order_by(runs.c.run_id.desc()).limit(1)
        if kind is not None:
            query = query.where(runs.c.kind == kind)
        with self.engine.connect() as connection:
            row = connection.execute(query).first()
        return dict(row._mapping) if row is not None else None

    # -- tables of the nightly run -----------------------------------------------------------------

    def account_action(self, account_id: str, as_of: datetime) -> dict[str, Any] | None:
        """Return the account's `account_actions` row of the as-of date; None when absent or no table."""
        actions = self.table(ACCOUNT_ACTIONS)
        if actions is None:
            return None
        query = sa.select(actions).where(actions.c.account_id == account_id, actions.c.as_of == as_of)
        with self.engine.connect() as connection:
            row = connection.execute(query).first()
        if row is None:
            return None
        action = dict(row._mapping)
        for name, value in action.items():
            if name.endswith("candidates") and isinstance(value, str):
                action[name] = _json_or_text(value)
        return action

    def tasks(self, account_id: str) -> list[dict[str, Any]] | None:
        """Return the account's tasks, newest first; None when the store has no tasks table."""
        table = self.table(TASKS)
        if table is None:
            return None
        query = sa.select(table).where(table.c.account_id == account_id)
        order = [table.c[name].desc() for name in ("due_date", "created_at") if name in table.c]
        with self.engine.connect() as connection:
            return [dict(row._mapping) for row in connection.execute(query.order_by(*order).limit(50))]

    def watch_entries(self, account_id: str, at: datetime) -> list[dict[str, Any]] | None:
        """Return the account's watch-list entries in force at `at`; None when there is no watch_list."""
        table = self.table(WATCH_LIST)
        if table is None:
            return None
        query = sa.select(table).where(table.c.account_id == account_id, *_in_force(table, at))
        with self.engine.connect() as connection:
            return [dict(row._mapping) for row in connection.execute(query)]

    def watched_accounts(self, account_ids: Sequence[str]) -> set[str] | None:
        """Return which of the accounts have a watch-list entry in force now; None without watch_list."""
        table = self.table(WATCH_LIST)
        if table is None:
            return None
        if not account_ids:
            return set()
        query = sa.select(table.c.account_id).where(
            table.c.account_id.in_(list(account_ids)), *_in_force(table, operational.now())
        )
        with self.engine.connect() as connection:
            return set(connection.execute(query).scalars())

    def add_watch(
        self, account_id: str, reason: str, expires_at: datetime | None, created_by: str
    ) -> dict[str, Any]:
        """Insert a watch-list entry; raise TableMissing when the store has no watch_list table."""
        table = self.table(WATCH_LIST)
        if table is None:
            raise TableMissing(WATCH_LIST)
        values: Mapping[str, Any] = {
            "account_id": account_id,
            "reason": reason,
            "expires_at": expires_at,
            "created_at": operational.now(),
            "created_by": created_by,
            "source": created_by,
        }
        row = {name: values[name] for name in WATCH_COLUMNS if name in table.c}
        with self.engine.begin() as connection:
            connection.execute(table.insert().values(**row))
        log.info("added account %s to the watch-list (%s)", account_id, created_by)
        return row


def _current_scores(*conditions: Any) -> Any:
    """Return a subquery of one score per (account, as-of date): the row of the latest run."""
    rank = (
        sa.func.row_number()
        .over(partition_by=(scores.c.account_id, scores.c.as_of), order_by=scores.c.run_id.desc())
        .label("rank")
    )
    ranked = sa.select(scores, rank).where(*conditions).subquery()
    columns = (ranked.c[column.name] for column in scores.columns)
    return sa.select(*columns).where(ranked.c.rank == 1).subquery("current_scores")


def _in_force(table: sa.Table, at: datetime) -> list[Any]:
    conditions: list[Any] = []
    if "expires_at" in table.c:
        conditions.append(sa.or_(table.c.expires_at.is_(None), table.c.expires_at > at))
    if "removed_at" in table.c:
        conditions.append(table.c.removed_at.is_(None))
    return conditions


def _json_or_text(value: str) -> Any:
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value
