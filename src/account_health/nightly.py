"""The nightly run: ingest, signals, score, tier changes, actions and notifications as one run.

Atomicity across the two stores rests on two facts:

- The ingest is one DuckDB transaction, and loading an export again changes nothing. Rows loaded
  after an as-of date become available after it, so a re-run of that date computes the same signals.
- Everything the run writes to the operational store (scores, tier changes, tasks, account actions,
  the notification outbox and the run's "succeeded" status) is written in one transaction.

So a run killed at any step leaves the previous complete run visible and both stores consistent, and
the next run completes the date. A run killed before that transaction commits stays recorded as
"running" until the next nightly run marks it "abandoned". Re-running a date rewrites that date: the
same scores, tier changes, tasks (with the same task ids) and account actions, under a new run id.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy.engine import Connection, Engine

from account_health.actions.build import ActionPlan, build_actions
from account_health.asof import default_as_of
from account_health.config import Workspace
from account_health.scoring.changes import tier_changes
from account_health.scoring.score import (
    apply_model,
    latest_artifact,
    score_rows,
    signal_frame,
    staleness,
    tier_distribution,
    warn_if_later_scores,
)
from account_health.sources.ingest import IngestReport, ingest
from account_health.store import actions as action_store
from account_health.store import operational
from account_health.store.analytical import AnalyticalStore

log = logging.getLogger(__name__)

STEPS = ("ingest", "signals", "score", "tier-changes", "actions", "write", "notify")


class RunObserver:
    """Receives the run's progress; the CLI draws it with Rich. Every method may be left as is."""

    def step_started(self, step: str) -> None:
        """Called when a step begins; "write" and "notify" begin inside the store transaction."""

    def step_finished(self, step: str, seconds: float) -> None:
        """Called when a step ends without error."""

    def progress(self, step: str, label: str, done: int, total: int) -> None:
        """Called as a step advances: files read by the ingest, tables written by the write step."""


@dataclass
class NightlyResult:
    run_id: int
    as_of: datetime
    model_version: str
    validated: bool
    scores: pd.DataFrame
    changes: list[dict[str, Any]]
    plan: ActionPlan
    timings: dict[str, float]
    ingest: IngestReport | None
    stale_days: int | None
    abandoned_runs: list[int] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """Return the run's summary as JSON-ready values; also stored in the run's details."""
        return run_summary(self)


def run_nightly(
    workspace: Workspace,
    store: AnalyticalStore,
    engine: Engine,
    as_of: datetime | None = None,
    ingest_sources: bool = True,
    observer: RunObserver | None = None,
) -> NightlyResult:
    """Run every nightly step for `as_of` (the default as-of date when None) and commit them as one run.

    `store` must be open for writing: DuckDB then admits no other writing process, which is what makes
    marking earlier runs still recorded as running "abandoned" safe.
    """
    observer = observer or RunObserver()
    abandoned = action_store.abandon_running(engine)
    if abandoned:
        log.warning("marked nightly runs %s abandoned: they stopped before committing", abandoned)
    run_id = operational.start_run(engine, action_store.NIGHTLY, as_of)
    log.info("nightly run %d started", run_id)
    steps = _Steps(observer)
    try:
        result = _run(workspace, store, engine, as_of, ingest_sources, run_id, steps, abandoned)
    except BaseException as exc:
        step = steps.current or "(between steps)"
        operational.finish_run(engine, run_id, "failed", {"error": str(exc), "step": step})
        log.error("nightly run %d failed in step %s: %s", run_id, step, exc)
        raise
    warn_if_later_scores(engine, result.as_of)
    log.info("nightly run %d succeeded for %s", run_id, f"{result.as_of:%Y-%m-%d}")
    return result


def _run(
    workspace: Workspace,
    store: AnalyticalStore,
    engine: Engine,
    requested: datetime | None,
    ingest_sources: bool,
    run_id: int,
    steps: _Steps,
    abandoned: list[int],
) -> NightlyResult:
    report = None
    if ingest_sources and workspace.config.sources:
        with steps("ingest"):
            report = ingest(
                workspace,
                store,
                progress=lambda source, file, done, total: steps.observer.progress(
                    "ingest", f"{source}: {file}", done, total
                ),
            )
    as_of = requested or default_as_of(store)
    artifact = latest_artifact(engine)
    model_version = artifact["model_version"]
    validated = bool(artifact["validated"])
    stale_days = staleness(artifact, as_of, workspace.config.training.max_model_age_days)

    with steps("signals"):
        signals = signal_frame(workspace, store, as_of)
    with steps("score"):
        previous = operational.previous_scores(engine, as_of)
        previous_tiers = {account: row["tier"] for account, row in previous.items()}
        scores = apply_model(workspace, signals, artifact, previous_tiers)
    with steps("tier-changes"):
        settings = artifact.get("signal_settings", {})
        changes = tier_changes(scores, previous, as_of, run_id, model_version, validated, settings)
    with steps("actions"):
        plan = build_actions(workspace, store, engine, scores, as_of, run_id, model_version, validated)

    result = NightlyResult(
        run_id,
        as_of,
        model_version,
        validated,
        scores,
        changes,
        plan,
        steps.timings,
        report,
        stale_days,
        abandoned,
    )
    _write(engine, result, artifact, steps)
    return result


def _write(engine: Engine, result: NightlyResult, artifact: dict[str, Any], steps: _Steps) -> None:
    """Write the date's rows and mark the run succeeded, in one transaction."""
    as_of, run_id = result.as_of, result.run_id
    action_rows = [action.row(run_id) for action in result.plan.actions]
    with engine.begin() as connection:
        with steps("write"):
            writes = [
                ("scores", lambda: operational.replace_scores_in(
                    connection, as_of, result.model_version, score_rows(result.scores, as_of, artifact, run_id)
                )),
                ("tier_changes", lambda: action_store.replace_tier_changes(connection, as_of, result.changes)),
                ("tasks", lambda: action_store.sync_tasks(connection, as_of, result.plan.tasks.rows)),
                ("account_actions", lambda: action_store.replace_account_actions(connection, as_of, action_rows)),
            ]  # fmt: skip
            for done, (table, write) in enumerate(writes, start=1):
                write()
                steps.observer.progress("write", table, done, len(writes))
        with steps("notify"):
            _notify(connection, run_id, result.changes)
        action_store.finish_run_in(connection, run_id, "succeeded", as_of, run_summary(result))


def _notify(connection: Connection, run_id: int, changes: Sequence[dict[str, Any]]) -> None:
    """Queue the run's tier changes for notification, inside the run's transaction.

    `store.actions.tier_changes_of_run(connection, run_id)` returns each change with the fields a
    message needs, read through this uncommitted transaction.

    TODO: write the outbox rows here once the notify stage exists; until then nothing is queued.
    """


class _Steps:
    """Times each step and reports it to the observer; `current` names the step that is running."""

    def __init__(self, observer: RunObserver) -> None:
        self.observer = observer
        self.timings: dict[str, float] = {}
        self.current: str | None = None

    def __call__(self, step: str) -> _Step:
        return _Step(self, step)


class _Step:
    def __init__(self, steps: _Steps, name: str) -> None:
        self.steps = steps
        self.name = name
        self.started = 0.0

    def __enter__(self) -> None:
        self.steps.current = self.name
        self.started = time.perf_counter()
        log.info("step %s started", self.name)
        self.steps.observer.step_started(self.name)

    def __exit__(self, kind: object, *_rest: object) -> None:
        if kind is not None:
            return
        self.steps.current = None
        seconds = round(time.perf_counter() - self.started, 3)
        self.steps.timings[self.name] = seconds
        log.info("step %s finished in %.2f s", self.name, seconds)
        self.steps.observer.step_finished(self.name, seconds)


def run_summary(result: NightlyResult) -> dict[str, Any]:
    """Return the summary of a run: counts per tier, tier changes, tasks, overflow and step timings."""
    tasks = result.plan.tasks
    new_tiers = Counter(change["new_tier"] for change in result.changes)
    return {
        "run_id": result.run_id,
        "as_of": f"{result.as_of:%Y-%m-%dT%H:%M:%S}",
        "model_version": result.model_version,
        "validated": result.validated,
        "stale_model_days": result.stale_days,
        "abandoned_runs": result.abandoned_runs,
        "ingest": _ingest_summary(result.ingest),
        "accounts_scored": len(result.scores),
        "tiers": {tier: count for tier, count, _share in tier_distribution(result.scores)},
        "tier_changes": {
            "total": len(result.changes),
            "by_new_tier": dict(sorted(new_tiers.items())),
            "into_red_or_orange": new_tiers.get("Red", 0) + new_tiers.get("Orange", 0),
        },
        "tasks": {
            "open": tasks.open,
            "overflow": tasks.overflow,
            "cooldown": tasks.cooldown,
            "overflow_by_owner": tasks.overflow_by_owner,
            "carried_by_owner": tasks.carried_by_owner,
        },
        "watched_accounts": sum(1 for action in result.plan.actions if action.watch_reason),
        "departed_champions": sum(
            1 for action in result.plan.actions if action.champion_strength == "departed"
        ),
        "candidates_without_activity": result.plan.candidates_without_activity,
        "timings_seconds": dict(result.timings),
    }


def _ingest_summary(report: IngestReport | None) -> dict[str, Any] | None:
    if report is None:
        return None
    return {
        "load_id": report.load_id,
        "sources": [
            {
                "source": counts.source,
                "table": counts.table,
                "read": counts.read,
                "inserted": counts.inserted,
                "new_version": counts.new_version,
                "unchanged": counts.unchanged,
                "quarantined": counts.quarantined,
                "unattributed": counts.unattributed,
            }
            for counts in report.sources
        ],
    }


__all__ = ["STEPS", "NightlyResult", "RunObserver", "run_nightly", "run_summary"]
