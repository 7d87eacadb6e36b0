"""The stored usage aggregate: active user-days kept up to date from new loads only.

`refresh_usage_aggregate` maintains three tables in the analytical store:

- `usage_user_days` (account_id, user_id, day, first_known): `user_days.user_day_rows` over every
  stored event, the input of the usage signal;
- `usage_superseded` (event_id, _load_id, _row_number): event versions that are not their id's first;
- `usage_zones` (account_id, zone): the timezone each account's local days were cut with;
- `usage_event_hashes` (hash, _load_id): DuckDB's `hash(event_id)` of every event the aggregate has
  read, so a rebuild finds repeated ids by grouping 8-byte hashes instead of id strings, and a refresh
  finds the new ids that were stored before without hashing every stored id;

and one row per aggregate in `aggregate_state` with its watermark, the newest load it has read.
Each refresh reads only the usage events of loads after the watermark. A user-day that new events
touch takes the earlier `first_known`, so a day that arrives late (in any later load) is merged into
the day it belongs to, visible from when it arrived. Three cases are recomputed from every stored event
of the rows they affect: an event id seen again (its first version may change), an account whose
timezone changed (all its days move), and `rebuild=True` (everything). Each refresh is one transaction
with its watermark, so a crash leaves the previous state and the next refresh redoes the work.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import ibis
import numpy as np
import pandas as pd

from account_health.config import Workspace
from account_health.signals.user_days import (
    VERSION_KEY,
    account_zones,
    day_boundaries,
    superseded_versions,
    user_day_rows,
)
from account_health.sources.sql import literal
from account_health.store.analytical import AnalyticalStore

log = logging.getLogger(__name__)

USER_DAYS_TABLE = "usage_user_days"
SUPERSEDED_TABLE = "usage_superseded"
ZONES_TABLE = "usage_zones"
STATE_TABLE = "aggregate_state"
HASHES_TABLE = "usage_event_hashes"
HASH_CHECK_TABLE = "usage_event_hash_check"
# DuckDB's hash() of this string is stored beside the hashes. When the running DuckDB hashes it to
# another value, its hash() has changed, so the stored hashes are recomputed.
_HASH_PROBE = "account-health"
AGGREGATE_NAME = "usage_user_days"
_KEY = ("account_id", "user_id", "day")


@dataclass
class AggregateReport:
    """Outcome of one refresh: `mode` is rebuild, incremental or current (nothing new)."""

    mode: str
    watermark: int
    new_events: int = 0
    recomputed_ids: int = 0
    recomputed_accounts: int = 0
    user_days: int = 0
    seconds: float = 0.0
    # Wall-clock seconds of each step of a rebuild.
    steps: dict[str, float] = field(default_factory=dict)


def refresh_usage_aggregate(
    workspace: Workspace, store: AnalyticalStore, rebuild: bool = False
) -> AggregateReport:
    """Bring `usage_user_days` up to date with every load of usage events, in one transaction.

    Parameters
    ----------
    workspace
        Supplies `signals.default_timezone`, the zone of accounts without one.
    store
        A writable analytical store.
    rebuild
        Recompute everything from the stored events instead of reading only new loads.
    """
    started = time.perf_counter()
    default = workspace.config.signals.default_timezone
    connection = store.connection
    _create_tables(store)

    connection.execute("BEGIN TRANSACTION")
    try:
        watermark = _watermark(store)
        newest = _newest_load(store)
        if rebuild or watermark is None:
            report = _rebuild(store, default, newest)
        else:
            report = _incremental(store, default, watermark, newest)
        connection.execute(f"DELETE FROM {STATE_TABLE} WHERE name = ?", [AGGREGATE_NAME])
        connection.execute(
            f"INSERT INTO {STATE_TABLE} VALUES (?, ?, ?, now()::TIMESTAMP)", [AGGREGATE_NAME, newest, default]
        )
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    report.user_days = _count(store, USER_DAYS_TABLE)
    report.seconds = time.perf_counter() - started
    log.info(
        "usage aggregate %s to load %d: %d new events, %d user-days, %.1f s",
        report.mode,
        report.watermark,
        report.new_events,
        report.user_days,
        report.seconds,
    )
    return report


def stored_user_days(store: AnalyticalStore, default_timezone: str) -> ibis.Table | None:
    """Return the stored user-days when they cover every load and every account's current zone, else None."""
    # Ibis's list_tables calls a method DuckDB 2.0 no longer has, so ask the catalogue directly.
    tables = {
        row[0]
        for row in store.connection.execute("SELECT table_name FROM information_schema.tables").fetchall()
    }
    if not {USER_DAYS_TABLE, ZONES_TABLE, STATE_TABLE} <= tables:
        return None
    rows = store.connection.execute(
        f"SELECT watermark, default_timezone FROM {STATE_TABLE} WHERE name = ?", [AGGREGATE_NAME]
    ).fetchall()
    if not rows or rows[0][0] != _newest_load(store) or rows[0][1] != default_timezone:
        return None
    if _count_sql(store, _changed_zones_sql(store, default_timezone)):
        return None
    return store.table(USER_DAYS_TABLE)


def _create_tables(store: AnalyticalStore) -> None:
    connection = store.connection
    connection.execute(
        f"CREATE TABLE IF NOT EXISTS {USER_DAYS_TABLE} "
        "(account_id VARCHAR, user_id VARCHAR, day DATE, first_known TIMESTAMP)"
    )
    connection.execute(
        f"CREATE TABLE IF NOT EXISTS {SUPERSEDED_TABLE} (event_id VARCHAR, _load_id BIGINT, _row_number BIGINT)"
    )
    connection.execute(f"CREATE TABLE IF NOT EXISTS {ZONES_TABLE} (account_id VARCHAR, zone VARCHAR)")
    connection.execute(f"CREATE TABLE IF NOT EXISTS {HASHES_TABLE} (hash UBIGINT, _load_id BIGINT)")
    connection.execute(f"CREATE TABLE IF NOT EXISTS {HASH_CHECK_TABLE} (probe UBIGINT)")
    connection.execute(
        f"CREATE TABLE IF NOT EXISTS {STATE_TABLE} "
        "(name VARCHAR, watermark BIGINT, default_timezone VARCHAR, refreshed_at TIMESTAMP)"
    )


def _rebuild(store: AnalyticalStore, default: str, newest: int) -> AggregateReport:
    connection = store.connection
    events = store.table("usage_events")
    zones = account_zones(store.table("accounts"), default)
    for table in (USER_DAYS_TABLE, SUPERSEDED_TABLE, ZONES_TABLE, HASHES_TABLE, HASH_CHECK_TABLE):
        connection.execute(f"DELETE FROM {table}")

    report = AggregateReport("rebuild", newest, new_events=_count(store, "usage_events"))
    started = time.perf_counter()
    _insert_event_hashes(store, "true")
    report.steps["event id hashes"] = time.perf_counter() - started
    started = time.perf_counter()
    _insert(store, SUPERSEDED_TABLE, superseded_versions(_versions_of_repeated_hashes(store)))
    connection.execute("DROP TABLE _repeated_versions")
    report.steps["superseded versions"] = time.perf_counter() - started
    started = time.perf_counter()
    _insert(store, ZONES_TABLE, zones)
    boundaries = _day_boundaries(store, default)
    superseded = store.table(SUPERSEDED_TABLE)
    # Stored in day order, so scans of recent days (a refresh's merge, a signal's lookback) skip the
    # row groups of older days. Rows added by later refreshes go after them.
    _insert(
        store,
        USER_DAYS_TABLE,
        user_day_rows(events, superseded, zones, default, boundaries=boundaries),
        order_by="day",
    )
    connection.execute("DROP TABLE IF EXISTS _day_boundaries")
    report.steps["user-days"] = time.perf_counter() - started
    connection.execute(
        f"""INSERT INTO {ZONES_TABLE} SELECT DISTINCT account_id, {literal(default)} FROM {USER_DAYS_TABLE}
            WHERE account_id NOT IN (SELECT account_id FROM {ZONES_TABLE})"""
    )
    return report


def _versions_of_repeated_hashes(store: AnalyticalStore) -> ibis.Table:
    """Store in `_repeated_versions` every usage event whose id hash occurs more than once in the hashes.

    All versions of an id share its hash, so this contains every version of every repeated id, plus the
    rare ids that only share a hash with another id, which `superseded_versions` drops by grouping on
    the id itself. Grouping the stored 8-byte hashes of every event replaces grouping every event id
    string, and only the few matching events are grouped by id.
    """
    store.connection.execute(
        f"""CREATE OR REPLACE TEMP TABLE _repeated_versions AS
            SELECT event_id, _load_id, _row_number, _available_at FROM usage_events
            WHERE hash(event_id) IN (SELECT hash FROM {HASHES_TABLE} GROUP BY hash HAVING count(*) > 1)"""
    )
    return store.table("_repeated_versions")


def _incremental(store: AnalyticalStore, default: str, watermark: int, newest: int) -> AggregateReport:
    connection = store.connection
    events = store.table("usage_events")
    zones = account_zones(store.table("accounts"), default)
    new_events = events.filter(events._load_id > watermark)
    report = AggregateReport("incremental", newest, new_events=_count_sql(store, _sql(store, new_events)))

    # Accounts whose local days moved: every row of theirs is recomputed.
    _temp(store, "_changed_accounts", f"SELECT account_id FROM ({_changed_zones_sql(store, default)})")
    report.recomputed_accounts = _count(store, "_changed_accounts")
    if report.new_events == 0 and report.recomputed_accounts == 0:
        report.mode = "current"
        return report

    _ensure_event_hashes(store, watermark)
    _find_dirty_ids(store, watermark)
    report.recomputed_ids = _count(store, "_dirty_ids")
    superseded = store.table(SUPERSEDED_TABLE)
    no_superseded = superseded.filter(ibis.literal(False))
    if report.recomputed_ids:
        _recompute_dirty_ids(store, zones, default, watermark)
    else:
        _temp(store, "_dirty_keys", f"SELECT account_id, user_id, day FROM {USER_DAYS_TABLE} WHERE false")
    if report.recomputed_accounts:
        changed = store.table("_changed_accounts")
        connection.execute(
            f"DELETE FROM {USER_DAYS_TABLE} WHERE account_id IN (SELECT account_id FROM _changed_accounts)"
        )
        _insert(
            store,
            USER_DAYS_TABLE,
            user_day_rows(events.semi_join(changed, "account_id"), superseded, zones, default),
        )

    fresh_events = new_events.anti_join(store.table("_dirty_ids"), "event_id").anti_join(
        store.table("_changed_accounts"), "account_id"
    )
    fresh = user_day_rows(fresh_events, no_superseded, zones, default).anti_join(
        store.table("_dirty_keys"), list(_KEY)
    )
    _temp(store, "_fresh", _sql(store, fresh))
    _merge_fresh(store)
    _update_zones(store, zones, default)
    _insert_event_hashes(store, f"_load_id > {int(watermark)}")
    for table in ("_changed_accounts", "_touched", "_versions", "_dirty_ids", "_dirty_keys", "_fresh"):
        connection.execute(f"DROP TABLE IF EXISTS {table}")
    return report


def _find_dirty_ids(store: AnalyticalStore, watermark: int) -> None:
    """Store in `_dirty_ids` the new event ids whose first version may have changed.

    Those are the ids stored more than once in the new loads and the ids whose hash matches an event of
    an earlier load. A hash collision only adds an id whose recomputation changes nothing. Comparing
    stored hashes avoids hashing every stored event id, which took most of the refresh's time.
    """
    store.connection.execute(
        f"""CREATE OR REPLACE TEMP TABLE _touched AS
            SELECT event_id, hash(event_id) AS hash, count(*) AS versions FROM usage_events
            WHERE _load_id > {int(watermark)} GROUP BY event_id"""
    )
    store.connection.execute(
        f"""CREATE OR REPLACE TEMP TABLE _dirty_ids AS
            SELECT event_id, hash FROM _touched WHERE versions > 1
            UNION SELECT DISTINCT t.event_id, t.hash FROM {HASHES_TABLE} h JOIN _touched t ON h.hash = t.hash"""
    )


def _recompute_dirty_ids(store: AnalyticalStore, zones: ibis.Table, default: str, watermark: int) -> None:
    """Recompute the superseded versions of `_dirty_ids` and every user-day any version of them falls on."""
    connection = store.connection
    events = store.table("usage_events")
    # Only the loads holding a matching hash (and the new ones) can store a version of these ids.
    loads = [
        row[0]
        for row in connection.execute(
            f"""SELECT DISTINCT _load_id FROM {HASHES_TABLE} WHERE hash IN (SELECT hash FROM _dirty_ids)
                UNION SELECT DISTINCT _load_id FROM usage_events WHERE _load_id > ?""",
            [watermark],
        ).fetchall()
    ]
    in_loads = events.filter(events._load_id.isin(loads))
    _temp(store, "_versions", _sql(store, in_loads.semi_join(store.table("_dirty_ids"), "event_id")))
    repeated = superseded_versions(store.table("_versions"))
    connection.execute(f"DELETE FROM {SUPERSEDED_TABLE} WHERE event_id IN (SELECT event_id FROM _dirty_ids)")
    _insert(store, SUPERSEDED_TABLE, repeated)
    superseded = store.table(SUPERSEDED_TABLE)

    no_superseded = superseded.filter(ibis.literal(False))
    _temp(
        store,
        "_dirty_keys",
        _sql(store, user_day_rows(store.table("_versions"), no_superseded, zones, default).select(*_KEY)),
    )
    match = " AND ".join(f"{USER_DAYS_TABLE}.{column} = k.{column}" for column in _KEY)
    connection.execute(f"DELETE FROM {USER_DAYS_TABLE} USING _dirty_keys k WHERE {match}")

    dirty_keys = store.table("_dirty_keys")
    changed = store.table("_changed_accounts")
    pairs = dirty_keys.select("account_id", "user_id").distinct()
    recomputed = user_day_rows(events.semi_join(pairs, ["account_id", "user_id"]), superseded, zones, default)
    recomputed = recomputed.semi_join(dirty_keys, list(_KEY)).anti_join(changed, "account_id")
    _insert(store, USER_DAYS_TABLE, recomputed)


def _ensure_event_hashes(store: AnalyticalStore, watermark: int) -> None:
    """Recompute the stored event id hashes up to the watermark when they are missing or were made by a
    DuckDB whose hash() differs (a store refreshed before they existed, or after an upgrade)."""
    connection = store.connection
    rows = connection.execute(f"SELECT probe FROM {HASH_CHECK_TABLE}").fetchall()
    current = connection.execute("SELECT hash(?::VARCHAR)", [_HASH_PROBE]).fetchall()[0][0]
    if len(rows) == 1 and rows[0][0] == current:
        return
    log.info("recomputing the stored event id hashes up to load %d", watermark)
    connection.execute(f"DELETE FROM {HASHES_TABLE}")
    connection.execute(f"DELETE FROM {HASH_CHECK_TABLE}")
    _insert_event_hashes(store, f"_load_id <= {int(watermark)}")


def _insert_event_hashes(store: AnalyticalStore, condition: str) -> None:
    """Add the hash of every usage event matching the SQL `condition`, and the probe hash if missing."""
    connection = store.connection
    connection.execute(
        f"INSERT INTO {HASHES_TABLE} SELECT hash(event_id), _load_id FROM usage_events WHERE {condition}"
    )
    connection.execute(
        f"""INSERT INTO {HASH_CHECK_TABLE} SELECT hash(?::VARCHAR)
            WHERE NOT EXISTS (SELECT 1 FROM {HASH_CHECK_TABLE})""",
        [_HASH_PROBE],
    )


def _day_boundaries(store: AnalyticalStore, default: str) -> ibis.Table:
    """Store `day_boundaries` for every zone in use and every UTC day the events cover, as `_day_boundaries`."""
    connection = store.connection
    first, last = connection.execute(
        "SELECT CAST(min(occurred_at) AS DATE), CAST(max(occurred_at) AS DATE) FROM usage_events"
    ).fetchall()[0]
    zones = [row[0] for row in connection.execute(f"SELECT DISTINCT zone FROM {ZONES_TABLE}").fetchall()]
    zones = sorted({*zones, default})
    days = pd.date_range(first, last, freq="D") if first is not None else pd.DatetimeIndex([])
    grid = pd.DataFrame(
        {
            "zone": np.repeat(zones, len(days)),
            "utc_day": np.tile(days.values.astype("datetime64[us]"), len(zones)),
        }
    )
    connection.register("_day_grid_frame", grid)
    try:
        connection.execute(
            "CREATE OR REPLACE TEMP TABLE _day_grid AS SELECT zone, utc_day FROM _day_grid_frame"
        )
    finally:
        connection.unregister("_day_grid_frame")
    _temp(store, "_day_boundaries", _sql(store, day_boundaries(store.table("_day_grid"))))
    connection.execute("DROP TABLE _day_grid")
    return store.table("_day_boundaries")


def _merge_fresh(store: AnalyticalStore) -> None:
    """Fold `_fresh` into the user-days: an existing day keeps the earlier first_known, a new day is added."""
    connection = store.connection
    first, last = connection.execute("SELECT min(day), max(day) FROM _fresh").fetchall()[0]
    if first is None:
        return
    # Only stored days within the new rows' range can match, and a literal range lets DuckDB skip the
    # row groups outside it instead of joining every stored user-day.
    in_range = f"t.day BETWEEN DATE '{first:%Y-%m-%d}' AND DATE '{last:%Y-%m-%d}'"
    match = " AND ".join(f"t.{column} = f.{column}" for column in _KEY)
    connection.execute(
        f"""UPDATE {USER_DAYS_TABLE} t SET first_known = f.first_known FROM _fresh f
            WHERE {in_range} AND {match} AND f.first_known < t.first_known"""
    )
    connection.execute(
        f"""INSERT INTO {USER_DAYS_TABLE} SELECT f.* FROM _fresh f WHERE NOT EXISTS
            (SELECT 1 FROM {USER_DAYS_TABLE} t WHERE {in_range} AND {match})"""
    )


def _update_zones(store: AnalyticalStore, zones: ibis.Table, default: str) -> None:
    connection = store.connection
    _temp(store, "_zones", _sql(store, zones))
    connection.execute(f"DELETE FROM {ZONES_TABLE} WHERE account_id IN (SELECT account_id FROM _zones)")
    connection.execute(f"INSERT INTO {ZONES_TABLE} SELECT * FROM _zones")
    connection.execute(
        f"""INSERT INTO {ZONES_TABLE} SELECT DISTINCT account_id, {literal(default)} FROM _fresh
            WHERE account_id NOT IN (SELECT account_id FROM {ZONES_TABLE})"""
    )
    connection.execute("DROP TABLE _zones")


def _changed_zones_sql(store: AnalyticalStore, default: str) -> str:
    """SQL for the stored zones that differ from each account's current one."""
    zones = _sql(store, account_zones(store.table("accounts"), default))
    return f"""SELECT s.account_id FROM {ZONES_TABLE} s LEFT JOIN ({zones}) c USING (account_id)
               WHERE coalesce(c.zone, {literal(default)}) <> s.zone"""


def _watermark(store: AnalyticalStore) -> int | None:
    rows = store.connection.execute(
        f"SELECT watermark FROM {STATE_TABLE} WHERE name = ?", [AGGREGATE_NAME]
    ).fetchall()
    return int(rows[0][0]) if rows else None


def _newest_load(store: AnalyticalStore) -> int:
    rows = store.connection.execute("SELECT coalesce(max(_load_id), 0) FROM usage_events").fetchall()
    return int(rows[0][0])


def _sql(store: AnalyticalStore, expression: ibis.Table) -> str:
    return str(store.ibis.compile(expression))


def _temp(store: AnalyticalStore, name: str, sql: str) -> None:
    store.connection.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {sql}")


def _insert(store: AnalyticalStore, table: str, expression: ibis.Table, order_by: str | None = None) -> None:
    columns = [row[0] for row in store.connection.execute(f"DESCRIBE {table}").fetchall()]
    # The ORDER BY sits on the INSERT's own SELECT: DuckDB may reorder a subquery's rows.
    order = f" ORDER BY {order_by}" if order_by else ""
    store.connection.execute(
        f"INSERT INTO {table} ({', '.join(columns)}) SELECT {', '.join(columns)} FROM ({_sql(store, expression)}){order}"
    )


def _count(store: AnalyticalStore, table: str) -> int:
    return int(store.connection.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0])


def _count_sql(store: AnalyticalStore, sql: str) -> int:
    return int(store.connection.execute(f"SELECT count(*) FROM ({sql})").fetchall()[0][0])


__all__ = ["VERSION_KEY", "AggregateReport", "refresh_usage_aggregate", "stored_user_days"]
