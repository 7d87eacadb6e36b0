"""POST /v1/job-changes: the change is kept, the account flagged and a departure alerted at once.

Against a copy of the nightly tests' company after a real nightly run, on SQLite and PostgreSQL, with
a Slack stand-in on 127.0.0.1.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config as AlembicConfig
from alembic.migration import MigrationContext
from fastapi.testclient import TestClient

from account_health.api.app import create_app
from account_health.config import Workspace
from account_health.notify import outbox_entries
from account_health.store import actions, operational
from account_health.store.job_changes import job_changes, read_job_changes
from account_health.store.outbox import outbox
from nightly_fixtures import FIRST
from notify.changes import slack_settings
from notify.standins import SlackStandIn
from scored import bearer

DEPARTURE = {"contact_id": "C7", "change": "left_company", "changed_at": "2025-10-30T09:00:00+02:00"}


def _client(workspace: Workspace, engine: sa.Engine, slack: SlackStandIn | None) -> TestClient:
    config = workspace.config
    if slack is not None:
        config = config.model_copy(update={"notify": slack_settings(slack)})
    return TestClient(create_app(engine, config))


def test_departure_is_kept_flagged_and_alerted(fresh, slack):
    engine = operational.open_operational_store(fresh.operational_store_url)
    write, read = operational_tokens(engine)
    action = actions.read_account_actions(engine, FIRST)[0]
    account = action["account_id"]
    with _client(fresh, engine, slack) as client:
        response = client.post(
            "/v1/job-changes", json={"account_id": account, **DEPARTURE}, headers=bearer(write)
        )
        # The same webhook sent twice is kept twice but alerted once.
        again = client.post(
            "/v1/job-changes", json={"account_id": account, **DEPARTURE}, headers=bearer(write)
        )
        health = client.get(f"/v1/accounts/{account}/health", headers=bearer(read)).json()

    assert response.status_code == again.status_code == 202, response.text
    body = response.json()
    assert body["watch_reason"] == "job change: contact C7 left the company on 2025-10-30"
    assert body["slack_message_id"] is not None
    assert again.json()["slack_message_id"] == body["slack_message_id"]

    kept = read_job_changes(engine, account)
    assert [row["job_change_id"] for row in kept] == [body["job_change_id"], again.json()["job_change_id"]]
    assert kept[0]["changed_at"] == datetime(2025, 10, 30, 7, 0)
    assert kept[0]["watch_id"] == body["watch_id"]
    assert kept[0]["message_id"] == body["slack_message_id"]
    assert kept[0]["received_by"].startswith("job-change webhook, api token ")

    assert health["watched"] is True
    assert health["watch"][0]["reason"] == body["watch_reason"]
    assert health["tier"] == action["tier"]  # not re-scored: the next nightly run does that

    # Sent after the response, through the outbox, without a nightly run.
    assert len(slack.messages) == 1
    text = slack.messages[0]["text"]
    assert "Champion left" in text
    assert "C7" in text
    assert action["tier"] in text
    assert "next nightly run re-scores" in text
    assert outbox_entries(engine) == []  # nothing left unsent
    engine.dispose()


def test_other_changes_are_flagged_without_a_message(nightly_workspace, nightly_engine, slack):
    write, _read = operational_tokens(nightly_engine)
    account = actions.read_account_actions(nightly_engine, FIRST)[0]["account_id"]
    with _client(nightly_workspace, nightly_engine, slack) as client:
        response = client.post(
            "/v1/job-changes",
            json={"account_id": account, "contact_id": "C2", "change": "title_change", "note": "now VP"},
            headers=bearer(write),
        )
    assert response.status_code == 202
    assert response.json()["slack_message_id"] is None
    assert response.json()["watch_reason"] == "job change: contact C2 changed title: now VP"
    assert slack.messages == []
    assert [row["change"] for row in read_job_changes(nightly_engine)] == ["title_change"]


def test_slack_off_still_keeps_and_flags(nightly_client, nightly_engine):
    write, _read = operational_tokens(nightly_engine)
    account = actions.read_account_actions(nightly_engine, FIRST)[0]["account_id"]
    response = nightly_client.post(
        "/v1/job-changes", json={"account_id": account, **DEPARTURE}, headers=bearer(write)
    )
    assert response.status_code == 202
    assert response.json()["slack_message_id"] is None
    assert len(read_job_changes(nightly_engine)) == 1
    assert account in actions.active_watches(nightly_engine, FIRST)


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


def test_migration_0006_matches_the_table_and_downgrades(tmp_path):
    engine = operational.connect(f"sqlite:///{tmp_path / 'operational.sqlite'}")
    operational.upgrade(engine)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), operational.metadata)
    assert [d for d in differences if "job_changes" in repr(d)] == []
    columns = {column["name"] for column in sa.inspect(engine).get_columns("job_changes")}
    assert columns == {column.name for column in job_changes.columns}
    config = AlembicConfig()
    config.set_main_option("script_location", str(operational._MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0005")
    assert "job_changes" not in sa.inspect(engine).get_table_names()
    engine.dispose()


def operational_tokens(engine: sa.Engine) -> tuple[str, str]:
    from account_health.store.tokens import create_token

    return create_token(engine, "write")[1], create_token(engine, "read")[1]
