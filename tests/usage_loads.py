"""Workspaces with several loads of usage events: late rows, repeated event ids, three timezones."""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from account_health.config import CONFIG_FILE, Workspace, load_workspace
from account_health.signals.aggregate import refresh_usage_aggregate
from account_health.sources.ingest import ingest
from account_health.store.analytical import open_analytical_store

SOURCES = """\
[workspace]
analytical_store = "analytical.duckdb"

[signals]
internal_user_patterns = ["bot-*"]

[sources.accounts]
table = "accounts"
files = ["accounts.csv"]

[sources.events]
table = "usage_events"
files = ["events.csv"]
loaded_at = "loaded_at"
"""
ZONES = {"A1": "UTC", "A2": "America/New_York", "A3": "Asia/Kolkata"}
START = datetime(2024, 1, 1)


def usage_workspace(folder: Path, knowledge_lag_hours: float | None = None) -> Workspace:
    """The usage workspace in `folder`; `knowledge_lag_hours` sets that [signals] key (else the default)."""
    config = SOURCES
    if knowledge_lag_hours is not None:
        config = config.replace("[signals]\n", f"[signals]\nknowledge_lag_hours = {knowledge_lag_hours}\n")
    (folder / CONFIG_FILE).write_text(config, encoding="utf-8")
    write_accounts(folder, ZONES)
    return load_workspace(folder)


def write_accounts(folder: Path, zones: dict[str, str]) -> None:
    lines = ["account_id,timezone", *(f"{account},{zone}" for account, zone in zones.items())]
    (folder / "accounts.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_events(folder: Path, rows: list[tuple[str, str, str, datetime, datetime | None]]) -> None:
    lines = ["event_id,account_id,user_id,occurred_at,loaded_at"]
    for event_id, account, user, occurred, loaded in rows:
        loaded_text = "" if loaded is None else loaded.isoformat()
        lines.append(f"{event_id},{account},{user},{occurred.isoformat()},{loaded_text}")
    (folder / "events.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def load_events(rng: np.random.Generator, load: int, first_day: int, days: int, earlier: list[str]) -> list:
    """One load: events over `days` days, some late, some reusing an earlier event id or one of this load."""
    rows: list[tuple[str, str, str, datetime, datetime | None]] = []
    for number in range(int(rng.integers(150, 250))):
        account = f"A{int(rng.integers(1, 4))}"
        user = f"{account}-u{int(rng.integers(0, 6))}" if rng.random() > 0.05 else "bot-1"
        occurred = START + timedelta(days=first_day + float(rng.uniform(0, days)))
        loaded = None
        if rng.random() < 0.1:  # late: loaded days after it happened
            loaded = occurred + timedelta(days=float(rng.uniform(1, 20)))
        event_id = f"L{load}-{number}"
        if earlier and rng.random() < 0.05:
            event_id = str(rng.choice(earlier))  # a new version of an event from an earlier load
        elif rows and rng.random() < 0.03:
            event_id = rows[int(rng.integers(0, len(rows)))][0]  # repeated within this load
        rows.append((event_id, account, user, occurred, loaded))
    return rows


def stored_days(store_path: Path) -> pd.DataFrame:
    with open_analytical_store(store_path) as store:
        frame = store.connection.execute("SELECT * FROM usage_user_days").df()
    return frame.sort_values(["account_id", "user_id", "day"]).reset_index(drop=True)


def rebuilt_copy(workspace: Workspace, folder: Path) -> pd.DataFrame:
    copy = folder / "rebuilt.duckdb"
    shutil.copy(workspace.analytical_store_path, copy)
    with open_analytical_store(copy) as store:
        assert refresh_usage_aggregate(workspace, store, rebuild=True).mode == "rebuild"
    return stored_days(copy)


def ingest_loads(workspace: Workspace, loads: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    earlier: list[str] = []
    for load in range(loads):
        rows = load_events(rng, load, first_day=load * 10, days=14, earlier=earlier)
        earlier += [row[0] for row in rows]
        write_events(workspace.root, rows)
        with open_analytical_store(workspace.analytical_store_path) as store:
            ingest(workspace, store, backfill=load == 2)
            report = refresh_usage_aggregate(workspace, store)
        assert report.mode == ("rebuild" if load == 0 else "incremental")
