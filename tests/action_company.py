"""The small test company of `company.py`, with what the playbook's cross-cuts read.

Adds owners and ARR to the accounts, renewal dates, terms and locks to the contracts, three contacts
per account (one champion, some of whom leave), product users and events matched to contacts by
email, and a contact_activity export. Cut-offs are lowered so that the small company has Red and
Orange accounts.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from account_health.config import Workspace, load_workspace
from account_health.sources.ingest import ingest
from account_health.store import operational
from account_health.training.train import train
from account_health.workspace import open_stores
from company import write_company

OWNERS = ["ana@vendor.example", "ben@vendor.example", "=cruz@vendor.example"]
# Champions of these accounts leave on this date; the nightly tests run after it.
DEPARTURE = pd.Timestamp("2025-10-15")

EXTRA_CONFIG = """
[sources.contacts]
table = "contacts"
files = ["exports/contacts.csv"]

[sources.contact_changes]
table = "contact_changes"
files = ["exports/contact_changes.csv"]

[sources.users]
table = "users"
files = ["exports/users.csv"]

[sources.usage]
table = "usage_events"
files = ["exports/usage_events.csv"]

[sources.activity]
table = "contact_activity"
files = ["exports/contact_activity.csv"]

[tiers]
red = 0.25
orange = 0.15
yellow = 0.08
green = 0.04

[actions]
owner_capacity = 12
"""


def write_action_company(folder: Path, accounts: int = 400, seed: int = 1) -> Path:
    """Write the company's exports and config into `folder`; return the folder."""
    write_company(folder, accounts=accounts, seed=seed)
    rng = np.random.default_rng(seed + 100)
    exports = folder / "exports"

    frame = pd.read_csv(exports / "accounts.csv")
    frame["owner"] = [OWNERS[index % len(OWNERS)] for index in range(len(frame))]
    frame["arr"] = rng.choice([5_000, 20_000, 60_000, 250_000], len(frame))
    frame.to_csv(exports / "accounts.csv", index=False)

    contracts = pd.read_csv(exports / "contracts.csv")
    open_ended = contracts["end_at"].isna()
    renewals = pd.Timestamp("2025-12-01") + pd.to_timedelta(rng.integers(10, 1000, len(contracts)), unit="D")
    contracts.loc[open_ended, "end_at"] = renewals[open_ended].strftime("%Y-%m-%dT00:00:00")
    contracts["term_months"] = rng.choice([12, 24, 36], len(contracts))
    contracts["locked"] = rng.random(len(contracts)) < 0.3
    contracts.to_csv(exports / "contracts.csv", index=False)

    _write_people(exports, frame["account_id"].tolist(), rng)
    with (folder / "account-health.toml").open("a", encoding="utf-8") as handle:
        handle.write(EXTRA_CONFIG)
    return folder


def _write_people(exports: Path, account_ids: list[str], rng: np.random.Generator) -> None:
    contacts, changes, users, events, activity = [], [], [], [], []
    for index, account in enumerate(account_ids):
        for number in range(3):
            contact = f"K{index}-{number}"
            email = f"person{number}@{account.lower()}.example"
            contacts.append((contact, account, email, ["VP", "Manager", "Analyst"][number], number == 0))
            # Product users carry the email in another case, as product and CRM exports often do.
            users.append((f"U{index}-{number}", account, email.upper()))
            for event in range(int(rng.integers(0, 12))):
                day = pd.Timestamp("2025-10-01") + pd.Timedelta(days=int(rng.integers(0, 60)))
                events.append((f"E{index}-{number}-{event}", account, f"U{index}-{number}", day.isoformat()))
            activity.append((contact, "2025-10-20", int(rng.integers(0, 6)), int(rng.integers(0, 3)), 0))
        if index % 7 == 0:
            changes.append((f"K{index}-0", DEPARTURE.isoformat(), "left_company"))
    pd.DataFrame(contacts, columns=["contact_id", "account_id", "email", "title", "is_champion"]).to_csv(
        exports / "contacts.csv", index=False
    )
    pd.DataFrame(changes, columns=["contact_id", "changed_at", "change"]).to_csv(
        exports / "contact_changes.csv", index=False
    )
    pd.DataFrame(users, columns=["user_id", "account_id", "email"]).to_csv(exports / "users.csv", index=False)
    pd.DataFrame(events, columns=["event_id", "account_id", "user_id", "occurred_at"]).to_csv(
        exports / "usage_events.csv", index=False
    )
    pd.DataFrame(activity, columns=["contact_id", "day", "emails", "meetings", "product_events"]).to_csv(
        exports / "contact_activity.csv", index=False
    )


def trained_action_company(folder: Path) -> Workspace:
    """Write the company into `folder`, ingest it and train on it; return the workspace."""
    write_action_company(folder)
    workspace = load_workspace(folder)
    with open_stores(workspace) as (store, engine):
        ingest(workspace, store)
        train(workspace, store, engine)
    return workspace


def copy_workspace(template: Path, folder: Path, operational_url: str | None = None) -> Workspace:
    """Copy a workspace folder; with `operational_url`, copy its operational store's rows there too."""
    shutil.copytree(template, folder)
    if operational_url is not None:
        source = operational.connect(load_workspace(template).operational_store_url)
        target = operational.open_operational_store(operational_url)
        _copy_rows(source, target)
        source.dispose()
        target.dispose()
    return load_workspace(folder)


def _copy_rows(source: Any, target: Any) -> None:
    import sqlalchemy as sa

    from account_health.store import actions

    tables = [
        operational.runs,
        operational.models,
        operational.scores,
        actions.tier_changes,
        actions.tasks,
        actions.watch_list,
        actions.account_actions,
    ]
    with source.connect() as reading, target.begin() as writing:
        for table in tables:
            rows = [dict(row._mapping) for row in reading.execute(table.select())]
            if rows:
                writing.execute(table.insert(), rows)
        if target.dialect.name == "postgresql":
            # Explicit ids do not advance PostgreSQL's sequences; move them past the copied ids.
            for table, column in (("runs", "run_id"), ("tasks", "task_id"), ("watch_list", "watch_id")):
                writing.execute(
                    sa.text(
                        f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), "
                        f"coalesce((SELECT max({column}) FROM {table}), 0) + 1, false)"
                    )
                )


def snapshot(engine: Any, as_of: Any) -> dict[str, Any]:
    """Return the date's scores, tier changes, tasks and account actions without run ids and task ids.

    Rows are sorted by their key columns, and JSON text is parsed, so `assert_same` can compare
    floats with a tolerance.
    """
    import sqlalchemy as sa

    from account_health.store import actions

    def rows(table: sa.Table, drop: tuple[str, ...]) -> list[tuple[Any, ...]]:
        columns = [column for column in table.columns if column.name not in drop]
        query = sa.select(*columns).where(table.c.as_of == as_of)
        with engine.connect() as connection:
            found = [tuple(_parsed(value) for value in row) for row in connection.execute(query)]
        # The first three columns are the key, or contain it: account_id, as_of, then motion or model.
        return sorted(found, key=lambda row: tuple(str(value) for value in row[:3]))

    return {
        "scores": rows(operational.scores, ("run_id",)),
        "tier_changes": rows(actions.tier_changes, ("run_id",)),
        "tasks": rows(actions.tasks, ("run_id", "task_id")),
        "account_actions": rows(actions.account_actions, ("run_id",)),
    }


def assert_same(left: Any, right: Any, path: str = "") -> None:
    """Assert two snapshots are equal, floats within a relative 1e-9.

    DuckDB adds up floating-point values in parallel threads in no fixed order, so signals computed
    twice from the same rows can differ in their last bits (about 1e-15 relative).
    """
    if isinstance(left, float) and isinstance(right, float):
        assert math.isclose(left, right, rel_tol=1e-9, abs_tol=1e-12), f"{path}: {left!r} != {right!r}"
        return
    if isinstance(left, dict) and isinstance(right, dict):
        assert left.keys() == right.keys(), f"{path}: keys {sorted(left)} != {sorted(right)}"
        for key in left:
            assert_same(left[key], right[key], f"{path}.{key}")
        return
    if isinstance(left, (list, tuple)) and isinstance(right, (list, tuple)):
        assert len(left) == len(right), f"{path}: {len(left)} items != {len(right)} items"
        for index, (one, other) in enumerate(zip(left, right, strict=True)):
            assert_same(one, other, f"{path}[{index}]")
        return
    assert left == right, f"{path}: {left!r} != {right!r}"


def _parsed(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value
