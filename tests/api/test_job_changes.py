"""POST /v1/job-changes: a champion's departure re-scores the account at once and alerts a move into Red or Orange.

Against a copy of the nightly tests' company, on SQLite and PostgreSQL, with a Slack stand-in on
127.0.0.1. The company's own model ignores its champions, so `rescorable` registers a copy that
weighs them (tests/champion_model.py) and runs a real nightly run of SCORED with it. The API's
clock is set to RECEIVED, the day of that run, so the next nightly run (as of PROVISIONAL) is the
one that sees the change.
"""

from __future__ import annotations

import json
import math
import threading
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config as AlembicConfig
from alembic.migration import MigrationContext
from fastapi.testclient import TestClient

from account_health.api.app import create_app
from account_health.config import Workspace
from account_health.nightly import run_nightly
from account_health.store import actions, operational
from account_health.store.job_changes import job_changes, read_job_changes
from account_health.store.outbox import outbox
from account_health.store.provisional import provisional_scores
from account_health.store.tokens import create_token
from account_health.workspace import open_stores
from champion_model import register_champion_model
from nightly_fixtures import FIRST
from notify.changes import slack_settings
from notify.standins import SlackStandIn
from scored import bearer

SCORED = datetime(2025, 11, 2)
RECEIVED = datetime(2025, 11, 2, 10, 0)
PROVISIONAL = datetime(2025, 11, 3)
LEFT_AT = "2025-11-02T09:00:00+01:00"  # 08:00 UTC, two hours before RECEIVED
DEPARTURE = {"contact_id": "C7", "change": "left_company", "changed_at": "2025-10-30T09:00:00+02:00"}


@pytest.fixture
def rescorable(fresh: Workspace) -> Workspace:
    """The fresh company with the champion-weighted model and a nightly run of SCORED done."""
    with open_stores(fresh) as (store, engine):
        register_champion_model(fresh, engine)
        run_nightly(fresh, store, engine, SCORED)
    return fresh


def _client(workspace: Workspace, engine: sa.Engine, slack: SlackStandIn | None) -> TestClient:
    return TestClient(create_app(engine, _with_slack(workspace, slack).config, clock=lambda: RECEIVED))


def _with_slack(workspace: Workspace, slack: SlackStandIn | None) -> Workspace:
    if slack is None:
        return workspace
    return Workspace(workspace.config.model_copy(update={"notify": slack_settings(slack)}), workspace.root)


def _single_champion_account(engine: sa.Engine) -> dict[str, Any]:
    """Return the riskiest Yellow or Green account of SCORED with exactly one champion in seat."""
    found = [
        action
        for action in actions.read_account_actions(engine, SCORED)
        if action["tier"] in ("Yellow", "Green") and len(action["champions"] or []) == 1
    ]
    assert found, "no Yellow or Green account with one champion in seat"
    return found[0]


def _departure(account: str, contact: str, changed_at: str = LEFT_AT) -> dict[str, str]:
    return {"account_id": account, "contact_id": contact, "change": "left_company", "changed_at": changed_at}


def _signals(row: dict[str, Any]) -> dict[str, Any]:
    return json.loads(row["signals"])


def test_champion_departure_rescore_and_alert(rescorable, slack):
    engine = operational.open_operational_store(rescorable.operational_store_url)
    write, read = operational_tokens(engine)
    action = _single_champion_account(engine)
    account, champion = action["account_id"], action["champions"][0]
    with _client(rescorable, engine, slack) as client:
        response = client.post("/v1/job-changes", json=_departure(account, champion), headers=bearer(write))
        again = client.post("/v1/job-changes", json=_departure(account, champion), headers=bearer(write))
        health = client.get(f"/v1/accounts/{account}/health", headers=bearer(read)).json()
        history = client.get(f"/v1/accounts/{account}/history", headers=bearer(read)).json()
        experience = client.get(f"/v1/accounts/{account}/experience", headers=bearer(read)).json()

    assert response.status_code == 202, response.text
    body = response.json()
    assert body["rescored"] is True, body
    assert body["not_rescored_reason"] is None
    assert body["duplicate"] is False
    assert (body["previous_tier"], body["previous_as_of"]) == (action["tier"], "2025-11-02T00:00:00Z")
    assert body["provisional_tier"] in ("Red", "Orange"), body
    assert body["provisional_probability"] > action["probability"]
    assert body["provisional_as_of"] == "2025-11-03T00:00:00Z"
    assert body["champions_in_seat"] == 0
    assert body["slack_message_kind"] == "tier_change"

    # The same webhook again: 200, the first response's content, nothing new stored or sent.
    assert again.status_code == 200, again.text
    repeat = again.json()
    assert repeat["duplicate"] is True
    for key in ("job_change_id", "watch_id", "slack_message_id", "provisional_tier", "provisional_as_of"):
        assert repeat[key] == body[key], key
    assert [row["job_change_id"] for row in read_job_changes(engine, account)] == [body["job_change_id"]]
    assert len(actions.list_watches(engine, True, account)) == 1

    assert health["provisional"] is True
    assert (health["tier"], health["as_of"]) == (body["provisional_tier"], body["provisional_as_of"])
    assert health["probability"] == body["provisional_probability"]
    cause = health["provisional_cause"]
    assert cause["job_change_id"] == body["job_change_id"]
    assert (cause["contact_id"], cause["change"]) == (champion, "left_company")
    assert cause["changed_at"] == "2025-11-02T08:00:00Z"
    assert (cause["previous_tier"], cause["based_on_as_of"]) == (action["tier"], "2025-11-02T00:00:00Z")
    assert "re-scored at once after contact" in cause["text"]
    assert health["top_reasons"][0]["signal"] == "champion"
    assert history["items"][-1]["provisional"] is True
    assert history["items"][-1]["job_change_id"] == body["job_change_id"]
    assert not any(item["provisional"] for item in history["items"][:-1])
    # The app follows the provisional tier's playbook, not the actions stored for the tier before.
    playbook = rescorable.config.actions.playbook.for_tier(body["provisional_tier"])
    assert (experience["tier"], experience["source"]) == (
        body["provisional_tier"],
        "provisional tier playbook",
    )
    assert experience["persona_key"] == playbook.persona_key
    assert experience["expansion_allowed"] is False

    # One message, the tier-change alert, sent after the response without a nightly run.
    assert len(slack.messages) == 1, [message["text"] for message in slack.messages]
    text = slack.messages[0]["text"]
    assert f"moved from *{action['tier']}* to *{body['provisional_tier']}*" in text
    assert "Provisional" in text
    assert champion in text

    provisional = _provisional_row(engine, body["job_change_id"])
    with open_stores(rescorable) as (store, nightly_engine):
        result = run_nightly(_with_slack(rescorable, slack), store, nightly_engine, PROVISIONAL)
    nightly = operational.read_scores(engine, PROVISIONAL, account)[0]

    # The nightly run saw the received change: the same champion features, so the same tier.
    for feature in ("champion_in_seat", "champions_in_seat", "days_since_champion_departure"):
        assert math.isclose(_signals(nightly)[feature], _signals(provisional)[feature], rel_tol=1e-9), feature
    assert nightly["tier"] == provisional["tier"]
    assert result.summary()["received_job_changes"]["inserted"] == 1
    # No second message for the same transition; the run's other changes have their own.
    assert _messages_about(slack, action) == [slack.messages[0]["text"]]
    with engine.connect() as connection:
        alerts = connection.execute(
            sa.select(sa.func.count()).select_from(outbox).where(outbox.c.account_id == account)
        ).scalar_one()
    assert alerts == 1

    after = _health(rescorable, engine, account, read)
    assert after["provisional"] is False
    assert after["as_of"] == "2025-11-03T00:00:00Z"
    engine.dispose()


def test_later_nightly_skips_sent_alert(rescorable, slack):
    engine = operational.open_operational_store(rescorable.operational_store_url)
    write, _read = operational_tokens(engine)
    action = _single_champion_account(engine)
    with _client(rescorable, engine, slack) as client:
        body = client.post(
            "/v1/job-changes",
            json=_departure(action["account_id"], action["champions"][0]),
            headers=bearer(write),
        ).json()
    assert body["slack_message_kind"] == "tier_change", body

    # A night is skipped: the next run is a day later than the provisional score, so its change
    # has another deduplication key, and only the check against the provisional alert stops it.
    later = PROVISIONAL + timedelta(days=1)
    with open_stores(rescorable) as (store, nightly_engine):
        result = run_nightly(_with_slack(rescorable, slack), store, nightly_engine, later)
    change = [
        row for row in actions.read_tier_changes(engine, later) if row["account_id"] == action["account_id"]
    ]
    assert [(row["old_tier"], row["new_tier"]) for row in change] == [
        (action["tier"], body["provisional_tier"])
    ]
    assert result.summary()["notifications"]["already_alerted"] >= 1
    assert len(_messages_about(slack, action)) == 1
    engine.dispose()


def test_non_champion_departure_not_rescored(rescorable, slack):
    engine = operational.open_operational_store(rescorable.operational_store_url)
    write, read = operational_tokens(engine)
    action = _single_champion_account(engine)
    account = action["account_id"]
    other = action["champions"][0].rsplit("-", 1)[0] + "-1"  # the account's non-champion contact
    with _client(rescorable, engine, slack) as client:
        response = client.post("/v1/job-changes", json=_departure(account, other), headers=bearer(write))
        health = client.get(f"/v1/accounts/{account}/health", headers=bearer(read)).json()

    assert response.status_code == 202, response.text
    body = response.json()
    assert body["rescored"] is False
    assert body["not_rescored_reason"].startswith(f"contact {other} was not a champion in seat on 2025-11-02")
    assert action["champions"][0] in body["not_rescored_reason"]
    assert (body["previous_tier"], body["provisional_tier"], body["provisional_as_of"]) == (
        action["tier"],
        None,
        None,
    )
    assert body["slack_message_id"] is None
    assert slack.messages == []
    assert health["provisional"] is False
    assert (health["tier"], health["as_of"]) == (action["tier"], "2025-11-02T00:00:00Z")
    assert health["watched"] is True
    assert len(read_job_changes(engine, account)) == 1
    with engine.connect() as connection:
        assert (
            connection.execute(sa.select(sa.func.count()).select_from(provisional_scores)).scalar_one() == 0
        )
    engine.dispose()


def test_future_departure_not_rescored(rescorable, slack):
    engine = operational.open_operational_store(rescorable.operational_store_url)
    write, _read = operational_tokens(engine)
    action = _single_champion_account(engine)
    with _client(rescorable, engine, slack) as client:
        response = client.post(
            "/v1/job-changes",
            json=_departure(action["account_id"], action["champions"][0], "2025-12-15T00:00:00Z"),
            headers=bearer(write),
        )
    body = response.json()
    assert body["rescored"] is False
    assert "is not before the re-score's as-of date 2025-11-03" in body["not_rescored_reason"]
    # A champion left, so the champion-left message still goes out, with the reason.
    assert body["slack_message_kind"] == "job_change"
    assert len(slack.messages) == 1
    assert "*Champion left*" in slack.messages[0]["text"]
    assert "not re-scored" in slack.messages[0]["text"]
    engine.dispose()


def test_missing_champion_list_not_rescored(fresh, slack):
    """Account actions written before migration 0007 have no list of champions; this clears the lists."""
    engine = operational.open_operational_store(fresh.operational_store_url)
    with engine.begin() as connection:
        connection.execute(actions.account_actions.update().values(champions=None))
    write, read = operational_tokens(engine)
    action = actions.read_account_actions(engine, FIRST)[0]
    account = action["account_id"]
    with _client(fresh, engine, slack) as client:
        response = client.post(
            "/v1/job-changes", json={"account_id": account, **DEPARTURE}, headers=bearer(write)
        )
        health = client.get(f"/v1/accounts/{account}/health", headers=bearer(read)).json()

    assert response.status_code == 202, response.text
    body = response.json()
    assert body["watch_reason"] == "job change: contact C7 left the company on 2025-10-30"
    assert body["rescored"] is False
    assert "no list of the account's champions in seat is stored" in body["not_rescored_reason"]
    kept = read_job_changes(engine, account)
    assert kept[0]["changed_at"] == datetime(2025, 10, 30, 7, 0)
    assert kept[0]["received_at"] == RECEIVED
    assert kept[0]["watch_id"] == body["watch_id"]
    assert kept[0]["message_id"] == body["slack_message_id"]
    assert kept[0]["rescore_note"] == body["not_rescored_reason"]
    assert kept[0]["received_by"].startswith("job-change webhook, api token ")
    assert health["watched"] is True
    assert health["provisional"] is False

    # Whether C7 was a champion is unknown, so the message is titled "contact left".
    assert len(slack.messages) == 1
    text = slack.messages[0]["text"]
    assert "*Contact left*" in text
    assert "not re-scored: no list of the account's champions" in text
    assert action["tier"] in text
    engine.dispose()


def test_title_change_flagged_once(nightly_workspace, nightly_engine, slack):
    write, _read = operational_tokens(nightly_engine)
    account = actions.read_account_actions(nightly_engine, FIRST)[0]["account_id"]
    change = {"account_id": account, "contact_id": "C2", "change": "title_change", "note": "now VP"}
    with _client(nightly_workspace, nightly_engine, slack) as client:
        response = client.post("/v1/job-changes", json=change, headers=bearer(write))
        again = client.post("/v1/job-changes", json={**change, "note": "another note"}, headers=bearer(write))
    assert (response.status_code, again.status_code) == (202, 200)
    body = response.json()
    assert body["slack_message_id"] is None
    assert body["watch_reason"] == "job change: contact C2 changed title: now VP"
    assert body["rescored"] is False
    assert "does not move the champion signal" in body["not_rescored_reason"]
    assert again.json()["job_change_id"] == body["job_change_id"]
    assert again.json()["watch_reason"] == body["watch_reason"]
    assert slack.messages == []
    assert [row["change"] for row in read_job_changes(nightly_engine)] == ["title_change"]


def test_slack_off_still_rescores(rescorable):
    engine = operational.open_operational_store(rescorable.operational_store_url)
    write, _read = operational_tokens(engine)
    action = _single_champion_account(engine)
    with _client(rescorable, engine, None) as client:
        response = client.post(
            "/v1/job-changes",
            json=_departure(action["account_id"], action["champions"][0]),
            headers=bearer(write),
        )
    body = response.json()
    assert response.status_code == 202
    assert body["rescored"] is True
    assert body["slack_message_id"] is None
    assert _provisional_row(engine, body["job_change_id"])["alert_message_id"] is None
    with engine.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(outbox)).scalar_one() == 0
    engine.dispose()


def test_unknown_account_writes_nothing(nightly_workspace, nightly_engine, slack):
    write, read = operational_tokens(nightly_engine)
    with _client(nightly_workspace, nightly_engine, slack) as client:
        response = client.post(
            "/v1/job-changes", json={"account_id": "NO-SUCH", **DEPARTURE}, headers=bearer(write)
        )
        forbidden = client.post(
            "/v1/job-changes", json={"account_id": "NO-SUCH", **DEPARTURE}, headers=bearer(read)
        )
    assert (response.status_code, response.json()["error"]) == (404, "unknown_account")
    assert forbidden.status_code == 403
    assert read_job_changes(nightly_engine) == []
    assert actions.list_watches(nightly_engine, include_inactive=True) == []
    with nightly_engine.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(outbox)).scalar_one() == 0


@pytest.mark.parametrize(
    "changed_at", ["1899-12-31T23:59:59Z", "2199-12-31T23:00:00-05:00", "0001-01-01T00:00:00"]
)
def test_implausible_change_date_is_rejected(nightly_client, nightly_engine, changed_at):
    write, _read = operational_tokens(nightly_engine)
    account = actions.read_account_actions(nightly_engine, FIRST)[0]["account_id"]
    response = nightly_client.post(
        "/v1/job-changes",
        json={**DEPARTURE, "account_id": account, "changed_at": changed_at},
        headers=bearer(write),
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "invalid_job_change"
    assert "is outside the years 1900 to 2199 (UTC)" in response.json()["message"]
    assert read_job_changes(nightly_engine) == []


def test_account_page_shows_provisional(rescorable):
    engine = operational.open_operational_store(rescorable.operational_store_url)
    write, read = operational_tokens(engine)
    action = _single_champion_account(engine)
    with _client(rescorable, engine, None) as client:
        body = client.post(
            "/v1/job-changes",
            json=_departure(action["account_id"], action["champions"][0]),
            headers=bearer(write),
        ).json()
        client.post("/dashboard/sign-in", data={"token": read, "next": "/dashboard"}, follow_redirects=False)
        page = client.get(f"/dashboard/accounts/{action['account_id']}")
    assert page.status_code == 200
    assert "Provisional score" in page.text
    assert f"job change {body['job_change_id']}" in page.text
    assert "re-scored at once after contact" in page.text
    engine.dispose()


def test_health_reads_during_writes(rescorable, slack):
    """Health reads of a provisionally re-scored account while webhooks arrive and a writer rescores SCORED."""
    engine = operational.open_operational_store(rescorable.operational_store_url)
    write, read = operational_tokens(engine)
    action = _single_champion_account(engine)
    account = action["account_id"]
    failures: list[str] = []
    stop = threading.Event()

    def rewrite_scores() -> None:
        # Replace SCORED's scores again and again, as a re-run of that date's nightly run would.
        rows = operational.read_scores(engine, SCORED)
        model_version = rows[0]["model_version"]
        while not stop.is_set():
            run_id = operational.start_run(engine, "score", SCORED)
            operational.replace_scores(
                engine, SCORED, model_version, [{**row, "run_id": run_id} for row in rows]
            )
            operational.finish_run(engine, run_id, "succeeded", {})

    with _client(rescorable, engine, slack) as client:
        first = client.post(
            "/v1/job-changes", json=_departure(account, action["champions"][0]), headers=bearer(write)
        )
        assert first.json()["rescored"] is True
        writer = threading.Thread(target=rewrite_scores)
        writer.start()
        try:
            for number in range(40):
                posted = client.post(
                    "/v1/job-changes",
                    json={"account_id": account, "contact_id": f"X{number}", "change": "email_bounced"},
                    headers=bearer(write),
                )
                if posted.status_code != 202:
                    failures.append(posted.text)
                health = client.get(f"/v1/accounts/{account}/health", headers=bearer(read))
                if health.status_code != 200 or health.json()["provisional"] is not True:
                    failures.append(health.text)
        finally:
            stop.set()
            writer.join(timeout=60)
    assert failures == [], failures[:3]
    assert len(read_job_changes(engine, account)) == 41
    engine.dispose()


def test_migration_0007_upgrade_and_downgrade(tmp_path):
    engine = operational.connect(f"sqlite:///{tmp_path / 'operational.sqlite'}")
    config = AlembicConfig()
    config.set_main_option("script_location", str(operational._MIGRATIONS))

    # Two copies of one change stored before 0007 made the key unique: the first keeps the key.
    operational.upgrade(engine, "0006")
    with engine.begin() as connection:
        for _ in range(2):
            connection.execute(
                sa.text(
                    "INSERT INTO job_changes (account_id, contact_id, change, changed_at, received_at) "
                    "VALUES ('A1', 'C1', 'left_company', '2025-10-30 07:00:00.000000', '2025-10-30 08:00:00.000000')"
                )
            )
    operational.upgrade(engine)
    keys = [row["dedupe_key"] for row in read_job_changes(engine)]
    assert keys[0] is not None and keys[1] is None, keys

    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), operational.metadata)
    touched = ("job_changes", "provisional_scores", "account_actions")
    assert [d for d in differences if any(name in repr(d) for name in touched)] == []
    for table in (job_changes, provisional_scores, actions.account_actions):
        columns = {column["name"] for column in sa.inspect(engine).get_columns(table.name)}
        assert columns == {column.name for column in table.columns}, table.name

    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0006")
    inspector = sa.inspect(engine)
    assert "provisional_scores" not in inspector.get_table_names()
    assert "dedupe_key" not in {column["name"] for column in inspector.get_columns("job_changes")}
    assert "champions" not in {column["name"] for column in inspector.get_columns("account_actions")}
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0005")
    assert "job_changes" not in sa.inspect(engine).get_table_names()
    engine.dispose()


def _messages_about(slack: SlackStandIn, action: dict[str, Any]) -> list[str]:
    """Return the texts of the messages naming the account, as a headline or a digest line names it."""
    return [message["text"] for message in slack.messages if f"*{action['name']}*" in message["text"]]


def _provisional_row(engine: sa.Engine, job_change_id: int) -> dict[str, Any]:
    with engine.connect() as connection:
        row = connection.execute(
            sa.select(provisional_scores).where(provisional_scores.c.job_change_id == job_change_id)
        ).first()
    assert row is not None
    return dict(row._mapping)


def _health(workspace: Workspace, engine: sa.Engine, account: str, token: str) -> dict[str, Any]:
    with TestClient(create_app(engine, workspace.config)) as client:
        response = client.get(f"/v1/accounts/{account}/health", headers=bearer(token))
    assert response.status_code == 200, response.text
    return response.json()


def operational_tokens(engine: sa.Engine) -> tuple[str, str]:
    return create_token(engine, "write")[1], create_token(engine, "read")[1]
