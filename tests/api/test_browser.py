"""The dashboard in headless Chromium, against a real uvicorn server on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from account_health.scoring.explain import reasons_for
from account_health.store import operational
from account_health.store.tokens import create_token
from scored import latest_scores, serve

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def server(workspace) -> Iterator[str]:
    """Start `account-health serve` on a free loopback port; return its base URL."""
    with serve(workspace.root) as base:
        yield base


@pytest.fixture
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found; install it with `apt-get install -y chromium`")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        try:
            yield browser
        finally:
            browser.close()


def test_sign_in_filter_red_and_see_top_reason(server, browser, engine, workspace):
    token = create_token(engine, "read")[1]
    riskiest = latest_scores(engine)[0]
    assert riskiest["tier"] == "Red"
    top_reason = reasons_for(
        json.loads(riskiest["signals"]),
        json.loads(riskiest["contributions"]),
        json.loads(operational.latest_model_row(engine)["artifact"])["signal_settings"],
    )[0].text

    page = browser.new_page()  # type: ignore[attr-defined]
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(f"{server}/dashboard/accounts")
    assert "/dashboard/sign-in" in page.url
    page.fill("#token", token)
    page.click("button[type=submit]")
    page.wait_for_url(f"{server}/dashboard/accounts")

    page.select_option("#filter-tier", "Red")
    page.click("form.filters button[type=submit]")
    page.wait_for_url("**/dashboard/accounts?tier=Red**")
    tiers = page.locator("table.accounts td .tier").all_inner_texts()
    assert tiers and set(tiers) == {"Red"}

    page.click(f"text={riskiest['account_id']}")
    page.wait_for_url(f"**/dashboard/accounts/{riskiest['account_id']}")
    assert top_reason in page.locator(".top-reason").inner_text()
    assert page.locator(".chart svg").count() == 2
    # Nothing was fetched from anywhere but this server.
    assert all(url.startswith(server) or url.startswith("data:") for url in requested), requested
