"""Monitoring alerts go to Slack through the outbox: one message per report, never twice."""

from __future__ import annotations

from datetime import datetime

from account_health.monitor.alerts import Alert
from account_health.notify import deliver, outbox_entries
from account_health.notify.alerts import alert_message, enqueue_alerts
from notify.changes import slack_settings
from notify.standins import SlackStandIn

AS_OF = datetime(2026, 12, 1)
ALERTS = [
    Alert("retrain", "Retrain: the weight of usage moved outside its interval <z -3.3>", {"signal": "usage"}),
    Alert("red_orange_share", "Red + Orange is 18 % of accounts, above 15 %"),
]


def test_alerts_posted_once_per_report(engine, slack_env: SlackStandIn):
    settings = slack_settings(slack_env)
    with engine.begin() as connection:
        assert enqueue_alerts(connection, AS_OF, "m-1", ALERTS, settings) == 1
    report = deliver(engine, settings)
    # The same report again is the same message; a report with other alerts is a new one.
    with engine.begin() as connection:
        assert enqueue_alerts(connection, AS_OF, "m-1", list(reversed(ALERTS)), settings) == 0
        assert enqueue_alerts(connection, AS_OF, "m-1", ALERTS[:1], settings) == 1
    deliver(engine, settings)

    assert report.sent == 1
    assert len(slack_env.messages) == 2
    assert not outbox_entries(engine)
    text = slack_env.messages[0]["text"]
    assert "2 alerts" in text
    assert "&lt;z -3.3&gt;" in text
    assert "<z" not in text


def test_alerts_without_slack_queue_nothing(engine, slack_env: SlackStandIn):
    with engine.begin() as connection:
        assert enqueue_alerts(connection, AS_OF, "m-1", [], slack_settings(slack_env)) == 0
        assert enqueue_alerts(connection, AS_OF, "m-1", ALERTS, slack_settings(slack_env, enabled=False)) == 0


def test_alert_message_within_block_limits():
    many = [Alert(f"kind{number}", "x" * 4000) for number in range(80)]
    message = alert_message(AS_OF, "m-1", many)
    assert len(message.blocks) <= 50
    assert all(len(block["text"]["text"]) <= 3000 for block in message.blocks)
    assert "and 32 more" in message.blocks[-1]["text"]["text"]
