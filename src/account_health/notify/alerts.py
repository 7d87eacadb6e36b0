"""Monitoring alerts to Slack: one message per report, through the same outbox as tier changes."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.engine import Connection

from account_health.config import NotifySettings
from account_health.monitor.alerts import Alert
from account_health.notify.enqueue import _insert_new
from account_health.notify.slack_messages import BLOCKS_PER_MESSAGE, SlackMessage, _section, escape
from account_health.store.operational import now
from account_health.store.outbox import PENDING

# One block is the headline, and one may count the alerts that did not fit.
_ALERTS_PER_MESSAGE = BLOCKS_PER_MESSAGE - 2


def alert_message(as_of: datetime, model_version: str, alerts: Sequence[Alert]) -> SlackMessage:
    """Build the message of one monitoring report: a headline, then one section per alert.

    The deduplication key contains the as-of date and a hash of the alerts, so the same report sent
    twice is one message, and a report whose alerts changed is a new one.
    """
    findings = sorted((alert.kind, alert.message) for alert in alerts)
    fingerprint = hashlib.sha256(json.dumps(findings).encode()).hexdigest()[:16]
    headline = (
        f":rotating_light: *account-health monitoring* as of {as_of:%Y-%m-%d}, model "
        f"{escape(model_version)}: {len(findings)} alert{'s' if len(findings) != 1 else ''}"
    )
    lines = [f"*{escape(kind)}*: {escape(message, 2500)}" for kind, message in findings]
    blocks = [_section(headline)] + [_section(line) for line in lines[:_ALERTS_PER_MESSAGE]]
    if len(lines) > _ALERTS_PER_MESSAGE:
        blocks.append(_section(f"and {len(lines) - _ALERTS_PER_MESSAGE} more: see `account-health report`"))
    return SlackMessage(
        dedupe_key=f"slack:monitor:{as_of:%Y-%m-%dT%H:%M:%S}:{fingerprint}",
        kind="monitor_alert",
        text="\n".join([headline, *lines]),
        blocks=blocks,
        change_ids=(),
    )


def enqueue_alerts(
    connection: Connection,
    as_of: datetime,
    model_version: str,
    alerts: Sequence[Alert],
    config: NotifySettings,
) -> int:
    """Add a Slack message with the report's alerts to the outbox; return 1 when it was new, else 0.

    Nothing is queued when Slack is off or there is no alert.
    """
    if not config.slack.enabled or not alerts:
        return 0
    message = alert_message(as_of, model_version, alerts)
    row = {
        "dedupe_key": message.dedupe_key,
        "destination": "slack",
        "kind": message.kind,
        "run_id": None,
        "as_of": as_of,
        "account_id": None,
        "payload": json.dumps(message.payload(), sort_keys=True),
        "status": PENDING,
        "attempts": 0,
        "in_doubt": False,
        "created_at": now(),
    }
    return _insert_new(connection, [row])
