"""Seeded synthetic inputs for bench/signals.py: usage events as Parquet, plus small account-level tables.

Events are written one block of days at a time, so memory stays at one block (a few million rows)
whatever the total. Each user belongs to one account and is active on a day with its own probability,
scaled by its account's trend over the period; an active user-day has 1 + Poisson(2) events. A small
share of events arrive late (a `loaded_at` after the event) and a few reuse an earlier event id with
another user (a second version of the event), so both paths of the point-in-time rules are exercised.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

START = datetime(2025, 1, 1)
EVENTS_PER_ACTIVE_DAY = 3.0  # 1 + Poisson(2)
LATE_SHARE = 0.0002
DUPLICATE_SHARE = 0.0001
ZONES = ("UTC", "America/New_York", "Europe/Berlin", "Asia/Kolkata", "Australia/Adelaide")
EVENT_NAMES = ("view", "edit", "share", "export", "login")


@dataclass(frozen=True)
class Size:
    events: int = 100_000_000
    accounts: int = 10_000
    users: int = 500_000
    days: int = 540
    seed: int = 0

    @property
    def label(self) -> str:
        return f"{self.events}e-{self.accounts}a-{self.users}u-{self.days}d-s{self.seed}"


def generate(folder: Path, size: Size, progress: bool = True) -> Path:
    """Write the data for `size` under folder/<size label>, unless a finished copy is there; return it."""
    target = folder / size.label
    if (target / "done.json").exists():
        return target
    target.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(size.seed)

    account_of_user = _accounts_of_users(rng, size)
    rate = _user_rates(rng, size, account_of_user)
    trend = rng.normal(0.0, 0.6, size.accounts)
    _write_events(target, rng, size, account_of_user, rate, trend, progress)
    _write_new_day(target, rng, size, account_of_user, rate, trend)
    _write_account_tables(target, rng, size)
    (target / "done.json").write_text(json.dumps(asdict(size)))
    return target


def account_ids(count: int) -> pa.Array:
    return pc.binary_join_element_wise("acc-", pc.cast(pa.array(np.arange(count)), pa.string()), "")


def _accounts_of_users(rng: np.random.Generator, size: Size) -> np.ndarray:
    # Account sizes vary over two orders of magnitude, as in a real customer base.
    weights = rng.lognormal(0.0, 1.0, size.accounts)
    users = rng.choice(size.accounts, size=size.users, p=weights / weights.sum())
    users[: size.accounts] = np.arange(size.accounts)  # every account has a user
    return np.asarray(users)


def _user_rates(rng: np.random.Generator, size: Size, account_of_user: np.ndarray) -> np.ndarray:
    """Daily activity probabilities scaled so the expected total is `size.events`."""
    raw = rng.beta(0.6, 2.5, size.users)
    per_day = size.events / size.days / EVENTS_PER_ACTIVE_DAY
    return np.asarray(np.clip(raw * per_day / raw.sum(), 0.0, 0.95))


def _day_events(
    rng: np.random.Generator,
    size: Size,
    day: int,
    account_of_user: np.ndarray,
    rate: np.ndarray,
    trend: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Return (user index, seconds since START) of one day's events."""
    progress = day / max(size.days - 1, 1) - 0.5
    factor = np.clip(1.0 + trend[account_of_user] * progress, 0.05, 2.0)
    active = np.flatnonzero(rng.random(size.users) < rate * factor)
    counts = 1 + rng.poisson(EVENTS_PER_ACTIVE_DAY - 1.0, active.size)
    users = np.repeat(active, counts)
    seconds = day * 86_400 + rng.integers(0, 86_400, users.size)
    return users, seconds


def _event_table(
    rng: np.random.Generator,
    first_id: int,
    users: np.ndarray,
    seconds: np.ndarray,
    account_of_user: np.ndarray,
    newest_second: int,
) -> pa.Table:
    count = users.size
    numbers = np.arange(first_id, first_id + count)
    duplicate = rng.random(count) < DUPLICATE_SHARE
    numbers[duplicate] = rng.integers(0, max(first_id, 1), int(duplicate.sum()))
    occurred = pa.array(
        seconds.astype("int64") * 1_000_000 + int(START.timestamp()) * 1_000_000, pa.timestamp("us")
    )
    late = rng.random(count) < LATE_SHARE
    delay = rng.integers(86_400, 7 * 86_400, count)
    loaded_seconds = np.minimum(seconds + delay, newest_second + 86_400 + 7_200)
    loaded = pa.array(
        loaded_seconds.astype("int64") * 1_000_000 + int(START.timestamp()) * 1_000_000,
        pa.timestamp("us"),
        mask=~late,
    )
    return pa.table(
        {
            "event_id": pc.binary_join_element_wise("ev-", pc.cast(pa.array(numbers), pa.string()), ""),
            "account_id": account_ids(account_of_user.max() + 1).take(pa.array(account_of_user[users])),
            "user_id": pc.binary_join_element_wise("user-", pc.cast(pa.array(users), pa.string()), ""),
            "occurred_at": occurred,
            "event": pa.array(np.array(EVENT_NAMES)[rng.integers(0, len(EVENT_NAMES), count)]),
            "loaded_at": loaded,
        }
    )


def _write_events(
    target: Path,
    rng: np.random.Generator,
    size: Size,
    account_of_user: np.ndarray,
    rate: np.ndarray,
    trend: np.ndarray,
    progress: bool,
) -> None:
    days_per_file = max(1, min(size.days, int(5_000_000 * size.days / max(size.events, 1))))
    written = 0
    for first_day in range(0, size.days, days_per_file):
        days = range(first_day, min(size.days, first_day + days_per_file))
        parts = [_day_events(rng, size, day, account_of_user, rate, trend) for day in days]
        users = np.concatenate([part[0] for part in parts])
        seconds = np.concatenate([part[1] for part in parts])
        table = _event_table(rng, written, users, seconds, account_of_user, size.days * 86_400 - 1)
        pq.write_table(table, target / f"events-{first_day:04d}.parquet", row_group_size=1_000_000)
        written += table.num_rows
        if progress:
            print(f"  generated days {days.start}-{days.stop - 1}: {written:,} events", flush=True)


def _write_new_day(
    target: Path,
    rng: np.random.Generator,
    size: Size,
    account_of_user: np.ndarray,
    rate: np.ndarray,
    trend: np.ndarray,
) -> None:
    """Write the day after the period, for the incremental update (loaded two hours after it ends)."""
    users, seconds = _day_events(rng, size, size.days, account_of_user, rate, trend)
    table = _event_table(rng, 10**12, users, seconds, account_of_user, size.days * 86_400)
    table = table.drop_columns(["loaded_at"])
    pq.write_table(table, target / "new-day.parquet")


def _write_account_tables(target: Path, rng: np.random.Generator, size: Size) -> None:
    accounts = size.accounts
    ids = account_ids(accounts)
    pq.write_table(
        pa.table(
            {"account_id": ids, "timezone": pa.array(np.array(ZONES)[rng.integers(0, len(ZONES), accounts)])}
        ),
        target / "accounts.parquet",
    )
    period = size.days * 86_400

    def instants(count: int) -> pa.Array:
        return pa.array(
            [START + timedelta(seconds=int(s)) for s in rng.integers(0, period, count)], pa.timestamp("us")
        )

    tickets = accounts * 12
    created = instants(tickets)
    solved = pc.add(
        created, pa.array(rng.integers(3_600, 20 * 86_400, tickets) * 1_000_000).cast(pa.duration("us"))
    )
    pq.write_table(
        pa.table(
            {
                "ticket_id": pc.binary_join_element_wise(
                    "t-", pc.cast(pa.array(np.arange(tickets)), pa.string()), ""
                ),
                "account_id": ids.take(pa.array(rng.integers(0, accounts, tickets))),
                "created_at": created,
                "solved_at": solved,
                "priority": pa.array(
                    np.array(["urgent", "high", "normal", "low"])[rng.integers(0, 4, tickets)]
                ),
                "status": pa.array(["solved"] * tickets),
            }
        ),
        target / "tickets.parquet",
    )
    responses = accounts * 6
    pq.write_table(
        pa.table(
            {
                "response_id": pc.binary_join_element_wise(
                    "r-", pc.cast(pa.array(np.arange(responses)), pa.string()), ""
                ),
                "account_id": ids.take(pa.array(rng.integers(0, accounts, responses))),
                "responded_at": instants(responses),
                "kind": pa.array(["nps"] * responses),
                "score": pa.array(rng.integers(0, 11, responses).astype("float64")),
            }
        ),
        target / "sentiment.parquet",
    )
    contacts = accounts * 3
    contact_ids = pc.binary_join_element_wise("c-", pc.cast(pa.array(np.arange(contacts)), pa.string()), "")
    pq.write_table(
        pa.table(
            {
                "contact_id": contact_ids,
                "account_id": ids.take(pa.array(np.arange(contacts) % accounts)),
                "is_champion": pa.array(np.arange(contacts) < accounts),
            }
        ),
        target / "contacts.parquet",
    )
    leavers = rng.choice(contacts, size=contacts // 10, replace=False)
    pq.write_table(
        pa.table(
            {
                "contact_id": contact_ids.take(pa.array(leavers)),
                "changed_at": instants(leavers.size),
                "change": pa.array(["left_company"] * leavers.size),
            }
        ),
        target / "contact_changes.parquet",
    )
    integrations = accounts * 3
    connected = instants(integrations)
    disconnected_flag = rng.random(integrations) < 0.3
    disconnected = pc.add(
        connected,
        pa.array(rng.integers(86_400, 200 * 86_400, integrations) * 1_000_000).cast(pa.duration("us")),
    )
    pq.write_table(
        pa.table(
            {
                "account_id": ids.take(pa.array(rng.integers(0, accounts, integrations))),
                "integration": pa.array(
                    np.array(["crm", "sso", "slack", "warehouse", "api"])[rng.integers(0, 5, integrations)]
                ),
                "connected_at": connected,
                "disconnected_at": pc.if_else(
                    pa.array(disconnected_flag), disconnected, pa.nulls(integrations, pa.timestamp("us"))
                ),
            }
        ),
        target / "integrations.parquet",
    )
