from __future__ import annotations

import csv
from pathlib import Path

import sqlalchemy as sa

from account_health.config import NotifySettings
from account_health.notify import crm_csv_path, deliver, enqueue, outbox_counts, outbox_entries, write_crm_csv
from notify.changes import FAST, notice
from notify.standins import HubSpotStandIn, SalesforceStandIn


def _settings(hubspot: HubSpotStandIn | None = None, salesforce: SalesforceStandIn | None = None, **options):
    values: dict = {}
    if hubspot is not None:
        values["hubspot"] = {"enabled": True, "base_url": hubspot.url, **FAST, **options}
    if salesforce is not None:
        values["salesforce"] = {"enabled": True, "base_url": salesforce.url, **FAST, **options}
    return NotifySettings.model_validate(values)


def _enqueue(engine: sa.Engine, changes, settings) -> None:
    with engine.begin() as connection:
        enqueue(connection, changes, settings)


def test_hubspot_partial_failure_keeps_failed_records(engine, crm_env, hubspot: HubSpotStandIn):
    changes = [notice(number) for number in range(250)]
    missing = {"C00007", "C00140"}
    hubspot.known = {change.crm_id for change in changes if change.crm_id not in missing}
    hubspot.rate_limit_every, hubspot.fail_every = 3, 7
    settings = _settings(hubspot)
    _enqueue(engine, changes, settings)

    report = deliver(engine, settings)

    assert hubspot.batch_sizes and max(hubspot.batch_sizes) == 100, hubspot.batch_sizes
    assert report.sent == 248, report
    assert len(hubspot.companies) == 248
    assert hubspot.companies["C00001"]["account_health_tier"] == "Orange"
    assert hubspot.companies["C00001"]["account_health_churn_probability"] == "0.5"
    failed = outbox_entries(engine, "failed")
    assert sorted(entry.account_id for entry in failed) == ["A00007", "A00140"]
    assert all(entry.last_error and "OBJECT_NOT_FOUND" in entry.last_error for entry in failed)


def test_hubspot_failed_records_go_on_the_next_delivery(sqlite_engine, crm_env, hubspot: HubSpotStandIn):
    changes = [notice(number) for number in range(5)]
    hubspot.known = {"C00000", "C00001"}
    settings = _settings(hubspot)
    _enqueue(sqlite_engine, changes, settings)
    deliver(sqlite_engine, settings)
    hubspot.known = {change.crm_id for change in changes if change.crm_id}

    report = deliver(sqlite_engine, settings)

    assert report.sent == 3
    assert outbox_counts(sqlite_engine) == {("hubspot", "sent"): 5}
    assert sorted(hubspot.updates) == sorted(change.crm_id for change in changes)


def test_hubspot_bad_token_stops(sqlite_engine, crm_env, hubspot: HubSpotStandIn, monkeypatch):
    monkeypatch.setenv("ACCOUNT_HEALTH_HUBSPOT_TOKEN", "wrong")
    settings = _settings(hubspot)
    _enqueue(sqlite_engine, [notice(1)], settings)
    report = deliver(sqlite_engine, settings)
    assert report.destinations[0].error is not None and "HTTP 401" in report.destinations[0].error
    assert "wrong" not in report.destinations[0].error


def test_salesforce_partial_failure_keeps_failed_records(engine, crm_env, salesforce: SalesforceStandIn):
    changes = [notice(number) for number in range(450)]
    changes[3] = notice(3, action="Forbidden action")
    salesforce.known = {change.crm_id for change in changes if change.crm_id != "C00100"}
    salesforce.invalid_value = "Forbidden action"
    salesforce.rate_limit_every, salesforce.fail_every = 3, 7
    settings = _settings(salesforce=salesforce)
    _enqueue(engine, changes, settings)

    report = deliver(engine, settings)

    assert max(salesforce.batch_sizes) == 200, salesforce.batch_sizes
    assert report.sent == 448, report
    assert salesforce.accounts["C00001"]["Health_Tier__c"] == "Orange"
    assert salesforce.accounts["C00001"]["Churn_Probability__c"] == 0.5
    errors = {entry.account_id: entry.last_error for entry in outbox_entries(engine, "failed")}
    assert sorted(errors) == ["A00003", "A00100"]
    assert "FIELD_CUSTOM_VALIDATION_EXCEPTION" in str(errors["A00003"])
    assert "ENTITY_IS_DELETED" in str(errors["A00100"])


def test_same_record_twice_goes_in_order(sqlite_engine, crm_env, salesforce: SalesforceStandIn):
    from notify.changes import AS_OF

    later = AS_OF.replace(day=5)
    changes = [notice(1, new_tier="Red"), notice(1, new_tier="Yellow", old_tier="Red", as_of=later)]
    salesforce.known = {"C00001"}
    settings = _settings(salesforce=salesforce)
    _enqueue(sqlite_engine, changes, settings)

    deliver(sqlite_engine, settings)

    assert salesforce.batch_sizes == [1, 1]
    assert salesforce.accounts["C00001"]["Health_Tier__c"] == "Yellow"


def test_crm_csv_escapes_formulas(tmp_path: Path):
    changes = [
        notice(1, account_name='=HYPERLINK("http://x")', owner="+owner", action="@risk", crm_id=None),
        notice(2, account_name="Plain, Inc."),
    ]
    path = write_crm_csv(tmp_path / "exports" / "crm.csv", changes)
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows[0]["account_name"] == '\'=HYPERLINK("http://x")'
    assert rows[0]["owner"] == "'+owner"
    assert rows[0]["action"] == "'@risk"
    assert rows[0]["crm_id"] == ""
    assert rows[1]["account_name"] == "Plain, Inc."
    assert rows[1]["probability"] == "0.5"
    assert rows[1]["top_signals"] == "usage_trend +12.5 points; support_load +4.2 points"
    assert list(path.parent.iterdir()) == [path]


def test_crm_csv_path_follows_the_config(tmp_path: Path):
    from account_health.config import Workspace, parse_config
    from notify.changes import AS_OF

    workspace = Workspace(parse_config({"notify": {"crm_file": {"enabled": True}}}), tmp_path)
    assert crm_csv_path(workspace, AS_OF) == tmp_path / "exports" / "crm-updates-2026-12-04.csv"


def test_hubspot_id_property_addresses_by_account_id(sqlite_engine, crm_env, hubspot: HubSpotStandIn):
    hubspot.known = {"A00001"}
    settings = _settings(hubspot, id_property="account_health_account_id")
    _enqueue(sqlite_engine, [notice(1, crm_id=None)], settings)

    report = deliver(sqlite_engine, settings)

    assert report.sent == 1
    assert hubspot.id_properties == ["account_health_account_id"]
    assert hubspot.companies["A00001"]["account_health_tier"] == "Orange"


def test_disabled_destinations_enqueue_nothing(sqlite_engine):
    with sqlite_engine.begin() as connection:
        added = enqueue(connection, [notice(1, new_tier="Red")], NotifySettings())
    assert added == 0
    assert outbox_counts(sqlite_engine) == {}
