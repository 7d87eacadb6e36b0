from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from typer.testing import CliRunner

from account_health.cli.app import app
from account_health.notify import enqueue
from account_health.store import operational
from notify.changes import notice, slack_settings
from notify.standins import SlackStandIn

runner = CliRunner()


def _workspace(folder: Path, slack: SlackStandIn) -> sa.Engine:
    folder.mkdir()
    (folder / "account-health.toml").write_text(
        f'[notify.slack]\nenabled = true\nbase_url = "{slack.url}/api"\nmax_attempts = 2\nbackoff_seconds = 0.01\n',
        encoding="utf-8",
    )
    engine = operational.open_operational_store(f"sqlite:///{folder / 'data' / 'operational.sqlite'}")
    with engine.begin() as connection:
        enqueue(connection, [notice(1, new_tier="Red"), notice(2, new_tier="Yellow")], slack_settings(slack))
    return engine


def test_outbox_lists_unsent_messages(tmp_path: Path, slack_env: SlackStandIn):
    engine = _workspace(tmp_path / "ws", slack_env)
    engine.dispose()
    result = runner.invoke(app, ["-w", str(tmp_path / "ws"), "outbox"])
    assert result.exit_code == 0, result.output
    assert "unsent messages" in result.output
    assert "A00001" in result.output
    assert "digest" in result.output


def test_outbox_retry_shows_failures_and_exits_1(tmp_path: Path, slack_env: SlackStandIn):
    slack_env.fail_every = 1
    engine = _workspace(tmp_path / "ws", slack_env)
    engine.dispose()
    result = runner.invoke(app, ["-w", str(tmp_path / "ws"), "outbox", "--retry", "--status", "failed"])
    assert result.exit_code == 1, result.output
    assert "slack: 0 sent" in result.output
    assert "HTTP 500" in result.output
    assert "failed messages" in result.output


def test_outbox_retry_sends_then_lists_sent(tmp_path: Path, slack_env: SlackStandIn):
    engine = _workspace(tmp_path / "ws", slack_env)
    engine.dispose()
    result = runner.invoke(app, ["-w", str(tmp_path / "ws"), "outbox", "--retry"])
    assert result.exit_code == 0, result.output
    assert "slack: 2 sent" in result.output
    listed = runner.invoke(app, ["-w", str(tmp_path / "ws"), "outbox", "--status", "sent", "--limit", "1"])
    assert listed.exit_code == 0, listed.output
    assert "sent messages, at most 1" in listed.output
    assert len(slack_env.messages) == 2


def test_outbox_rejects_unknown_status(tmp_path: Path, slack_env: SlackStandIn):
    _workspace(tmp_path / "ws", slack_env).dispose()
    result = runner.invoke(app, ["-w", str(tmp_path / "ws"), "outbox", "--status", "lost"])
    assert result.exit_code == 2
    assert "'lost' is not one of pending, failed, sent" in result.output
