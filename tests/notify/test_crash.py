"""A delivering process killed after Slack accepted a message but before the outbox recorded it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa

from account_health.notify import deliver, enqueue, outbox_entries
from notify.changes import notice, slack_settings
from notify.standins import SLACK_CHANNEL, SLACK_TOKEN, WEBHOOK_PATH, SlackStandIn


def _workspace(folder: Path, slack: SlackStandIn, method: str) -> None:
    folder.mkdir()
    (folder / "account-health.toml").write_text(
        f'[notify.slack]\nenabled = true\nmethod = "{method}"\nbase_url = "{slack.url}/api"\n'
        "backoff_seconds = 0.01\n",
        encoding="utf-8",
    )


def _kill_during_second_post(folder: Path, engine: sa.Engine, slack: SlackStandIn) -> None:
    """Run `account-health outbox --retry` in a child process and SIGKILL it while Slack delays the response to post 2."""
    slack.hold_after_accept = 2
    environment = {
        **os.environ,
        "ACCOUNT_HEALTH_OPERATIONAL_STORE": engine.url.render_as_string(hide_password=False),
        "ACCOUNT_HEALTH_SLACK_TOKEN": SLACK_TOKEN,
        "ACCOUNT_HEALTH_SLACK_CHANNEL": SLACK_CHANNEL,
        "ACCOUNT_HEALTH_SLACK_WEBHOOK_URL": slack.url + WEBHOOK_PATH,
    }
    child = subprocess.Popen(
        [sys.executable, "-m", "account_health.cli.app", "-w", str(folder), "outbox", "--retry"],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        accepted = slack.accepted.wait(120)
        child.send_signal(signal.SIGKILL)
        _stdout, stderr = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
    assert accepted, f"the child never posted a second message: {stderr.decode()[-2000:]}"
    assert child.returncode == -signal.SIGKILL
    slack.release.set()
    slack.hold_after_accept = None


@pytest.mark.parametrize("method", ["web_api", "webhook"])
def test_killed_delivery_then_redelivery(engine, slack_env: SlackStandIn, tmp_path: Path, method: str):
    slack = slack_env
    settings = slack_settings(slack, method=method)
    with engine.begin() as connection:
        enqueue(connection, [notice(number, new_tier="Red") for number in range(5)], settings)
    _workspace(tmp_path / "workspace", slack, method)

    _kill_during_second_post(tmp_path / "workspace", engine, slack)

    (doubtful,) = [entry for entry in outbox_entries(engine) if entry.in_doubt]
    assert doubtful.attempts == 1
    report = deliver(engine, settings)
    posted = Counter(message["text"] for message in slack.messages)
    assert len(posted) == 5, posted
    if method == "web_api":
        # The message Slack accepted is found in the channel history by its metadata, not posted again.
        assert max(posted.values()) == 1, posted.most_common(2)
        assert report.destinations[0].recovered == 1, report
    else:
        # An incoming webhook cannot be asked, so the accepted message is posted again: at-least-once.
        assert sorted(posted.values()) == [1, 1, 1, 1, 2], posted
        assert report.destinations[0].resent_in_doubt == 1, report
    assert not outbox_entries(engine)
