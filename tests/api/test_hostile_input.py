"""Request values that no store can hold get 422 with the field's location, never a 500.

NUL characters are rejected on SQLite too, so the API answers the same on either operational store
(PostgreSQL cannot store NUL in text, and answered these requests with 500 before).
"""

from __future__ import annotations

import pytest

from scored import bearer, latest_scores

DEPARTURE = {"contact_id": "C7", "change": "left_company"}


@pytest.mark.parametrize(
    ("path", "location"),
    [
        ("/v1/accounts/A%0001/health", ["path", "account_id"]),
        ("/v1/accounts/A%0001/history", ["path", "account_id"]),
        ("/v1/accounts?owner=a%00b", ["query", "owner"]),
        ("/v1/accounts?renewal_stage=a%00b", ["query", "renewal_stage"]),
        ("/v1/model?version=a%00b", ["query", "version"]),
    ],
)
def test_nul_in_path_or_query_is_invalid(client, read_token, path, location):
    response = client.get(path, headers=bearer(read_token))
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == location


def test_nul_in_watch_reason_is_invalid(client, engine, write_token):
    account = latest_scores(engine)[0]["account_id"]
    response = client.post(
        f"/v1/accounts/{account}/watch", json={"reason": "left\x00"}, headers=bearer(write_token)
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "reason"]


@pytest.mark.parametrize("field", ["contact_id", "note"])
def test_nul_in_job_change_is_invalid(client, engine, write_token, field):
    account = latest_scores(engine)[0]["account_id"]
    body = {"account_id": account, **DEPARTURE, field: "C\x007"}
    response = client.post("/v1/job-changes", json=body, headers=bearer(write_token))
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", field]


@pytest.mark.parametrize("changed_at", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-12:00"])
def test_job_change_outside_utc_range_is_invalid(client, engine, write_token, changed_at):
    account = latest_scores(engine)[0]["account_id"]
    body = {"account_id": account, **DEPARTURE, "changed_at": changed_at}
    response = client.post("/v1/job-changes", json=body, headers=bearer(write_token))
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_job_change"
    assert changed_at in response.json()["message"]


def test_dashboard_rejects_nul_in_account_id(client, read_token):
    client.post("/dashboard/sign-in", data={"token": read_token})
    response = client.get("/dashboard/accounts/A%0001", follow_redirects=False)
    assert response.status_code == 422


@pytest.mark.parametrize(
    ("headers", "code"), [({}, "missing_token"), (bearer("ah_not-a-token"), "invalid_token")]
)
@pytest.mark.parametrize("path", ["/v1/job-changes", "/v1/accounts/A0001/watch"])
def test_body_is_not_read_without_a_known_token(client, headers, code, path):
    # Malformed JSON would be a 422 had the body been parsed; the token check comes first.
    response = client.post(
        path, content=b"{" * 100_000, headers={**headers, "Content-Type": "application/json"}
    )
    assert response.status_code == 401
    assert response.json()["error"] == code


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/v1/nothing-here", 404, "not_found"),
        ("GET", "/nothing-here", 404, "not_found"),
        ("DELETE", "/v1/status", 405, "method_not_allowed"),
    ],
)
def test_unserved_path_or_method_answers_a_problem(client, method, path, status, code):
    response = client.request(method, path)
    assert response.status_code == status
    assert response.json()["error"] == code
    assert path in response.json()["message"]
