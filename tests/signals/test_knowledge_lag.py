"""`[signals] knowledge_lag_hours`: a snapshot as of T reads rows available before T + lag and events before T."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from account_health.config import CONFIG_FILE, Workspace, load_workspace
from account_health.errors import ConfigError
from account_health.signals import compute_signals
from account_health.signals.backfill import backfill_signals
from account_health.sources.ingest import ingest
from account_health.store.analytical import open_analytical_store
from engines import assert_same

T = datetime(2024, 3, 1)
CONFIG = """\
[workspace]
analytical_store = "analytical.duckdb"

[sources.accounts]
table = "accounts"
files = ["accounts.csv"]

[sources.events]
table = "usage_events"
files = ["events.csv"]
loaded_at = "synced_at"

[sources.tickets]
table = "tickets"
files = ["tickets.csv"]
loaded_at = "synced_at"

[sources.responses]
table = "sentiment_responses"
files = ["responses.csv"]
loaded_at = "synced_at"

[sources.integrations]
table = "integrations"
files = ["integrations.csv"]
loaded_at = "synced_at"
"""


def _iso(instant: datetime | None) -> str:
    return "" if instant is None else instant.isoformat() + "Z"


def _csv(path: Path, header: str, rows: list[tuple[Any, ...]]) -> None:
    lines = [header] + [
        ",".join(_iso(v) if isinstance(v, datetime) or v is None else str(v) for v in row) for row in rows
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _workspace(folder: Path) -> Workspace:
    (folder / CONFIG_FILE).write_text(CONFIG, encoding="utf-8")
    return load_workspace(folder)


def _with_lag(workspace: Workspace, hours: float) -> Workspace:
    signals = workspace.config.signals.model_copy(update={"knowledge_lag_hours": hours})
    return Workspace(workspace.config.model_copy(update={"signals": signals}), workspace.root)


def _write(folder: Path) -> None:
    """A1 (UTC) and A2 (New York) with daily usage by u1 and rows around T:

    - loaded 2 hours after T: an event of the new user u2 on the last day before T, a ticket created
      the day before T, an NPS response of the day before T;
    - occurred after T (and loaded soon after): events, a ticket, a response and an integration;
    - ticket updates: K-EARLY solved before T in a version loaded at T + 5 h, K-LATE the same at
      T + 7 h, K-AFTER solved at T + 2 h in a version loaded at T + 3 h.
    """
    _csv(folder / "accounts.csv", "account_id,timezone", [("A1", "UTC"), ("A2", "America/New_York")])
    events: list[tuple[Any, ...]] = []
    for parity, account in enumerate(("A1", "A2")):
        # u1 is active every other day and not on the account's last local day before T: 29 February
        # in UTC, 28 February in New York (T is 19:00 on 29 February there).
        for day in range(2 - parity, 40, 2):
            occurred = T - timedelta(days=day) + timedelta(hours=12)
            events.append((f"{account}-u1-{day}", account, "u1", occurred, None))
        last_day = T - timedelta(hours=12) if account == "A1" else T - timedelta(hours=30)
        events.append((f"{account}-u2-late", account, "u2", last_day, T + timedelta(hours=2)))
        # After T: on a day after the end day, whatever the lag.
        for hours in (0, 1, 5):
            occurred = T + timedelta(hours=hours)
            events.append(
                (f"{account}-u3-after-{hours}", account, "u3", occurred, occurred + timedelta(minutes=30))
            )
    _csv(folder / "events.csv", "event_id,account_id,user_id,occurred_at,synced_at", events)

    created = T - timedelta(days=10)
    solved_before = T - timedelta(days=1)
    tickets = [
        ("K-LOADED-LATE", "A1", T - timedelta(days=1), None, "urgent", "open", T + timedelta(hours=2)),
        ("K-EARLY", "A1", created, None, "normal", "open", None),
        ("K-EARLY", "A1", created, solved_before, "normal", "solved", T + timedelta(hours=5)),
        ("K-LATE", "A1", created, None, "normal", "open", None),
        ("K-LATE", "A1", created, solved_before, "normal", "solved", T + timedelta(hours=7)),
        ("K-AFTER", "A1", created, None, "normal", "open", None),
        ("K-AFTER", "A1", created, T + timedelta(hours=2), "normal", "solved", T + timedelta(hours=3)),
        ("K-CREATED-AFTER", "A1", T + timedelta(hours=1), None, "urgent", "open", T + timedelta(hours=1)),
        ("K-CREATED-AFTER", "A2", T, None, "urgent", "open", T + timedelta(hours=1)),
    ]
    _csv(
        folder / "tickets.csv",
        "ticket_id,account_id,created_at,solved_at,priority,status,synced_at",
        tickets,
    )
    _csv(
        folder / "responses.csv",
        "account_id,responded_at,kind,score,synced_at",
        [
            ("A1", T - timedelta(days=20), "nps", 9, None),
            ("A1", T - timedelta(days=1), "nps", 2, T + timedelta(hours=2)),
            ("A2", T - timedelta(days=20), "nps", 9, None),
            ("A2", T + timedelta(hours=1), "nps", 0, T + timedelta(hours=1)),
        ],
    )
    _csv(
        folder / "integrations.csv",
        "account_id,integration,connected_at,disconnected_at,synced_at",
        [
            ("A1", "slack", T - timedelta(days=200), None, None),
            ("A2", "slack", T - timedelta(days=200), None, None),
            ("A2", "jira", T + timedelta(hours=1), None, T + timedelta(hours=1)),
        ],
    )


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    folder = tmp_path_factory.mktemp("lag")
    _write(folder)
    workspace = _workspace(folder)
    with open_analytical_store(workspace.analytical_store_path) as store:
        report = ingest(workspace, store)
    assert sum(counts.quarantined for counts in report.sources) == 0
    return workspace


def _at(workspace: Workspace, hours: float, account: str, as_of: datetime = T) -> pd.Series:
    with open_analytical_store(workspace.analytical_store_path, read_only=True) as store:
        frame = compute_signals(_with_lag(workspace, hours), store, [as_of])
    return frame.set_index("account_id").loc[account]


def test_default_lag_six_hours(workspace: Workspace) -> None:
    assert workspace.config.signals.knowledge_lag_hours == 6
    assert workspace.config.signals.knowledge_lag == timedelta(hours=6)


@pytest.mark.parametrize(("hours", "seen"), [(0, False), (1, False), (6, True), (48, True)])
def test_row_loaded_after_t_needs_lag(workspace: Workspace, hours: float, seen: bool) -> None:
    strict = _at(workspace, 0, "A1")
    row = _at(workspace, hours, "A1")

    # u2's day before T, the ticket created the day before T and the NPS of 2 were loaded at T + 2 h.
    assert bool(row["usage_end"] > strict["usage_end"]) == seen
    assert bool(row["nps_latest"] == 2) == seen
    assert row["support_load"] - strict["support_load"] == (4.0 if seen else 0.0)
    # A New York account's last local day ends at 05:00 UTC; its late row is seen the same way.
    assert bool(_at(workspace, hours, "A2")["usage_end"] > _at(workspace, 0, "A2")["usage_end"]) == seen


@pytest.mark.parametrize("hours", [0, 6, 48])
def test_events_after_t_never_count(workspace: Workspace, hours: float) -> None:
    # A2's ticket created at T, its NPS of 0 and its jira connection an hour after T are each loaded
    # an hour after T. They do not count at T whatever the lag, and two days later they do.
    row = _at(workspace, hours, "A2")
    assert row["support_tickets"] == 0
    assert row["nps_latest"] == 9
    assert row["integrations_active"] == 1
    later = _at(workspace, hours, "A2", T + timedelta(days=2))
    assert later["support_tickets"] == 1
    assert later["nps_latest"] == 0
    assert later["integrations_active"] == 2
    # A1's ticket created an hour after T is left out too: K-LOADED-LATE (once seen), K-EARLY, K-LATE
    # and K-AFTER count.
    assert _at(workspace, hours, "A1")["support_tickets"] == (4 if hours > 2 else 3)


def test_ticket_versions_follow_the_cut_off(workspace: Workspace) -> None:
    strict, lagged = _at(workspace, 0, "A1"), _at(workspace, 6, "A1")

    # Lag 0: K-EARLY, K-LATE and K-AFTER are open in their first versions (K-LOADED-LATE is unseen).
    assert strict["support_open_backlog"] == 3
    # Lag 6: K-EARLY's solved version (loaded at T + 5 h) is seen, K-LATE's (T + 7 h) is not, and
    # K-AFTER's is seen but solved after T, so it is still open at T; K-LOADED-LATE is open.
    assert lagged["support_open_backlog"] == 3
    assert _at(workspace, 8, "A1")["support_open_backlog"] == 2
    assert _at(workspace, 4, "A1")["support_open_backlog"] == 4


def test_backfill_equals_compute_signals_with_the_lag(workspace: Workspace) -> None:
    instants = [T + timedelta(hours=hours) for hours in range(-48, 49, 3)]
    lagged = _with_lag(workspace, 6)
    with open_analytical_store(workspace.analytical_store_path) as store:
        report = backfill_signals(lagged, store, instants, table="lag_backfill", block_instants=7)
        backfilled = store.connection.execute("SELECT * FROM lag_backfill").df()
        store.connection.execute("DROP TABLE lag_backfill")
        expected = compute_signals(lagged, store, instants)

    # A2's late user-day (28 February in New York) is known at T + 2 h, after the cut-off of as-of
    # instants from 29 February 05:00 UTC (when it ends the window) to T - 4 h: those pairs are dirty.
    assert report.dirty_pairs > 0
    backfilled = backfilled.sort_values(["as_of", "account_id"]).reset_index(drop=True)
    backfilled["as_of"] = pd.to_datetime(backfilled["as_of"]).astype("datetime64[us]")
    assert_same(expected, backfilled[list(expected.columns)])


@pytest.mark.parametrize("value", ["-1", "48.5", "nan", '"six"', '"6"', "true"])
def test_lag_outside_range_rejected(tmp_path: Path, value: str) -> None:
    (tmp_path / CONFIG_FILE).write_text(f"[signals]\nknowledge_lag_hours = {value}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        load_workspace(tmp_path)
    message = str(error.value)
    # The message names the value as written, a string in Python's quotes.
    written = "True" if value == "true" else value.replace('"', "'")
    assert f"signals.knowledge_lag_hours = {written}:" in message
    assert "from 0 to 48" in message


def test_lag_zero_and_48_are_accepted(tmp_path: Path) -> None:
    for value in ("0", "48", "1.5"):
        (tmp_path / CONFIG_FILE).write_text(f"[signals]\nknowledge_lag_hours = {value}\n", encoding="utf-8")
        assert load_workspace(tmp_path).config.signals.knowledge_lag_hours == float(value)
