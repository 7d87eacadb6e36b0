from __future__ import annotations

import json
import warnings
from dataclasses import replace
from datetime import datetime

import pytest
from rich.console import Console

from account_health.cli.render import monitor_summary
from account_health.config import MonitorSettings
from account_health.errors import AccountHealthWarning, NoDataError
from account_health.monitor import MonitorReport, build_report
from account_health.monitor.alerts import report_alerts
from account_health.monitor.files import report_json, write_report_files
from account_health.workspace import open_stores
from console import run_cli

from .conftest import CHANGE_DATE, DATA_END, MonitoredCompany


def _report(company: MonitoredCompany, as_of: datetime) -> MonitorReport:
    with open_stores(company.workspace, create=False) as (store, engine), warnings.catch_warnings():
        warnings.simplefilter("ignore", AccountHealthWarning)
        return build_report(company.workspace, store, engine, as_of)


@pytest.fixture(scope="module")
def unchanged(monitored_company: MonitoredCompany) -> MonitorReport:
    """As of the change date: a fresh model on data where nothing has changed yet."""
    return _report(monitored_company, CHANGE_DATE)


@pytest.fixture(scope="module")
def changed(monitored_company: MonitoredCompany) -> MonitorReport:
    """As of the end of the data: the same model, nine months after the usage weight doubled."""
    return _report(monitored_company, DATA_END)


def test_fresh_model_needs_no_retrain(unchanged: MonitorReport):
    reasons = [(reason.kind, reason.message) for reason in unchanged.retrain_reasons]
    assert reasons == []
    assert not unchanged.retrain_recommended
    assert [alert.kind for alert in unchanged.alerts] == []
    assert unchanged.model_age.age_days == 0
    assert unchanged.weights.changed_signals() == []
    assert unchanged.weights.note == ""
    assert unchanged.weights.critical_z is not None
    assert all(entry.z is None or abs(entry.z) < 2 for entry in unchanged.weights.columns)
    assert all(entry.level == "stable" for entry in unchanged.feature_drift), unchanged.feature_drift
    assert all(period.within_bounds for period in unchanged.calibration)


def test_doubled_weight_names_usage(changed: MonitorReport):
    kinds = [reason.kind for reason in changed.retrain_reasons]
    assert "weight_drift" in kinds
    assert changed.weights.changed_signals() == ["usage"]
    assert changed.weights.note == ""
    (weight,) = [reason for reason in changed.retrain_reasons if reason.kind == "weight_drift"]
    assert weight.details["signal"] == "usage"
    assert "usage" in weight.message
    usage = next(entry for entry in changed.weights.columns if entry.column == "usage_trend")
    # The true coefficient doubled, so the refit should be near twice the model's (negative) weight.
    assert usage.refit is not None
    assert usage.refit < usage.model_low
    assert 1.5 < usage.refit / usage.model < 3.0, (usage.model, usage.refit)
    assert [alert.kind for alert in changed.alerts] == ["retrain"]


def test_old_model_is_a_reason(changed: MonitorReport):
    assert changed.model_age.age_days == (DATA_END - CHANGE_DATE).days
    assert "model_age" in [reason.kind for reason in changed.retrain_reasons]


def test_calibration_periods_have_closed(changed: MonitorReport):
    dates = [period.scoring_date for period in changed.calibration]
    assert dates == [datetime(2025, 12, 6), CHANGE_DATE, datetime(2026, 6, 4), datetime(2026, 9, 2)]
    for period in changed.calibration:
        assert [entry["tier"] for entry in period.tiers] == ["Red", "Orange", "Yellow", "Green", "Dark-Green"]
        assert period.accounts == sum(entry["rows"] for entry in period.tiers)
        assert period.roc_auc is not None and period.roc_auc > 0.7


def test_arr_figures_add_up(changed: MonitorReport):
    latest = changed.latest_distribution
    assert latest is not None
    assert sum(entry.accounts for entry in changed.arr) == latest.scores
    assert all(0 <= entry.arr_at_risk <= entry.arr for entry in changed.arr)
    (caught,) = changed.churned_arr
    assert caught.window_end == DATA_END
    assert caught.churn_events > 0
    assert 0 <= caught.caught_arr <= caught.churned_arr


def test_alerts_follow_config(changed: MonitorReport):
    settings = changed_settings(changed, red_orange_alert_share=0.01, business_alerts=True)
    kinds = [alert.kind for alert in report_alerts(changed, settings)]
    assert kinds[0] == "red_orange_share"
    assert "business_band" in kinds
    assert kinds[-1] == "retrain"


def changed_settings(report: MonitorReport, **values: object) -> MonitorSettings:
    return MonitorSettings.model_validate({**report.settings, **values})


def test_business_bands_conflict_with_cutoffs(changed: MonitorReport):
    conflicting = [
        text.split(" tier")[0].removeprefix("a calibrated ") for text in changed.business.conflicts
    ]
    assert conflicting == ["Red", "Orange", "Green"]
    assert changed.business.scoring_dates == 4


def test_report_files_and_json(changed: MonitorReport, tmp_path):
    files = write_report_files(changed, tmp_path / "out")
    for path in files.paths():
        assert path.stat().st_size > 0, path
    assert set(files.plots) == {"tiers", "calibration", "drift"}
    markdown = files.markdown.read_text()
    assert markdown.startswith("# Retrain recommended")
    assert "cannot all hold at once" in markdown
    html = files.html.read_text()
    assert "<script" not in html
    assert files.plots["drift"].name in html

    def reject(constant: str) -> None:
        raise AssertionError(f"JSON contains {constant}")

    data = json.loads(report_json(changed), parse_constant=reject)
    assert data["retrain_recommended"] is True
    assert data["weights"]["changed_signals"] == ["usage"]
    assert {alert["kind"] for alert in data["alerts"]} == {"retrain"}
    sentiment = next(entry for entry in data["weights"]["columns"] if entry["column"] == "sentiment_missing")
    assert sentiment["refit"] is None


def test_report_without_scores_raises(monitored_company: MonitoredCompany):
    with pytest.raises(NoDataError, match="no scores on or before 2025-01-01"):
        _report(monitored_company, datetime(2025, 1, 1))


def test_fresh_report_uses_only_past(unchanged: MonitorReport):
    assert unchanged.latest_distribution is not None
    assert unchanged.latest_distribution.last_date == CHANGE_DATE
    assert [period.scoring_date for period in unchanged.calibration] == [datetime(2025, 12, 6)]
    assert unchanged.weights.snapshots == [datetime(2025, 12, 6)]
    assert replace(unchanged.model_age, age_days=91).too_old


def test_cli_report_prints_json(monitored_company: MonitoredCompany, tmp_path):
    folder = str(monitored_company.workspace.root)
    out = tmp_path / "cli"
    result = run_cli("-w", folder, "report", "--as-of", "2026-12-01", "--json", "--out", str(out))
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["as_of"].startswith("2026-12-01")
    assert data["retrain_recommended"] is True
    assert sorted(path.rsplit("/", 1)[1] for path in data["files"]) == sorted(
        path.name for path in out.iterdir()
    )
    # The dashboard's model page reads the gist of the newest report from the operational store.
    from account_health.monitor.record import latest_report_summary
    from account_health.store import operational

    engine = operational.connect(monitored_company.workspace.operational_store_url)
    summary = latest_report_summary(engine)
    engine.dispose()
    assert summary is not None and summary["as_of"] == "2026-12-01"
    assert summary["retrain_recommended"] is True and summary["files"] == data["files"]


def test_summary_names_verdict(unchanged: MonitorReport, changed: MonitorReport):
    for report, first_line in ((unchanged, "No retrain needed"), (changed, "Retrain recommended")):
        console = Console(record=True, width=200)
        monitor_summary(console, report)
        text = console.export_text()
        assert text.startswith(first_line), text
    assert "weight_drift: the usage signal's weight has moved" in text


def test_verdict_names_checks_not_made(unchanged: MonitorReport):
    assert unchanged.verdict() == "calibration, weights, drift and model age are within bounds"

    early = replace(unchanged, calibration=[])
    assert early.verdict() == (
        "weights, drift and model age are within bounds; "
        "not checked yet: calibration (no scoring date's horizon has closed yet)"
    )
    console = Console(record=True, width=300)
    monitor_summary(console, early)
    assert "not checked yet: calibration" in console.export_text()

    untested = replace(
        unchanged, weights=replace(unchanged.weights, tested=False, note="not tested: 24 churn events")
    )
    assert untested.verdict() == (
        "calibration, drift and model age are within bounds; not checked yet: weights (not tested: 24 churn events)"
    )
    assert untested.to_dict()["unchecked"] == ["weights (not tested: 24 churn events)"]
    assert unchanged.to_dict()["unchecked"] == []

    nothing = replace(
        early, weights=replace(unchanged.weights, columns=[], note="no refit: too few rows"), feature_drift=[]
    )
    assert nothing.verdict() == (
        "model age is within bounds; not checked yet: calibration (no scoring date's horizon has closed yet); "
        "weights (no refit: too few rows); drift (no scores to compare with the training data)"
    )
