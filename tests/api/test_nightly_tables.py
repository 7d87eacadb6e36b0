"""The API over the tables a real nightly run wrote: account actions, tasks and the watch list.

The workspace is a copy of the nightly tests' company after `run_nightly` of FIRST (nightly_fixtures).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from account_health.api.app import create_app
from account_health.asof import start_of_day
from account_health.nightly import run_nightly
from account_health.store import actions
from account_health.store.operational import now, open_operational_store
from account_health.store.tokens import create_token
from account_health.workspace import open_stores
from nightly_fixtures import FIRST, SECOND
from scored import bearer


def _actions(engine) -> list[dict]:
    rows = actions.read_account_actions(engine, FIRST)
    assert rows, "the nightly run of FIRST wrote no account actions"
    return rows


def test_accounts_list_carries_the_runs_actions(nightly_client, nightly_engine):
    token = create_token(nightly_engine, "read")[1]
    rows = _actions(nightly_engine)
    body = nightly_client.get("/v1/accounts", params={"limit": 500}, headers=bearer(token)).json()
    by_id = {row["account_id"]: row for row in rows}
    assert body["total"] == len(rows)
    for item in body["items"]:
        action = by_id[item["account_id"]]
        assert (item["name"], item["owner"], item["renewal_stage"]) == (
            action["name"],
            action["owner"],
            action["renewal_stage"],
        )
        assert item["arr"] == pytest.approx(action["arr"])
        assert item["watched"] is False


def test_owner_and_renewal_stage_filters(nightly_client, nightly_engine):
    token = create_token(nightly_engine, "read")[1]
    rows = _actions(nightly_engine)
    owner = rows[0]["owner"]
    stage = next(row["renewal_stage"] for row in rows if row["renewal_stage"] is not None)
    for params, expected in (
        ({"owner": owner}, {row["account_id"] for row in rows if row["owner"] == owner}),
        (
            {"owner": owner, "renewal_stage": stage},
            {row["account_id"] for row in rows if row["owner"] == owner and row["renewal_stage"] == stage},
        ),
        ({"owner": "nobody@vendor.example"}, set()),
    ):
        body = nightly_client.get(
            "/v1/accounts", params={**params, "limit": 500}, headers=bearer(token)
        ).json()
        assert {item["account_id"] for item in body["items"]} == expected
        assert body["total"] == len(expected)


def test_experience_is_the_runs_action(nightly_client, nightly_engine):
    token = create_token(nightly_engine, "read")[1]
    rows = _actions(nightly_engine)
    # One account per tier, so every prompt, persona and expansion the run wrote is compared.
    for action in {row["tier"]: row for row in rows}.values():
        body = nightly_client.get(
            f"/v1/accounts/{action['account_id']}/experience", headers=bearer(token)
        ).json()
        assert body["source"] == "account_actions"
        assert body["tier"] == action["tier"]
        assert (body["prompt"] or {}).get("key") == action["prompt_key"]
        assert body["persona_key"] == action["persona_key"]
        assert body["expansion"] == action["expansion"]
        assert body["expansion_allowed"] == action["expansion_allowed"]


def test_watch_is_the_cli_watch(fresh):
    """POST /watch writes what `account-health watch` writes, and the health flag reads it back."""
    engine = open_operational_store(fresh.operational_store_url)
    read, write = create_token(engine, "read")[1], create_token(engine, "write", name="crm")[1]
    account = _actions(engine)[-1]["account_id"]
    until = (start_of_day(now()) + timedelta(days=3)).date()
    with TestClient(create_app(engine, fresh.config)) as client:
        assert client.get(f"/v1/accounts/{account}/health", headers=bearer(read)).json()["watched"] is False
        response = client.post(
            f"/v1/accounts/{account}/watch",
            json={"reason": "  budget freeze announced ", "until": f"{until:%Y-%m-%d}"},
            headers=bearer(write),
        )
        assert response.status_code == 201, response.text
        created = response.json()
        health = client.get(f"/v1/accounts/{account}/health", headers=bearer(read)).json()
        listing = client.get("/v1/accounts", params={"limit": 500}, headers=bearer(read)).json()

    stored = actions.active_watches(engine, FIRST, account)[account]
    assert stored["reason"] == created["reason"] == "budget freeze announced"
    assert stored["until"] == datetime(until.year, until.month, until.day)
    assert created["until"] == f"{until:%Y-%m-%d}T00:00:00Z"
    assert stored["created_by"] == created["created_by"]
    assert created["created_by"].startswith("api token ")
    assert created["created_by"].endswith("(crm)")
    assert health["watched"] is True
    assert [entry["reason"] for entry in health["watch"]] == ["budget freeze announced"]
    assert health["watch"][0]["watch_id"] == created["watch_id"] == stored["watch_id"]
    assert [item["account_id"] for item in listing["items"] if item["watched"]] == [account]
    # A watch-list flag never changes the tier.
    assert health["tier"] == _actions(engine)[-1]["tier"]
    engine.dispose()


def test_watch_default_until_and_bad_entries(nightly_client, nightly_engine, nightly_workspace):
    write = create_token(nightly_engine, "write")[1]
    account = _actions(nightly_engine)[0]["account_id"]
    created = nightly_client.post(
        f"/v1/accounts/{account}/watch", json={"reason": "exec left"}, headers=bearer(write)
    ).json()
    days = nightly_workspace.config.actions.watch_default_days
    assert created["until"][:10] == f"{start_of_day(now()) + timedelta(days=days):%Y-%m-%d}"

    past = nightly_client.post(
        f"/v1/accounts/{account}/watch",
        json={"reason": "x", "until": "2020-01-01"},
        headers=bearer(write),
    )
    blank = nightly_client.post(
        f"/v1/accounts/{account}/watch", json={"reason": "   "}, headers=bearer(write)
    )
    unknown = nightly_client.post("/v1/accounts/NO-SUCH/watch", json={"reason": "x"}, headers=bearer(write))
    old_field = nightly_client.post(
        f"/v1/accounts/{account}/watch",
        json={"reason": "x", "expires_at": "2099-01-01T00:00:00Z"},
        headers=bearer(write),
    )
    assert (past.status_code, past.json()["error"]) == (422, "invalid_watch")
    assert "2020-01-01" in past.json()["message"]
    assert (blank.status_code, blank.json()["error"]) == (422, "invalid_watch")
    assert (unknown.status_code, unknown.json()["error"]) == (404, "unknown_account")
    assert old_field.status_code == 422
    assert len(actions.list_watches(nightly_engine, include_inactive=True)) == 1


def test_watch_needs_write_scope(nightly_client, nightly_engine):
    read = create_token(nightly_engine, "read")[1]
    account = _actions(nightly_engine)[0]["account_id"]
    response = nightly_client.post(
        f"/v1/accounts/{account}/watch", json={"reason": "x"}, headers=bearer(read)
    )
    assert response.status_code == 403
    assert actions.list_watches(nightly_engine, include_inactive=True) == []


def test_removed_and_expired_entries_are_not_in_force(nightly_client, nightly_engine):
    read = create_token(nightly_engine, "read")[1]
    expired, removed = (row["account_id"] for row in _actions(nightly_engine)[:2])
    actions.add_watch(nightly_engine, expired, "renewal call went badly", FIRST - timedelta(days=1))
    actions.add_watch(nightly_engine, removed, "exec left", FIRST + timedelta(days=400))
    actions.remove_watch(nightly_engine, removed)
    for account in (expired, removed):
        health = nightly_client.get(f"/v1/accounts/{account}/health", headers=bearer(read)).json()
        assert (health["watched"], health["watch"]) == (False, [])

    nightly_client.post("/dashboard/sign-in", data={"token": read})
    assert "renewal call went badly, until" in nightly_client.get(f"/dashboard/accounts/{expired}").text
    assert "expired" in nightly_client.get(f"/dashboard/accounts/{expired}").text
    assert "removed " in nightly_client.get(f"/dashboard/accounts/{removed}").text


def test_account_page_shows_the_runs_action_and_tasks(nightly_client, nightly_engine):
    read = create_token(nightly_engine, "read")[1]
    task = actions.read_tasks(nightly_engine)[0]
    action = actions.read_account_actions(nightly_engine, FIRST, task["account_id"])[0]
    nightly_client.post("/dashboard/sign-in", data={"token": read})
    page = nightly_client.get(f"/dashboard/accounts/{task['account_id']}").text
    assert task["description"] in page
    assert f"<strong>{action['motion']}</strong>" in page
    assert action["name"] in page
    assert "Never on the watch-list." in page


def test_api_watch_reaches_next_run(nightly_client, nightly_engine, nightly_workspace):
    """The entry the API writes is the one the nightly run reads, as from `account-health watch`."""
    write = create_token(nightly_engine, "write")[1]
    account = _actions(nightly_engine)[0]["account_id"]
    response = nightly_client.post(
        f"/v1/accounts/{account}/watch",
        json={"reason": "board reshuffle", "until": f"{start_of_day(now()) + timedelta(days=1):%Y-%m-%d}"},
        headers=bearer(write),
    )
    assert response.status_code == 201
    with open_stores(nightly_workspace) as (store, engine):
        run_nightly(nightly_workspace, store, engine, SECOND)
    action = actions.read_account_actions(nightly_engine, SECOND, account)[0]
    assert action["watch_reason"] == "board reshuffle"
