from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pandas as pd

from account_health.config import load_workspace
from account_health.signals import compute_signals
from account_health.sources.ingest import ingest
from account_health.workspace import open_stores
from company import write_company


def test_event_at_as_of_excluded(tmp_path: Path):
    folder = write_company(tmp_path, accounts=5)
    tickets = pd.read_csv(folder / "exports" / "tickets.csv")
    ticket = tickets.iloc[0]
    account, created = ticket["account_id"], pd.Timestamp(ticket["created_at"]).to_pydatetime()
    same_instant = tickets[
        (tickets["account_id"] == account) & (pd.to_datetime(tickets["created_at"]) == created)
    ]

    workspace = load_workspace(folder)
    with open_stores(workspace) as (store, _engine):
        ingest(workspace, store)
        frame = compute_signals(workspace, store, [created, created + timedelta(microseconds=1)])
    rows = frame[frame["account_id"] == account].set_index("as_of")
    at, after = (
        rows.loc[pd.Timestamp(created)],
        rows.loc[pd.Timestamp(created) + pd.Timedelta(microseconds=1)],
    )

    assert after["support_tickets"] - at["support_tickets"] == len(same_instant)
    assert after["support_load"] > at["support_load"]
