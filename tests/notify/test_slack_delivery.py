from __future__ import annotations

import logging
from collections import Counter

import sqlalchemy as sa

from account_health.notify import deliver, enqueue, outbox_counts, outbox_entries
from account_health.store.outbox import outbox
from notify.changes import notice, slack_settings
from notify.standins import SLACK_TOKEN, WEBHOOK_PATH, SlackStandIn


def _enqueue(engine: sa.Engine, changes, settings) -> None:
    with engine.begin() as connection:
        enqueue(connection, changes, settings)


def test_thousand_changes_each_posted_once(engine, slack_env: SlackStandIn):
    slack = slack_env
    slack.rate_limit_every, slack.fail_every = 3, 7
    settings = slack_settings(slack, immediate_tiers=["Red", "Orange", "Yellow", "Green", "Dark-Green"])
    changes = [notice(number) for number in range(1000)]
    _enqueue(engine, changes, settings)

    report = deliver(engine, settings)

    keys = Counter(slack.keys())
    assert len(keys) == 1000, len(keys)
    assert max(keys.values()) == 1, keys.most_common(3)
    assert report.sent == 1000, report
    assert report.destinations[0].counters.rate_limited > 300, report
    assert outbox_counts(engine) == {("slack", "sent"): 1000}


def test_retry_after_is_honoured(sqlite_engine, slack_env: SlackStandIn):
    slack = slack_env
    slack.rate_limit_requests, slack.retry_after = {1}, "1"
    settings = slack_settings(slack)
    _enqueue(sqlite_engine, [notice(1, new_tier="Red")], settings)

    report = deliver(sqlite_engine, settings)

    times = [when for when, _method, _path in slack.requests]
    assert report.sent == 1
    assert len(times) == 2, slack.requests
    assert times[1] - times[0] >= 1.0, times


def test_long_retry_after_stops_the_destination(sqlite_engine, slack_env: SlackStandIn):
    slack = slack_env
    slack.rate_limit_every, slack.retry_after = 1, "3600"
    settings = slack_settings(slack, max_retry_after_seconds=60)
    _enqueue(sqlite_engine, [notice(1, new_tier="Red"), notice(2, new_tier="Red")], settings)
    report = deliver(sqlite_engine, settings)
    (destination,) = report.destinations
    assert destination.error is not None and "max_retry_after_seconds" in destination.error
    assert destination.left_pending == 1, destination
    assert destination.counters.requests == 1, destination


def test_failed_message_waits_for_the_next_delivery(engine, slack_env: SlackStandIn):
    slack = slack_env
    slack.fail_every = 1
    settings = slack_settings(slack, max_attempts=3)
    _enqueue(engine, [notice(1, new_tier="Red")], settings)

    first = deliver(engine, settings)
    (entry,) = outbox_entries(engine, "failed")
    assert first.unsent == 1
    assert entry.attempts == 3
    assert entry.last_error is not None and "HTTP 500" in entry.last_error

    slack.fail_every = None
    second = deliver(engine, settings)
    assert second.sent == 1
    assert slack.keys() == [entry.dedupe_key]


def test_timeout_after_accept_posts_once(engine, slack_env: SlackStandIn):
    slack = slack_env
    slack.delay_after_accept, slack.delay_seconds = {1}, 1.5
    settings = slack_settings(slack, timeout_seconds=0.5)
    _enqueue(engine, [notice(1, new_tier="Red"), notice(2, new_tier="Orange")], settings)

    report = deliver(engine, settings)

    assert sorted(slack.keys()) == sorted(set(slack.keys())), slack.keys()
    assert len(slack.keys()) == 2
    assert report.destinations[0].recovered == 1, report


def test_rejected_blocks_fall_back_to_text(sqlite_engine, slack_env: SlackStandIn):
    slack = slack_env
    slack.reject_text = "Account 1"
    settings = slack_settings(slack)
    _enqueue(sqlite_engine, [notice(1, new_tier="Red"), notice(2, new_tier="Red")], settings)

    report = deliver(sqlite_engine, settings)

    assert report.sent == 2
    assert ["blocks" in message for message in slack.messages] == [False, True]
    assert "Account 1" in slack.messages[0]["text"]


def test_bad_token_stops_and_keeps_messages(sqlite_engine, slack_env: SlackStandIn, monkeypatch):
    monkeypatch.setenv("ACCOUNT_HEALTH_SLACK_TOKEN", "xoxb-wrong")
    settings = slack_settings(slack_env)
    _enqueue(sqlite_engine, [notice(1, new_tier="Red"), notice(2, new_tier="Red")], settings)
    report = deliver(sqlite_engine, settings)
    (destination,) = report.destinations
    assert destination.error is not None and "invalid_auth" in destination.error
    assert outbox_counts(sqlite_engine) == {("slack", "failed"): 1, ("slack", "pending"): 1}


def test_missing_token_is_reported(sqlite_engine, slack_env: SlackStandIn, monkeypatch):
    monkeypatch.delenv("ACCOUNT_HEALTH_SLACK_TOKEN")
    settings = slack_settings(slack_env)
    _enqueue(sqlite_engine, [notice(1, new_tier="Red")], settings)
    report = deliver(sqlite_engine, settings)
    assert report.destinations[0].error is not None
    assert "ACCOUNT_HEALTH_SLACK_TOKEN is not set" in report.destinations[0].error
    assert report.destinations[0].left_pending == 1


def test_webhook_posts_every_message(engine, slack_env: SlackStandIn):
    slack = slack_env
    slack.rate_limit_every, slack.fail_every = 3, 7
    settings = slack_settings(slack, method="webhook")
    changes = [notice(number) for number in range(40)]
    _enqueue(engine, changes, settings)

    report = deliver(engine, settings)

    assert report.ok, report
    texts = Counter(message["text"] for message in slack.messages)
    assert len(texts) == report.sent
    assert max(texts.values()) == 1


def test_secrets_stay_out_of_logs_and_errors(sqlite_engine, slack_env: SlackStandIn, caplog):
    slack = slack_env
    slack.fail_every = 1
    caplog.set_level(logging.DEBUG)
    for method in ("webhook", "web_api"):
        settings = slack_settings(slack, method=method, max_attempts=2)
        _enqueue(sqlite_engine, [notice(1, new_tier="Red")], settings)
        deliver(sqlite_engine, settings)
    with sqlite_engine.connect() as connection:
        errors = " ".join(
            str(error) for error in connection.execute(sa.select(outbox.c.last_error)).scalars()
        )
    assert "HTTP Request" in caplog.text
    for secret in (WEBHOOK_PATH, SLACK_TOKEN):
        assert secret not in caplog.text
        assert secret not in errors


def test_long_digest_posts_in_parts_within_limits(sqlite_engine, slack_env: SlackStandIn):
    settings = slack_settings(slack_env)
    changes = [notice(number, new_tier="Yellow", account_name="N" * 190) for number in range(1500)]
    _enqueue(sqlite_engine, changes, settings)

    report = deliver(sqlite_engine, settings)

    assert report.sent == len(slack_env.messages) > 1
    # The stand-in rejects blocks outside Block Kit's limits with invalid_blocks; no part fell back to text.
    assert all("blocks" in message for message in slack_env.messages)
    assert "(part 1 of " in slack_env.messages[0]["text"]


def test_concurrent_deliveries_post_once(engine, slack_env: SlackStandIn):
    import threading

    settings = slack_settings(slack_env, immediate_tiers=["Red", "Orange", "Yellow", "Green", "Dark-Green"])
    _enqueue(engine, [notice(number) for number in range(60)], settings)
    reports = []
    threads = [threading.Thread(target=lambda: reports.append(deliver(engine, settings))) for _ in range(2)]

    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)

    keys = Counter(slack_env.keys())
    assert len(keys) == 60
    assert max(keys.values()) == 1, keys.most_common(2)
    assert sum(report.sent for report in reports) == 60, reports
