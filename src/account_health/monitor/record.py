"""Keep the gist of each monitoring report in the operational store, where the dashboard reads it."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from account_health.monitor.report import MonitorReport
from account_health.store import operational

MONITOR_RUN = "monitor"


def report_summary(report: MonitorReport, files: list[Path]) -> dict[str, Any]:
    """Return what a reader needs at a glance: the retrain advice, the alerts and the largest drift."""
    drifts = [entry for entry in report.feature_drift if not math.isnan(entry.psi)]
    largest = max(drifts, key=lambda entry: entry.psi, default=None)
    return {
        "as_of": f"{report.as_of:%Y-%m-%d}",
        "model_version": report.model_version,
        "model_age_days": report.model_age.age_days,
        "retrain_recommended": report.retrain_recommended,
        "unchecked": report.unchecked(),
        "retrain_reasons": [
            {"kind": alert.kind, "message": alert.message} for alert in report.retrain_reasons
        ],
        "alerts": [{"kind": alert.kind, "message": alert.message} for alert in report.alerts],
        "largest_drift": None
        if largest is None
        else {"feature": largest.feature, "psi": round(largest.psi, 4), "level": largest.level},
        "files": [str(path) for path in files],
    }


def record_report(engine: Engine, report: MonitorReport, files: list[Path]) -> int:
    """Store the report's summary as a succeeded run of kind "monitor"; return the run id."""
    run_id = operational.start_run(engine, MONITOR_RUN, report.as_of)
    operational.finish_run(engine, run_id, "succeeded", report_summary(report, files))
    return run_id


def latest_report_summary(engine: Engine) -> dict[str, Any] | None:
    """Return the summary of the newest monitoring report, or None when none was recorded."""
    runs = operational.runs
    query = (
        sa.select(runs.c.details)
        .where(runs.c.kind == MONITOR_RUN, runs.c.status == "succeeded")
        .order_by(runs.c.run_id.desc())
        .limit(1)
    )
    with engine.connect() as connection:
        details = connection.execute(query).scalar()
    return json.loads(details) if details else None
