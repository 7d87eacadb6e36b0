"""Fixtures of the notification tests: fresh operational stores, tier changes and stand-in servers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from account_health.store import operational
from notify.standins import (
    CRM_TOKEN,
    SLACK_CHANNEL,
    SLACK_TOKEN,
    WEBHOOK_PATH,
    HubSpotStandIn,
    SalesforceStandIn,
    SlackStandIn,
)
from postgres import fresh_database


@pytest.fixture
def sqlite_engine(tmp_path) -> Iterator[sa.Engine]:
    engine = operational.connect(f"sqlite:///{tmp_path / 'operational.sqlite'}")
    operational.upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def postgresql_engine() -> Iterator[sa.Engine]:
    """A fresh PostgreSQL database for one test, migrated, and dropped afterwards."""
    with fresh_database() as url:
        engine = operational.connect(url)
        operational.upgrade(engine)
        try:
            yield engine
        finally:
            engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request) -> sa.Engine:
    return request.getfixturevalue(f"{request.param}_engine")


@pytest.fixture
def slack() -> Iterator[SlackStandIn]:
    stand_in = SlackStandIn()
    yield stand_in
    stand_in.release.set()
    stand_in.close()


@pytest.fixture
def slack_env(monkeypatch, slack: SlackStandIn) -> SlackStandIn:
    monkeypatch.setenv("ACCOUNT_HEALTH_SLACK_TOKEN", SLACK_TOKEN)
    monkeypatch.setenv("ACCOUNT_HEALTH_SLACK_CHANNEL", SLACK_CHANNEL)
    monkeypatch.setenv("ACCOUNT_HEALTH_SLACK_WEBHOOK_URL", slack.url + WEBHOOK_PATH)
    return slack


@pytest.fixture
def crm_env(monkeypatch) -> None:
    monkeypatch.setenv("ACCOUNT_HEALTH_HUBSPOT_TOKEN", CRM_TOKEN)
    monkeypatch.setenv("ACCOUNT_HEALTH_SALESFORCE_TOKEN", CRM_TOKEN)


@pytest.fixture
def hubspot() -> Iterator[HubSpotStandIn]:
    stand_in = HubSpotStandIn(known=set())
    yield stand_in
    stand_in.close()


@pytest.fixture
def salesforce() -> Iterator[SalesforceStandIn]:
    stand_in = SalesforceStandIn(known=set())
    yield stand_in
    stand_in.close()
