"""Every read and write of the operational store that the API and the dashboard make.

The scores history, the model registry, the tables of the nightly run (`account_actions`, `tasks`,
`watch_list`, `tier_changes`, migration 0003) and the provisional scores of the job-change webhook
(migration 0007) always exist once the store is migrated. Reads of the
nightly run's tables go through `store.actions`, the same functions as the CLI's; watch-list writes
go through `actions.watch`, with the same checks as `account-health watch`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar, cast

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from account_health.store import actions as action_store
from account_health.store import operational
from account_health.store.actions import account_actions
from account_health.store.operational import models, runs, scores
from account_health.store.provisional import current_provisional_score
from account_health.training.artifact import parse_artifact

T = TypeVar("T")

# Models kept in memory by version. A store contains one per training run, so this is rarely reached.
MODELS_CACHED = 64
# Reasons kept in memory per stored score; a score row never changes once its run wrote it.
REASONS_CACHED = 10_000

# The two reads of every health and experience request, built once: building a statement and its
# cache key costs SQLAlchemy more CPU than SQLite spends running it.
_LATEST_SCORE = (
    sa.select(scores)
    .where(scores.c.account_id == sa.bindparam("account_id"))
    .order_by(scores.c.as_of.desc(), scores.c.run_id.desc())
    .limit(1)
)
_WATCH_IN_FORCE = (
    sa.select(action_store.watch_list)
    .where(
        action_store.watch_list.c.account_id == sa.bindparam("account_id"),
        action_store.watch_list.c.removed_at.is_(None),
        action_store.watch_list.c.until >= sa.bindparam("on"),
    )
    .order_by(action_store.watch_list.c.until.desc(), action_store.watch_list.c.watch_id.desc())
    .limit(1)
)


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
    """Queries of one operational store."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._lock = threading.Lock()
        self._artifacts: dict[tuple[str, str], dict[str, Any]] = {}
        self._models: dict[str, ModelInfo] = {}
        self._reasons: dict[tuple[Any, ...], Any] = {}

    # -- scores ------------------------------------------------------------------------------------

    def latest_as_of(self) -> datetime | None:
        with self.engine.connect() as connection:
            return connection.execute(sa.select(sa.func.max(scores.c.as_of))).scalar()

    def latest_score(self, account_id: str) -> dict[str, Any] | None:
        """Return the account's newest score (latest as-of date, then latest run), or None."""
        with self.engine.connect() as connection:
            row = connection.execute(_LATEST_SCORE, {"account_id": account_id}).first()
        return dict(row._mapping) if row is not None else None

    def provisional_score(self, account_id: str) -> dict[str, Any] | None:
        """Return the account's provisional score that no stored score supersedes yet, with its job change, or None."""
        return current_provisional_score(self.engine, account_id)

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
        """Return the accounts scored on the latest date, riskiest first, with that date's account actions.

        Name, owner, ARR and renewal stage come from the nightly run's `account_actions` of the same
        as-of date; they are None for an account scored by `account-health score` alone, and such an
        account never matches an owner or renewal-stage filter. `watched` is whether a watch-list
        entry is in force on the as-of date, as `account-health explain` shows it.
        """
        as_of = self.latest_as_of()
        if as_of is None:
            return AccountPage(None, 0, [])
        current = _current_scores(scores.c.as_of == as_of)
        columns: list[Any] = [
            current.c.account_id,
            current.c.as_of,
            current.c.probability,
            current.c.tier,
            current.c.model_version,
            current.c.validated,
            account_actions.c.name,
            account_actions.c.owner,
            account_actions.c.arr,
            account_actions.c.renewal_stage,
        ]
        source = current.outerjoin(
            account_actions,
            sa.and_(
                account_actions.c.account_id == current.c.account_id,
                account_actions.c.as_of == current.c.as_of,
            ),
        )
        conditions: list[Any] = []
        if tiers:
            conditions.append(current.c.tier.in_(list(tiers)))
        if owner is not None:
            conditions.append(account_actions.c.owner == owner)
        if renewal_stage is not None:
            conditions.append(account_actions.c.renewal_stage == renewal_stage)

        base = sa.select(*columns).select_from(source).where(*conditions)
        count = sa.select(sa.func.count()).select_from(base.subquery())
        page = base.order_by(current.c.probability.desc(), current.c.account_id).limit(limit).offset(offset)
        with self.engine.connect() as connection:
            total = int(connection.execute(count).scalar_one())
            rows = [dict(row._mapping) for row in connection.execute(page)]
        watched = action_store.active_watches(
            self.engine, as_of, account_ids=[row["account_id"] for row in rows]
        )
        for row in rows:
            row["watched"] = row["account_id"] in watched
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

    def reasons_of(self, row: dict[str, Any], explain: Callable[[dict[str, Any]], T]) -> T:
        """Return `explain(row)` for a score, computed once per stored score and run, or per provisional score."""
        # Neither kind of row changes once written: a provisional score has no run, but its own id.
        key = (
            row["account_id"],
            row["as_of"],
            row["model_version"],
            row.get("run_id"),
            row.get("provisional_id"),
        )
        found = self._reasons.get(key)
        if found is None:
            found = explain(row)
            with self._lock:
                if len(self._reasons) >= REASONS_CACHED:
                    self._reasons.clear()
                self._reasons[key] = found
        return cast(T, found)

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

    # -- tables of the nightly run ---------------------------------------------------------------

    def account_action(self, account_id: str, as_of: datetime) -> dict[str, Any] | None:
        """Return the account's action of the as-of date (JSON columns parsed), or None when not written."""
        found = action_store.read_account_actions(self.engine, as_of, account_id)
        return found[0] if found else None

    def tasks(self, account_id: str) -> list[dict[str, Any]]:
        """Return the account's tasks in force on the latest nightly run's as-of date, as `account-health tasks`."""
        return action_store.read_tasks(self.engine, account_id=account_id)

    def watch_in_force(self, account_id: str, on: datetime) -> dict[str, Any] | None:
        """Return the account's watch-list entry in force on the as-of date `on` (the one expiring last)."""
        with self.engine.connect() as connection:
            row = connection.execute(_WATCH_IN_FORCE, {"account_id": account_id, "on": on}).first()
        return dict(row._mapping) if row is not None else None

    def watch_entries(self, account_id: str) -> list[dict[str, Any]]:
        """Return every watch-list entry of the account, removed and expired ones included, oldest first."""
        return action_store.list_watches(self.engine, include_inactive=True, account_id=account_id)


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
