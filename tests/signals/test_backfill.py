"""The daily backfill reproduces compute_signals at every instant, late rows and timezones included."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from account_health.signals import DETAILS, FEATURES, compute_signals
from account_health.signals.backfill import backfill_signals
from account_health.store.analytical import open_analytical_store
from usage_loads import START, ingest_loads, usage_workspace


def test_backfill_equals_compute_signals_at_every_day(tmp_path: Path) -> None:
    workspace = usage_workspace(tmp_path)
    ingest_loads(workspace, loads=4, seed=19)
    as_of = [START + timedelta(days=day) for day in range(0, 70)]

    with open_analytical_store(workspace.analytical_store_path) as store:
        report = backfill_signals(workspace, store, as_of, block_instants=25)
        backfilled = store.connection.execute("SELECT * FROM signal_backfill").df()
        expected = compute_signals(workspace, store, as_of)

    assert report.dirty_pairs > 0, "the loads should hold user-days that arrived late"
    backfilled = backfilled.sort_values(["as_of", "account_id"]).reset_index(drop=True)
    assert len(backfilled) == len(expected) == 3 * 70
    assert expected["usage_trend"].abs().sum() > 0
    for column in ("account_id", "as_of", "usage_measure"):
        assert backfilled[column].astype(str).tolist() == expected[column].astype(str).tolist(), column
    for column in (*FEATURES, *DETAILS):
        if column == "usage_measure":
            continue
        np.testing.assert_allclose(
            backfilled[column].to_numpy(float),
            expected[column].to_numpy(float),
            rtol=1e-9,
            atol=1e-12,
            err_msg=column,
        )


def test_backfill_replaces_the_table(tmp_path: Path) -> None:
    workspace = usage_workspace(tmp_path)
    ingest_loads(workspace, loads=1, seed=23)
    with open_analytical_store(workspace.analytical_store_path) as store:
        backfill_signals(workspace, store, [START + timedelta(days=day) for day in range(10)])
        backfill_signals(workspace, store, [START + timedelta(days=day) for day in range(4)])
        frame = store.connection.execute("SELECT count(*) AS n FROM signal_backfill").df()
    assert pd.Series(frame["n"]).iloc[0] == 3 * 4
