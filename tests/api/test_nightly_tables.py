"""The API against the tables the nightly run adds: account_actions, tasks and watch_list.

The tables are created here with the columns the nightly run is expected to write, as a stand-in
for its migration.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from scored import bearer, latest_scores


def test_experience_prefers_stored_actions(client, engine, read_token, nightly_tables):
    green = next(row["account_id"] for row in latest_scores(engine) if row["tier"] == "Green")
    body = client.get(f"/v1/accounts/{green}/experience", headers=bearer(read_token)).json()
    assert body["source"] == "account_actions"
    assert body["prompt"] == {"key": "talk-to-your-csm", "text": "Talk to your CSM now"}
    assert body["persona_key"] == "executive-escalation"
    assert body["expansion_allowed"] is False


def test_accounts_filter_by_owner_and_stage(client, engine, read_token, nightly_tables):
    response = client.get(
        "/v1/accounts",
        params={"owner": "Ana", "renewal_stage": "Window-Open", "limit": 500},
        headers=bearer(read_token),
    )
    assert response.status_code == 200
    body = response.json()
    expected = [
        row["account_id"] for index, row in enumerate(latest_scores(engine)) if index % 2 and index % 3 == 0
    ]
    assert sorted(item["account_id"] for item in body["items"]) == sorted(expected)
    assert {item["owner"] for item in body["items"]} == {"Ana"}
    assert all(item["name"].startswith("Company ") for item in body["items"])
    assert all(item["watched"] is False for item in body["items"])


def test_watch_needs_write_scope(client, engine, read_token, nightly_tables):
    account = latest_scores(engine)[0]["account_id"]
    response = client.post(
        f"/v1/accounts/{account}/watch", json={"reason": "exec left"}, headers=bearer(read_token)
    )
    assert response.status_code == 403


def test_watch_puts_account_on_watch_list(client, engine, read_token, write_token, nightly_tables):
    account = latest_scores(engine)[-1]["account_id"]
    response = client.post(
        f"/v1/accounts/{account}/watch",
        json={"reason": "budget freeze announced", "expires_at": "2099-01-01T00:00:00Z"},
        headers=bearer(write_token),
    )
    assert response.status_code == 201, response.text
    health = client.get(f"/v1/accounts/{account}/health", headers=bearer(read_token)).json()
    assert health["watched"] is True
    assert health["watch"][0]["reason"] == "budget freeze announced"
    assert health["watch"][0]["expires_at"] == "2099-01-01T00:00:00Z"
    # A watch-list flag never changes the tier.
    assert health["tier"] == latest_scores(engine)[-1]["tier"]


def test_expired_watch_entry_is_not_in_force(client, engine, read_token, write_token, nightly_tables):
    account = latest_scores(engine)[-1]["account_id"]
    with engine.begin() as connection:
        connection.execute(
            nightly_tables["watch_list"]
            .insert()
            .values(
                account_id=account,
                reason="old",
                expires_at=datetime(2020, 1, 1),
                created_at=datetime(2019, 1, 1),
            )
        )
    health = client.get(f"/v1/accounts/{account}/health", headers=bearer(read_token)).json()
    assert health["watched"] is False


def test_watch_unknown_account_is_404(client, write_token, nightly_tables):
    response = client.post("/v1/accounts/NO-SUCH/watch", json={"reason": "x"}, headers=bearer(write_token))
    assert response.status_code == 404


def test_job_change_adds_watch_reason(client, engine, read_token, write_token, nightly_tables):
    account = latest_scores(engine)[0]["account_id"]
    response = client.post(
        "/v1/job-changes",
        json={
            "account_id": account,
            "contact_id": "C7",
            "change": "left_company",
            "changed_at": "2025-12-30T00:00:00Z",
        },
        headers=bearer(write_token),
    )
    assert response.status_code == 202, response.text
    assert response.json()["watch_reason"] == "job change: contact C7 left the company on 2025-12-30"
    health = client.get(f"/v1/accounts/{account}/health", headers=bearer(read_token)).json()
    assert health["watched"] is True


def test_account_page_lists_tasks_and_watch(client, engine, read_token, write_token, nightly_tables):
    account = latest_scores(engine)[0]["account_id"]
    client.post(f"/v1/accounts/{account}/watch", json={"reason": "exec left"}, headers=bearer(write_token))
    client.post("/dashboard/sign-in", data={"token": read_token})
    page = client.get(f"/dashboard/accounts/{account}").text
    assert "Exec-sponsor outreach today" in page
    assert "exec left" in page
    assert f"Company {account}" in page


def test_watch_without_table_is_503_and_writes_nothing(client, engine, write_token):
    account = latest_scores(engine)[0]["account_id"]
    response = client.post(f"/v1/accounts/{account}/watch", json={"reason": "x"}, headers=bearer(write_token))
    assert response.status_code == 503
    assert response.json()["error"] == "watch_list_unavailable"
    assert "watch_list" not in sa.inspect(engine).get_table_names()
    job = client.post(
        "/v1/job-changes",
        json={"account_id": account, "contact_id": "C1", "change": "title_change"},
        headers=bearer(write_token),
    )
    assert job.status_code == 503
