from __future__ import annotations

import re

import pytest

from scored import latest_scores

PAGES = ["/dashboard", "/dashboard/accounts", "/dashboard/accounts?tier=Red", "/dashboard/model"]


def _sign_in(client, token: str):
    return client.post(
        "/dashboard/sign-in", data={"token": token, "next": "/dashboard/model"}, follow_redirects=False
    )


def test_pages_redirect_to_sign_in(client):
    response = client.get("/dashboard/accounts?tier=Red", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/dashboard/sign-in?next=%2Fdashboard%2Faccounts%3Ftier%3DRed"


def test_sign_in_sets_a_strict_httponly_cookie(client, read_token):
    response = _sign_in(client, read_token)
    assert response.status_code == 303
    assert response.headers["location"] == "/dashboard/model"
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie


def test_sign_in_rejects_unknown_token(client):
    response = _sign_in(client, "ah_wrong")
    assert response.status_code == 401
    assert "not known" in response.text
    assert "set-cookie" not in response.headers


def test_sign_in_never_redirects_off_site(client, read_token):
    response = client.post(
        "/dashboard/sign-in", data={"token": read_token, "next": "//evil.example/"}, follow_redirects=False
    )
    assert response.headers["location"] == "/dashboard"


@pytest.mark.parametrize("path", PAGES)
def test_pages_render_without_external_resources(client, read_token, path):
    _sign_in(client, read_token)
    response = client.get(path)
    assert response.status_code == 200
    # Every script, stylesheet and image is served from this server or inlined.
    assert not re.findall(r'(?:src|href)="(?:https?:)?//', response.text)


def test_account_page_shows_waterfall_history_and_top_reason(client, engine, read_token):
    _sign_in(client, read_token)
    riskiest = latest_scores(engine)[0]
    response = client.get(f"/dashboard/accounts/{riskiest['account_id']}")
    assert response.status_code == 200
    assert "Top reason:" in response.text
    assert response.text.count("<svg") == 2
    assert "Never on the watch-list." in response.text
    assert "No action for this as-of date" in response.text


def test_unknown_account_page_is_404(client, read_token):
    _sign_in(client, read_token)
    response = client.get("/dashboard/accounts/NO-SUCH")
    assert response.status_code == 404
    assert "&#39;NO-SUCH&#39;" in response.text


def test_accounts_page_filters_by_tier(client, engine, read_token):
    _sign_in(client, read_token)
    response = client.get("/dashboard/accounts?tier=Red")
    red = [row["account_id"] for row in latest_scores(engine) if row["tier"] == "Red"]
    for account in red:
        assert f">{account}</a>" in response.text
    assert response.text.count('class="tier tier-') == len(red)


def test_sign_out_clears_the_cookie(client, read_token):
    _sign_in(client, read_token)
    client.post("/dashboard/sign-out")
    assert client.get("/dashboard", follow_redirects=False).status_code == 303


def test_static_stylesheet_is_served(client):
    assert client.get("/static/style.css").status_code == 200


def test_model_page_shows_monitoring(client, engine, read_token):
    from account_health.monitor.record import MONITOR_RUN
    from account_health.store import operational

    _sign_in(client, read_token)
    assert "No monitoring report yet" in client.get("/dashboard/model").text

    summary = {
        "as_of": "2026-12-01",
        "model_version": "m-1",
        "model_age_days": 270,
        "retrain_recommended": True,
        "retrain_reasons": [{"kind": "retrain", "message": "weight change in usage"}],
        "alerts": [{"kind": "retrain", "message": "weight change in <b>usage</b>"}],
        "largest_drift": {"feature": "usage_trend", "psi": 0.224, "level": "moved"},
        "files": [],
    }
    run_id = operational.start_run(engine, MONITOR_RUN)
    operational.finish_run(engine, run_id, "succeeded", summary)
    page = client.get("/dashboard/model").text

    assert "retraining recommended" in page and "usage_trend, PSI 0.224" in page
    assert "weight change in &lt;b&gt;usage&lt;/b&gt;" in page
