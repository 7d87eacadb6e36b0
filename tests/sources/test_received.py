"""Job changes received by the API reach the champion signal through contact_changes, point in time."""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd
import pytest

from account_health.actions.job_changes import record_job_change
from account_health.config import load_workspace
from account_health.signals import compute_signals
from account_health.sources.ingest import ingest
from account_health.sources.received import API_SOURCE, load_received_job_changes
from account_health.store import actions
from account_health.workspace import open_stores
from action_company import copy_workspace
from nightly_fixtures import FIRST

LEFT_AT = datetime(2025, 11, 3, 8, 0)
RECEIVED = datetime(2025, 11, 5, 12, 0)
BEFORE = datetime(2025, 11, 5)  # a snapshot taken before the change arrived
AFTER = datetime(2025, 11, 6)


@pytest.fixture
def company(template, tmp_path):
    """A copy of the template with one champion's departure received by the API at RECEIVED."""
    workspace = copy_workspace(template, tmp_path / "company")
    with open_stores(workspace) as (_store, engine):
        action = next(
            row for row in actions.read_account_actions(engine, FIRST) if len(row["champions"]) == 1
        )
        record_job_change(
            workspace.config,
            engine,
            action["account_id"],
            action["champions"][0],
            "left_company",
            LEFT_AT,
            received_at=RECEIVED,
        )
    return workspace, action["account_id"], action["champions"][0]


def _champion(workspace, store, account_id, as_of):
    frame = compute_signals(workspace, store, [as_of])
    return frame.loc[frame["account_id"] == account_id].iloc[0]


def test_received_change_is_seen_only_after_it_arrived(company):
    workspace, account_id, _contact = company
    with open_stores(workspace) as (store, engine):
        copied = load_received_job_changes(store, engine)
        before = _champion(workspace, store, account_id, BEFORE)
        after = _champion(workspace, store, account_id, AFTER)
        stored = store.connection.execute(
            "SELECT changed_at, _available_at, _source FROM contact_changes WHERE _source = ?", [API_SOURCE]
        ).fetchall()

    assert (copied.read, copied.inserted, copied.new_version, copied.unchanged) == (1, 1, 0, 0)
    assert stored == [(LEFT_AT, RECEIVED, API_SOURCE)]
    # Dated 3 November, but known only from 5 November at noon: a snapshot at midnight before misses it.
    assert (before["champion_in_seat"], before["champions_in_seat"]) == (1.0, 1)
    assert (after["champion_in_seat"], after["champions_in_seat"]) == (0.0, 0)
    assert after["days_since_champion_departure"] == (AFTER - LEFT_AT) / timedelta(days=1)


def test_copy_again_changes_nothing(company):
    workspace, _account_id, _contact = company
    with open_stores(workspace) as (store, engine):
        first = load_received_job_changes(store, engine)
        loads = store.connection.execute("SELECT count(*) FROM loads").fetchall()[0][0]
        second = load_received_job_changes(store, engine)
        loads_again = store.connection.execute("SELECT count(*) FROM loads").fetchall()[0][0]
        recorded = store.connection.execute(
            'SELECT source, "table", read, inserted, new_version, unchanged FROM loads WHERE load_id = ?',
            [first.load_id],
        ).fetchall()
    assert (second.read, second.inserted, second.unchanged, second.load_id) == (1, 0, 1, None)
    assert loads_again == loads
    assert recorded == [(API_SOURCE, "contact_changes", 1, 1, 0, 0)]


def test_batch_row_known_later_gets_an_earlier_version(company):
    """The batch feed loaded the same departure first, but after the API had received it."""
    workspace, _account_id, contact = company
    exports = workspace.root / "exports" / "contact_changes.csv"
    frame = pd.read_csv(exports)
    row = pd.DataFrame([{"contact_id": contact, "changed_at": LEFT_AT.isoformat(), "change": "left_company"}])
    pd.concat([frame, row]).to_csv(exports, index=False)
    with open_stores(workspace) as (store, engine):
        # Not a first load, so the batch row is available from the ingest instant, long after RECEIVED.
        ingest(workspace, store, ["contact_changes"])
        copied = load_received_job_changes(store, engine)
        versions = store.connection.execute(
            "SELECT _source, _available_at FROM contact_changes WHERE contact_id = ? ORDER BY _available_at",
            [contact],
        ).fetchall()
    assert (copied.inserted, copied.new_version) == (0, 1)
    assert versions[0] == (API_SOURCE, RECEIVED)
    assert versions[1][0] == "contact_changes"
    assert versions[1][1] > RECEIVED


def test_received_changes_without_batch_source(company):
    """A workspace whose config has no contact_changes source still counts the received departures."""
    workspace, account_id, _contact = company
    config = workspace.root / "account-health.toml"
    text = config.read_text(encoding="utf-8")
    config.write_text(
        text.replace(
            '[sources.contact_changes]\ntable = "contact_changes"\nfiles = ["exports/contact_changes.csv"]\n',
            "",
        ),
        encoding="utf-8",
    )
    workspace = load_workspace(workspace.root)
    assert all(source.table != "contact_changes" for source in workspace.config.sources.values())
    with open_stores(workspace) as (store, engine):
        load_received_job_changes(store, engine)
        after = _champion(workspace, store, account_id, AFTER)
    assert after["champion_in_seat"] == 0.0
