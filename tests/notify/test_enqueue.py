from __future__ import annotations

import json
from datetime import datetime

import pytest
import sqlalchemy as sa

from account_health.config import NotifySettings, parse_config
from account_health.errors import ConfigError
from account_health.notify import enqueue, outbox_counts
from account_health.store.outbox import outbox
from notify.changes import notice

EVERYTHING = NotifySettings.model_validate(
    {
        "slack": {"enabled": True},
        "hubspot": {"enabled": True},
        "salesforce": {"enabled": True, "base_url": "http://127.0.0.1:9"},
    }
)


def _rows(engine: sa.Engine) -> list[dict]:
    with engine.connect() as connection:
        return [
            dict(row._mapping) for row in connection.execute(sa.select(outbox).order_by(outbox.c.message_id))
        ]


def test_enqueue_twice_adds_nothing(engine):
    changes = [notice(number) for number in range(10)]
    with engine.begin() as connection:
        first = enqueue(connection, changes, EVERYTHING)
    with engine.begin() as connection:
        second = enqueue(connection, changes, EVERYTHING)
    red_orange = sum(change.new_tier in ("Red", "Orange") for change in changes)
    # One message per Red or Orange change, one digest, and one update per CRM per change.
    assert first == red_orange + 1 + 2 * len(changes)
    assert second == 0
    assert len(_rows(engine)) == first


def test_enqueue_rolls_back_with_the_caller(engine):
    with pytest.raises(RuntimeError), engine.begin() as connection:
        enqueue(connection, [notice(1)], EVERYTHING)
        raise RuntimeError("the run failed after enqueueing")
    assert _rows(engine) == []


def test_digest_takes_only_changes_not_yet_digested(sqlite_engine):
    settings = NotifySettings.model_validate({"slack": {"enabled": True}})
    yellow = [notice(number, new_tier="Yellow") for number in range(4)]
    with sqlite_engine.begin() as connection:
        enqueue(connection, yellow[:2], settings)
    with sqlite_engine.begin() as connection:
        added = enqueue(connection, yellow, settings)
    digests = [json.loads(row["payload"]) for row in _rows(sqlite_engine)]
    assert added == 1
    assert [len(digest["items"]) for digest in digests] == [2, 2]


def test_red_and_orange_get_a_message_each(sqlite_engine):
    settings = NotifySettings.model_validate({"slack": {"enabled": True}})
    changes = [notice(1, new_tier="Red"), notice(2, new_tier="Orange"), notice(3, new_tier="Green")]
    with sqlite_engine.begin() as connection:
        enqueue(connection, changes, settings)
    kinds = [(row["kind"], row["account_id"]) for row in _rows(sqlite_engine)]
    assert kinds == [("tier_change", "A00001"), ("tier_change", "A00002"), ("digest", None)]


def test_crm_update_needs_a_crm_id(sqlite_engine, caplog):
    settings = NotifySettings.model_validate({"hubspot": {"enabled": True}})
    with sqlite_engine.begin() as connection:
        added = enqueue(connection, [notice(1, crm_id=None), notice(2)], settings)
    assert added == 1
    assert "have no crm_id" in caplog.text


def test_hubspot_id_property_uses_the_account_id(sqlite_engine):
    settings = NotifySettings.model_validate({"hubspot": {"enabled": True, "id_property": "account_id"}})
    with sqlite_engine.begin() as connection:
        enqueue(connection, [notice(1, crm_id=None)], settings)
    (row,) = _rows(sqlite_engine)
    payload = json.loads(row["payload"])
    assert payload["record_id"] == "A00001"
    assert payload["fields"]["account_health_tier"] == "Orange"


def test_new_as_of_is_a_new_change(sqlite_engine):
    settings = NotifySettings.model_validate({"slack": {"enabled": True}})
    with sqlite_engine.begin() as connection:
        enqueue(connection, [notice(1, new_tier="Red")], settings)
        added = enqueue(connection, [notice(1, new_tier="Red", as_of=datetime(2026, 12, 5))], settings)
    assert added == 1
    assert outbox_counts(sqlite_engine) == {("slack", "pending"): 2}


def test_unknown_immediate_tier_is_rejected():
    with pytest.raises(ConfigError, match="'red' is not a tier"):
        parse_config({"notify": {"slack": {"immediate_tiers": ["red"]}}})


def test_salesforce_needs_an_instance_url():
    with pytest.raises(ConfigError, match="base_url is required when Salesforce is enabled"):
        parse_config({"notify": {"salesforce": {"enabled": True}}})
