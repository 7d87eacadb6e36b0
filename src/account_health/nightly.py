"""The nightly run: ingest, signals, score, tier changes, actions and notifications as one run.

Atomicity across the two stores rests on two facts:

- The ingest is one DuckDB transaction, and loading an export again changes nothing. Rows loaded
  after an as-of date become available after it, so a re-run of that date computes the same signals.
  The copy of the job changes received by the API (`sources.received`) follows the same rules.
- Everything the run writes to the operational store (scores, tier changes, tasks, account actions,
  the notification outbox and the run's "succeeded" status) is written in one transaction.

So a run killed at any step leaves the previous complete run visible and both stores consistent, and
the next run completes the date. A run killed before that transaction commits stays recorded as
"running" until the next nightly run marks it "abandoned". Re-running a date rewrites that date: the
same scores, tier changes, tasks (with the same task ids) and account actions, under a new run id.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy.engine import Connection, Engine

from account_health.actions.build import ActionPlan, build_actions
from account_health.actions.facts import crm_ids
from account_health.asof import days_past_data, default_as_of
from account_health.config import MAX_KNOWLEDGE_LAG_HOURS, SignalSettings, Workspace
from account_health.notify import TierChangeNotice, crm_csv_path, deliver, enqueue, write_crm_csv
from account_health.scoring.changes import tier_changes
from account_health.scoring.score import (
    apply_model,
    changed_signal_settings,
    latest_artifact,
    score_rows,
    signal_frame,
    staleness,
    tier_distribution,
    warn_if_later_scores,
)
from account_health.signals.aggregate import refresh_usage_aggregate
from account_health.sources.canonical import TABLES
from account_health.sources.ingest import IngestReport, ingest
from account_health.sources.received import ReceivedLoad, load_received_job_changes
from account_health.store import actions as action_store
from account_health.store import operational
from account_health.store.analytical import AnalyticalStore
from account_health.store.parquet_export import (
    export_load_id,
    export_parquet,
    latest_load_id,
    spark_export_folder,
)
from account_health.store.provisional import announced_changes

log = logging.getLogger(__name__)

STEPS = ("ingest", "signals", "score", "tier-changes", "actions", "write", "notify", "deliver")


# How far before the as-of instant an event may lie for its late load to be reported: the last local
# day before as_of ends up to 14 hours before it (UTC+14) and is one or two UTC days long.
HIDDEN_EVENT_HOURS = 48
# The tables the signals read that date their rows by an event time or day.
_SIGNAL_EVENT_TABLES = (
    "usage_events",
    "usage_daily",
    "sentiment_responses",
    "tickets",
    "contact_changes",
    "integrations",
)
# The share of those recent rows left out from which a run warns. A feed that always delivers a few
# events late (a tracking SDK's retries) stays below it, while a load the cut-off hides exceeds it.
HIDDEN_SHARE = 0.01


@dataclass(frozen=True)
class HiddenLoad:
    """Rows of recent events that the knowledge cut-off (`known_until`) leaves out but a lag of at most
    `MAX_KNOWLEDGE_LAG_HOURS` would let in."""

    rows: int
    recent: int
    latest_available: datetime
    as_of: datetime
    known_until: datetime
    lag_hours: float

    def needed_lag(self) -> float:
        """Return the smallest tenth of an hour of lag that lets every counted row in (the cut-off is strict)."""
        late = (self.latest_available - self.as_of).total_seconds() / 3600
        return min(MAX_KNOWLEDGE_LAG_HOURS, math.floor(late * 10 + 1e-9) / 10 + 0.1)

    def message(self) -> str:
        them = "them" if self.rows != 1 else "it"
        return (
            f"{self.rows:,} of the {self.recent:,} rows of events in the {HIDDEN_EVENT_HOURS} hours before "
            f"{self.as_of:%Y-%m-%d %H:%M} UTC became available at or after the knowledge cut-off "
            f"{self.known_until:%Y-%m-%d %H:%M} UTC, the latest at {self.latest_available:%Y-%m-%d %H:%M} UTC, "
            f"so the signals as of this date leave {them} out. Set [signals] knowledge_lag_hours to at least "
            f"{self.needed_lag():.1f} (now {self.lag_hours + 0.0:g}) and retrain, or load such rows before "
            "the cut-off."
        )

    def summary(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "recent_rows": self.recent,
            "latest_available": f"{self.latest_available:%Y-%m-%dT%H:%M:%S}",
            "known_until": f"{self.known_until:%Y-%m-%dT%H:%M:%S}",
            "needed_lag_hours": self.needed_lag(),
            "warning": self.message(),
        }


def hidden_load(store: AnalyticalStore, as_of: datetime, settings: SignalSettings) -> HiddenLoad | None:
    """Return the late rows of recent events that the knowledge cut-off leaves out, or None.

    Counted are rows of events in the `HIDDEN_EVENT_HOURS` before `as_of`, from any load, that became
    available at or after the cut-off but before the largest lag. None is returned when they are fewer
    than `HIDDEN_SHARE` of that period's rows.

    Those are the rows of the last local days that a run scheduled after the cut-off, or retried after
    it, leaves out. A row available at its event time (a backfill load without a `loaded_at` column)
    is never among them. Only the tables the signals read with an event time count: accounts, contacts
    and users carry no date that tells yesterday's change from today's. Rows no lag could let in,
    such as a correction of last month or an event that reached its source days late, are left out.
    """
    known_until = as_of + settings.knowledge_lag
    reach = as_of + timedelta(hours=MAX_KNOWLEDGE_LAG_HOURS)
    parts = []
    for name in _SIGNAL_EVENT_TABLES:
        spec = TABLES[name]
        if spec.event_time is not None:
            event = f'"{spec.event_time}"'
        elif spec.event_day is not None:
            # As in the ingest: a day's row describes the whole day, so its event time is the day's end.
            event = f'CAST("{spec.event_day}" AS TIMESTAMP) + INTERVAL 1 DAY - INTERVAL 1 MICROSECOND'
        else:
            continue
        parts.append(
            f'SELECT _available_at FROM "{spec.name}" '
            f"WHERE {event} < $as_of AND {event} >= $as_of - INTERVAL {HIDDEN_EVENT_HOURS} HOUR"
        )
    found = store.connection.execute(
        f"""SELECT count(*) FILTER (WHERE _available_at >= $known_until AND _available_at < $reach),
                   count(*) FILTER (WHERE _available_at < $reach),
                   max(_available_at) FILTER (WHERE _available_at >= $known_until AND _available_at < $reach)
            FROM ({" UNION ALL ".join(parts)})""",
        {"known_until": known_until, "reach": reach, "as_of": as_of},
    ).fetchall()[0]
    hidden, recent, latest = int(found[0]), int(found[1]), found[2]
    if not hidden or hidden < HIDDEN_SHARE * recent:
        return None
    return HiddenLoad(hidden, recent, latest, as_of, known_until, settings.knowledge_lag_hours)


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
    # Days the as-of date lies after the day following the newest ingested data (0 when it does not).
    days_past_data: int = 0
    # The [signals] settings whose workspace value differs from the one the model was trained with.
    signal_settings_changed: list[str] = field(default_factory=list)
    # Recent rows that became available only after the as-of instant's knowledge cut-off.
    hidden_load: HiddenLoad | None = None
    crm_ids: dict[str, str] = field(default_factory=dict)
    # Job changes received by the API that the signals step copied into the analytical store.
    received: ReceivedLoad | None = None
    # Outbox rows this run's changes describe, and what the delivery after the commit did.
    notices: int = 0
    # Tier changes whose Slack message a provisional re-score by the API had already queued.
    announced: int = 0
    delivery: dict[str, Any] | None = None
    # The enabled notifiers: [notify.slack], hubspot, salesforce and crm_file.
    destinations: list[str] = field(default_factory=list)

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
        reason = str(exc) or type(exc).__name__
        operational.finish_run(engine, run_id, "failed", {"error": reason, "step": step})
        # The error itself reaches the caller, and the CLI prints it as its one line.
        log.info("nightly run %d failed in step %s: %s", run_id, step, reason)
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
    gap = days_past_data(store, as_of)
    # Both warnings travel in the run's summary, which the CLI prints, so the log keeps them at info.
    if gap:
        log.info("as of %s is %d days after the newest ingested data", f"{as_of:%Y-%m-%d}", gap)
    hidden = hidden_load(store, as_of, workspace.config.signals)
    if hidden is not None:
        log.info("%s", hidden.message())
    artifact = latest_artifact(engine)
    model_version = artifact["model_version"]
    validated = bool(artifact["validated"])
    stale_days = staleness(artifact, as_of, workspace.config.training.max_model_age_days)

    with steps("signals"):
        # Job changes received by the API since the last copy, so the champion signal counts them.
        received = load_received_job_changes(store, engine)
        _refresh_spark_export(workspace, store)
        # Only the loads since the last refresh are read; the aggregate commits with its watermark.
        if store.has_rows("usage_events"):
            refresh_usage_aggregate(workspace, store)
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
        crm = crm_ids(workspace, store, as_of) if _crm_enabled(workspace) else {}

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
        crm_ids=crm,
    )
    result.days_past_data = gap
    result.hidden_load = hidden
    result.signal_settings_changed = changed_signal_settings(workspace, artifact)
    result.received = received
    notices = _write(workspace, engine, result, artifact, steps)
    result.notices = len(notices)
    result.destinations = workspace.config.notify.enabled()
    with steps("deliver"):
        result.delivery = _deliver(workspace, engine, result, notices, steps)
    return result


def _refresh_spark_export(workspace: Workspace, store: AnalyticalStore) -> None:
    """With the Spark engine, export the canonical tables again when the store has a newer load."""
    folder = spark_export_folder(workspace)
    if folder is not None and export_load_id(folder) != latest_load_id(store):
        export_parquet(store, folder)


def _crm_enabled(workspace: Workspace) -> bool:
    notify = workspace.config.notify
    return notify.hubspot.enabled or notify.salesforce.enabled or notify.crm_file.enabled


def _deliver(
    workspace: Workspace,
    engine: Engine,
    result: NightlyResult,
    notices: list[TierChangeNotice],
    steps: _Steps,
) -> dict[str, Any]:
    """Send the outbox after the run committed; a failed delivery leaves its messages for the next run."""
    notify = workspace.config.notify
    csv_path = None
    if notify.crm_file.enabled:
        csv_path = write_crm_csv(crm_csv_path(workspace, result.as_of), notices)
    report = deliver(
        engine,
        notify,
        progress=lambda destination, done, total: steps.observer.progress(
            "deliver", destination, done, total
        ),
    )
    return {
        "sent": report.sent,
        "unsent": report.unsent,
        "errors": {item.destination: item.error for item in report.destinations if item.error},
        "crm_file": str(csv_path) if csv_path else None,
    }


def _write(
    workspace: Workspace, engine: Engine, result: NightlyResult, artifact: dict[str, Any], steps: _Steps
) -> list[TierChangeNotice]:
    """Write the date's rows, queue their notifications and mark the run succeeded, in one transaction."""
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
            notices = _notify(connection, workspace, result, result.crm_ids)
        result.notices = len(notices)
        action_store.finish_run_in(connection, run_id, "succeeded", as_of, run_summary(result))
    return notices


def _notify(
    connection: Connection, workspace: Workspace, result: NightlyResult, crm: dict[str, str]
) -> list[TierChangeNotice]:
    """Queue the run's tier changes in the outbox, inside the run's transaction; return them.

    `tier_changes_of_run` reads the changes through this uncommitted transaction, with each account's
    action on the date, so the outbox rows commit or roll back with the run's scores. A change that
    a provisional re-score by the API already alerted (same account, previous score and tiers) gets
    no second Slack message.
    """
    horizon = workspace.config.training.horizon_days
    changes = action_store.tier_changes_of_run(connection, result.run_id)
    announced = announced_changes(connection, changes)
    notices = [
        TierChangeNotice(
            run_id=result.run_id,
            as_of=result.as_of,
            account_id=change["account_id"],
            account_name=change["name"],
            old_tier=change["old_tier"],
            new_tier=change["new_tier"],
            probability=float(change["probability"]),
            top_signals=tuple(
                (signal["signal"], float(signal["points_move"]))
                for signal in (change["top_signals"] or [])[:2]
            ),
            action=change["description"] or change["motion"],
            due_date=change["due_date"],
            owner=change["owner"],
            renewal_stage=change["renewal_stage"],
            watch_reason=change["watch_reason"],
            arr=change["arr"],
            crm_id=crm.get(change["account_id"]),
            horizon_days=horizon,
            validated=bool(change["validated"]),
        )
        for change in changes
    ]
    skipped = {notice.change_id for notice in notices if (notice.account_id, notice.new_tier) in announced}
    result.announced = len(skipped)
    enqueue(connection, notices, workspace.config.notify, announced=skipped)
    return notices


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
        "days_past_data": result.days_past_data,
        "hidden_load": result.hidden_load.summary() if result.hidden_load is not None else None,
        "signal_settings_changed": result.signal_settings_changed,
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
        "received_job_changes": _received_summary(result.received),
        "notifications": {
            "queued": result.notices,
            "destinations": result.destinations,
            "already_alerted": result.announced,
            "delivery": result.delivery,
        },
        "timings_seconds": dict(result.timings),
    }


def _received_summary(received: ReceivedLoad | None) -> dict[str, Any] | None:
    if received is None:
        return None
    return {
        "load_id": received.load_id,
        "read": received.read,
        "inserted": received.inserted,
        "new_version": received.new_version,
        "unchanged": received.unchanged,
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
