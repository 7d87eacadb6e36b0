from __future__ import annotations

import json
import math

import pytest
import sqlalchemy as sa

from account_health.api.experience import TIER_EXPERIENCE
from account_health.store import operational
from scored import SCORING_DATES, bearer, latest_scores


def _account_in(engine: sa.Engine, tier: str) -> str:
    return next(row["account_id"] for row in latest_scores(engine) if row["tier"] == tier)


def test_status_needs_no_token(client):
    response = client.get("/v1/status")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "latest_as_of": "2025-12-31T00:00:00Z"}


@pytest.mark.parametrize(
    "path", ["/v1/accounts", "/v1/accounts/A0001/health", "/v1/model", "/v1/tiers/distribution"]
)
def test_endpoints_reject_missing_token(client, path):
    response = client.get(path)
    assert response.status_code == 401
    assert response.json()["error"] == "missing_token"
    assert response.headers["www-authenticate"] == "Bearer"


def test_unknown_token_is_rejected(client):
    response = client.get("/v1/accounts", headers=bearer("ah_not-a-token"))
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"


def test_health_of_riskiest_account(client, engine, read_token):
    riskiest = latest_scores(engine)[0]
    response = client.get(f"/v1/accounts/{riskiest['account_id']}/health", headers=bearer(read_token))
    assert response.status_code == 200
    body = response.json()
    assert body["tier"] == riskiest["tier"] == "Red"
    assert body["probability"] == pytest.approx(riskiest["probability"])
    assert body["as_of"] == "2025-12-31T00:00:00Z"
    assert body["model_version"] == riskiest["model_version"]
    assert body["validated"] is True
    assert body["horizon_days"] == 90
    assert body["watched"] is False


def test_health_top_reasons_follow_contributions(client, engine, read_token):
    riskiest = latest_scores(engine)[0]
    contributions = json.loads(riskiest["contributions"])
    body = client.get(f"/v1/accounts/{riskiest['account_id']}/health", headers=bearer(read_token)).json()
    reasons = body["top_reasons"]
    assert [reason["signal"] for reason in reasons] == sorted(
        contributions, key=lambda signal: -abs(contributions[signal])
    )
    assert reasons[0]["log_odds"] == pytest.approx(contributions[reasons[0]["signal"]])
    assert reasons[0]["text"]


def test_unknown_account_is_404_with_message(client, read_token):
    response = client.get("/v1/accounts/NO-SUCH/health", headers=bearer(read_token))
    assert response.status_code == 404
    body = response.json()
    assert body["error"] == "unknown_account"
    assert "'NO-SUCH'" in body["message"]


@pytest.mark.parametrize("tier", ["Red", "Orange", "Yellow", "Green", "Dark-Green"])
def test_experience_defaults_per_tier(client, engine, read_token, tier):
    account = _account_in(engine, tier)
    body = client.get(f"/v1/accounts/{account}/experience", headers=bearer(read_token)).json()
    expected = TIER_EXPERIENCE[tier]
    assert body["tier"] == tier
    assert body["persona_key"] == expected.persona_key
    assert body["expansion"] == expected.expansion
    assert body["expansion_allowed"] is (tier in ("Green", "Dark-Green"))
    assert body["source"] == "tier defaults"
    if expected.prompt_key is None:
        assert body["prompt"] is None
    else:
        assert body["prompt"]["key"] == expected.prompt_key
        assert body["prompt"]["text"]


def test_red_experience_asks_to_talk_to_csm(client, engine, read_token):
    body = client.get(
        f"/v1/accounts/{_account_in(engine, 'Red')}/experience", headers=bearer(read_token)
    ).json()
    assert body["prompt"] == {"key": "talk-to-your-csm", "text": "Talk to your CSM now"}
    assert body["persona_key"] == "executive-escalation"
    assert body["expansion_allowed"] is False


def test_accounts_filter_by_tier(client, engine, read_token):
    response = client.get("/v1/accounts", params={"tier": ["Red", "Orange"]}, headers=bearer(read_token))
    assert response.status_code == 200
    body = response.json()
    expected = [row for row in latest_scores(engine) if row["tier"] in ("Red", "Orange")]
    assert body["total"] == len(expected) > 0
    assert {item["tier"] for item in body["items"]} <= {"Red", "Orange"}
    probabilities = [item["probability"] for item in body["items"]]
    assert probabilities == sorted(probabilities, reverse=True)


def test_accounts_pages_cover_every_account_once(client, engine, read_token):
    seen: list[str] = []
    offset = 0
    while True:
        body = client.get(
            "/v1/accounts", params={"limit": 100, "offset": offset}, headers=bearer(read_token)
        ).json()
        seen.extend(item["account_id"] for item in body["items"])
        offset += 100
        if offset >= body["total"]:
            break
    assert sorted(seen) == sorted(row["account_id"] for row in latest_scores(engine))


def test_accounts_rejects_bad_tier_and_limit(client, read_token):
    assert client.get("/v1/accounts", params={"tier": "Blue"}, headers=bearer(read_token)).status_code == 422
    assert client.get("/v1/accounts", params={"limit": 0}, headers=bearer(read_token)).status_code == 422


def test_invalid_body_not_echoed(client, write_token):
    huge = "x" * 100_000
    for body in ('{"reason": NaN, "until": "' + huge + '"}', '{"reason": ["' + huge + '"]}', '{"reason": '):
        response = client.post(
            "/v1/accounts/any/watch",
            content=body,
            headers={**bearer(write_token), "Content-Type": "application/json"},
        )
        assert response.status_code == 422, response.text[:200]
        assert huge not in response.text and len(response.text) < 2000
        assert all({"loc", "msg", "type"} == set(error) for error in response.json()["detail"])


def test_owner_filter_without_a_nightly_run_matches_nothing(client, read_token):
    # Owners come from the nightly run's account actions; accounts scored by `score` alone have none.
    response = client.get("/v1/accounts", params={"owner": "Ana"}, headers=bearer(read_token))
    assert response.status_code == 200
    assert response.json()["total"] == 0


def test_history_lists_every_scoring_date(client, engine, read_token):
    account = latest_scores(engine)[0]["account_id"]
    body = client.get(f"/v1/accounts/{account}/history", headers=bearer(read_token)).json()
    assert [item["as_of"][:10] for item in body["items"]] == [f"{day:%Y-%m-%d}" for day in SCORING_DATES]
    assert not any(item["model_changed"] for item in body["items"])


def test_history_marks_a_model_change(client, engine, read_token):
    account = latest_scores(engine)[0]["account_id"]
    with engine.begin() as connection:
        connection.execute(
            sa.update(operational.scores)
            .where(operational.scores.c.as_of == SCORING_DATES[-1])
            .values(model_version="later-model")
        )
    body = client.get(f"/v1/accounts/{account}/history", headers=bearer(read_token)).json()
    assert [item["model_changed"] for item in body["items"]] == [False, False, True]


def test_model_card_has_weights_intervals_and_cutoffs(client, read_token):
    body = client.get("/v1/model", headers=bearer(read_token)).json()
    assert body["cutoffs"] == {"red": 0.22, "orange": 0.15, "yellow": 0.08, "green": 0.04}
    sentiment = next(weight for weight in body["weights"] if weight["signal"] == "sentiment")
    score_column = next(c for c in sentiment["coefficients"] if c["column"] == "sentiment_score")
    assert score_column["low"] < score_column["value"] < score_column["high"]
    assert body["metrics"]["roc_auc"]["low"] < body["metrics"]["roc_auc"]["value"]
    assert [row["tier"] for row in body["tiers"]] == ["Red", "Orange", "Yellow", "Green", "Dark-Green"]
    assert body["tiers"][0]["band_low"] == 0.40


def test_unknown_model_version_is_404(client, read_token):
    response = client.get("/v1/model", params={"version": "nope"}, headers=bearer(read_token))
    assert response.status_code == 404
    assert "'nope'" in response.json()["message"]


def test_distribution_counts_latest_date(client, engine, read_token):
    body = client.get("/v1/tiers/distribution", headers=bearer(read_token)).json()
    rows = latest_scores(engine)
    assert body["total"] == len(rows)
    counts = {row["tier"]: row["accounts"] for row in body["tiers"]}
    assert counts["Red"] == sum(row["tier"] == "Red" for row in rows)
    assert sum(row["share"] for row in body["tiers"]) == pytest.approx(1.0)
    assert body["healthy_red_orange_share"] == [0.05, 0.10]


def test_distribution_of_an_earlier_date(client, read_token):
    body = client.get(
        "/v1/tiers/distribution", params={"as_of": "2025-10-01"}, headers=bearer(read_token)
    ).json()
    assert body["as_of"] == "2025-10-01T00:00:00Z"
    assert body["total"] > 0


def test_distribution_history_has_each_date(client, read_token):
    body = client.get("/v1/tiers/history", headers=bearer(read_token)).json()
    assert [item["as_of"][:10] for item in body["items"]] == [f"{day:%Y-%m-%d}" for day in SCORING_DATES]


def test_missing_values_are_null_never_nan(client, engine, read_token):
    account = latest_scores(engine)[0]["account_id"]
    with engine.begin() as connection:
        connection.execute(
            sa.update(operational.scores)
            .where(operational.scores.c.account_id == account)
            .values(
                probability_points=json.dumps({"sentiment": math.nan, "support": 1.0}).replace("NaN", "NaN")
            )
        )
    response = client.get(f"/v1/accounts/{account}/health", headers=bearer(read_token))
    assert response.status_code == 200
    assert "NaN" not in response.text
    sentiment = next(reason for reason in response.json()["top_reasons"] if reason["signal"] == "sentiment")
    assert sentiment["points"] is None


def test_openapi_document_is_published(client):
    document = client.get("/v1/openapi.json").json()
    assert "/v1/accounts/{account_id}/health" in document["paths"]
    assert "HTTPBearer" in document["components"]["securitySchemes"]


def test_prompt_texts_come_from_config(engine, read_token):
    from fastapi.testclient import TestClient

    from account_health.api.app import create_app
    from account_health.config import parse_config

    config = parse_config({"experience": {"prompts": {"talk-to-your-csm": "Your CSM would like a call"}}})
    with TestClient(create_app(engine, config)) as client:
        red = client.get(f"/v1/accounts/{_account_in(engine, 'Red')}/experience", headers=bearer(read_token))
        green = client.get(
            f"/v1/accounts/{_account_in(engine, 'Green')}/experience", headers=bearer(read_token)
        )
    assert red.json()["prompt"]["text"] == "Your CSM would like a call"
    assert green.json()["prompt"]["text"] == "See what more your plan can do for your team"
