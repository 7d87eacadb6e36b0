"""Point-in-time signals for every account at a run of daily as-of instants, written to a table.

`compute_signals` joins each as-of instant to the rows it may see, which for the usage trend means
every active user-day once per instant whose window contains it: 55 copies for a 28-day trend over a
28-day MAU. Over hundreds of daily instants that blows up. Here the usage trend comes from one daily
series per account instead: DAU/MAU on every active day from all stored user-days, then sums over
trailing range windows evaluated at each instant's end day (the slope is linear in the daily values).

That series is exact for an (account, as-of) pair when every user-day in its lookback was already
known at the pair's knowledge cut-off (as-of plus `[signals] knowledge_lag_hours`), in the account's
current timezone. A pair whose lookback contains a user-day that became known at or after the cut-off
(a late load), or that knew the account in another timezone, is *dirty*: it is recomputed with
`compute_signals`' own expressions for those pairs only. The other four signals and the
per-active-user support load use the engine's expressions, one block of instants at a time to bound
the join sizes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime

import ibis
import pandas as pd
from ibis import _

from account_health.config import Workspace
from account_health.signals.champion import champion_signal
from account_health.signals.context import SignalContext, build_context
from account_health.signals.integrations import integrations_series, integrations_signal
from account_health.signals.registry import DETAILS, FEATURES
from account_health.signals.sentiment import sentiment_signal
from account_health.signals.support import support_series, support_signal
from account_health.signals.usage import (
    MAU_DAYS,
    USAGE_COLUMNS,
    active_user_days,
    active_users_in_window,
    event_usage,
    stale_zone_pairs,
    usage_signal,
    with_daily_fallback,
)
from account_health.store.analytical import AnalyticalStore

log = logging.getLogger(__name__)

BACKFILL_TABLE = "signal_backfill"
_BASE_DAY = date(2000, 1, 1)
# Days per activity mask in `_daily_activity`: at least MAU_DAYS - 1, so that a day's MAU window reaches
# back one chunk at most, and at most 64 - MAU_DAYS, so that a chunk with that history fits in a BIGINT.
_CHUNK_DAYS = 32

BackfillProgress = Callable[[str, int, int], None]


@dataclass
class BackfillReport:
    rows: int
    instants: int
    dirty_pairs: int
    seconds: dict[str, float]


def backfill_signals(
    workspace: Workspace,
    store: AnalyticalStore,
    as_of: Sequence[datetime],
    table: str = BACKFILL_TABLE,
    block_instants: int = 92,
    progress: BackfillProgress | None = None,
) -> BackfillReport:
    """Write one row per (account_id, as_of) with every feature and detail into `table`, replacing it.

    Parameters
    ----------
    workspace, store
        As for `compute_signals`, whose values this reproduces (floating-point sums aside).
    as_of
        Naive-UTC instants, typically every midnight of a period.
    block_instants
        How many instants the non-usage signals join at once.
    progress
        Called with (step, done, total).
    """
    instants = sorted({pd.Timestamp(value).to_pydatetime().replace(tzinfo=None) for value in as_of})
    timings: dict[str, float] = {}
    connection = store.connection

    started = time.perf_counter()
    context = build_context(workspace, store, _snapshots(store, "_instants_all", instants))
    # Ibis types date - interval as a date but DuckDB returns a timestamp, and Ibis drops a cast it
    # thinks is a no-op, so the stored spine is cast in SQL.
    spine_sql = _sql(store, context.accounts)
    connection.execute(
        f"CREATE OR REPLACE TEMP TABLE _spine AS SELECT * REPLACE (CAST(end_day AS DATE) AS end_day) FROM ({spine_sql})"
    )
    spine = store.table("_spine")
    context = SignalContext(store, workspace, context.snapshots, spine)
    timings["accounts"] = time.perf_counter() - started

    started = time.perf_counter()
    dirty_pairs = 0
    usage: ibis.Table | None = None
    if context.configured("usage_events"):
        dirty_pairs = _usage_by_series(context)
        usage = store.table("_usage")
    timings["usage"] = time.perf_counter() - started

    started = time.perf_counter()
    # Support (with the absolute load) and integrations are sums over intervals of as_of, so they are
    # computed for every instant at once. Sentiment and champion join their rows to one block at a time.
    series = []
    if workspace.config.signals.support_normalisation == "absolute":
        series.append(("_support", support_series(context)))
    series.append(("_integrations", integrations_series(context)))
    ready = {}
    for name, expression in series:
        if expression is not None:
            _temp(store, name, expression)
            ready[name] = store.table(name)
    timings["support and integrations"] = time.perf_counter() - started

    started = time.perf_counter()
    connection.execute("BEGIN TRANSACTION")
    try:
        connection.execute(f'DROP TABLE IF EXISTS "{table}"')
        for done in range(0, len(instants), block_instants):
            block = instants[done : done + block_instants]
            _write_block(workspace, store, table, block, usage, ready, first=done == 0)
            if progress is not None:
                progress("signals", min(done + block_instants, len(instants)), len(instants))
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    timings["other signals"] = time.perf_counter() - started
    for name in (
        "_spine",
        "_daily",
        "_usage",
        "_dirty",
        "_instants_all",
        "_instants_dirty",
        "_instants_block",
        "_support",
        "_integrations",
    ):
        connection.execute(f"DROP TABLE IF EXISTS {name}")

    rows = int(connection.execute(f'SELECT count(*) FROM "{table}"').fetchall()[0][0])
    log.info(
        "backfilled signals: %d rows at %d instants, %d dirty usage pairs", rows, len(instants), dirty_pairs
    )
    return BackfillReport(rows, len(instants), dirty_pairs, timings)


def _snapshots(store: AnalyticalStore, name: str, instants: Sequence[datetime]) -> ibis.Table:
    """Store `instants` in a temporary table (statements here are compiled to SQL, which memtables are not)."""
    frame = pd.DataFrame({"as_of": pd.to_datetime(list(instants)).astype("datetime64[us]")})
    store.connection.register("_instants_frame", frame)
    store.connection.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT as_of FROM _instants_frame")
    store.connection.unregister("_instants_frame")
    return store.table(name)


def _duckdb(context: SignalContext) -> AnalyticalStore:
    """Return the context's store, which the backfill needs to be the DuckDB analytical store."""
    if not isinstance(context.store, AnalyticalStore):
        raise TypeError("the daily backfill runs on the DuckDB analytical store only")
    return context.store


def _usage_by_series(context: SignalContext) -> int:
    """Fill `_usage` with the usage columns of every spine pair; return how many pairs were dirty."""
    store = _duckdb(context)
    spine = context.accounts
    user_days = active_user_days(context).select("account_id", "user_id", "day", "first_known")

    _daily_activity(store, user_days)
    _temp(store, "_usage", _series_usage(context, store.table("_daily"), spine))
    # A pair that knew its account in another timezone than today's cuts its days in that zone, which
    # the series (cut in today's zone) does not: it is recomputed like a late one.
    stale = stale_zone_pairs(context).select("account_id", "as_of")
    _temp(store, "_dirty", _dirty_pairs(context, user_days, spine).union(stale, distinct=True))
    dirty = store.table("_dirty")
    count = int(store.connection.execute("SELECT count(*) FROM _dirty").fetchall()[0][0])
    if count:
        instants = store.connection.execute("SELECT DISTINCT as_of FROM _dirty ORDER BY 1").fetchall()
        restricted = _restricted_context(context, [row[0] for row in instants], dirty)
        recomputed = event_usage(restricted)
        assert recomputed is not None
        columns = ", ".join(("account_id", "as_of", *USAGE_COLUMNS))
        store.connection.execute(
            "DELETE FROM _usage USING _dirty d WHERE _usage.account_id = d.account_id AND _usage.as_of = d.as_of"
        )
        store.connection.execute(
            f"INSERT INTO _usage ({columns}) SELECT {columns} FROM ({_sql(store, recomputed)})"
        )
    return count


def _daily_activity(store: AnalyticalStore, user_days: ibis.Table) -> None:
    """Store in `_daily` (account_id, day, dau, mau) for every day with an active user, as
    `usage.active_and_trailing` computes them over all of `user_days`, with MAU over `MAU_DAYS` days.

    Hash aggregates over bit masks replace the islands window, which sorted every user's days. Each
    user's days are cut into chunks of `_CHUNK_DAYS` days, one bit per day. A chunk's mask and the
    last `MAU_DAYS - 1` bits of the chunk before it form a window mask, in which bit k is day
    `chunk start - (MAU_DAYS - 1) + k`. So the user was active in the `MAU_DAYS` days up to day b of
    the chunk when any of bits b to b + MAU_DAYS - 1 is set.
    """
    connection = store.connection
    source = _sql(store, user_days.select("account_id", "user_id", "day"))
    base = connection.execute(f"SELECT min(day) FROM ({source})").fetchall()[0][0]
    if base is None:
        connection.execute(
            "CREATE OR REPLACE TEMP TABLE _daily (account_id VARCHAR, day DATE, dau BIGINT, mau BIGINT)"
        )
        return
    offset = f"(day - DATE '{base:%Y-%m-%d}')"
    history = MAU_DAYS - 1
    # Bits of the previous chunk that fall in the first day's MAU window.
    dropped = _CHUNK_DAYS - history
    month = (1 << MAU_DAYS) - 1
    dau = ", ".join(f"count(*) FILTER (WHERE ((chunk_mask >> {bit}) & 1) = 1)" for bit in range(_CHUNK_DAYS))
    mau = ", ".join(
        f"count(*) FILTER (WHERE ((window_mask >> {bit}) & {month}) <> 0)" for bit in range(_CHUNK_DAYS)
    )
    connection.execute(
        f"""CREATE OR REPLACE TEMP TABLE _chunks AS
            SELECT account_id, user_id, {offset} // {_CHUNK_DAYS} AS chunk,
                   bit_or(CAST(1 AS BIGINT) << ({offset} % {_CHUNK_DAYS})) AS mask
            FROM ({source}) GROUP BY account_id, user_id, chunk"""
    )
    # A chunk without activity still has MAU from the chunk before it, so each mask also goes to the
    # next chunk when any of its bits reaches that far.
    connection.execute(
        f"""CREATE OR REPLACE TEMP TABLE _daily AS
            WITH paired AS (
                SELECT account_id, user_id, chunk, bit_or(chunk_mask) AS chunk_mask,
                       bit_or(previous_mask) AS previous_mask
                FROM (SELECT account_id, user_id, chunk, mask AS chunk_mask, 0 AS previous_mask FROM _chunks
                      UNION ALL
                      SELECT account_id, user_id, chunk + 1, 0, mask FROM _chunks WHERE mask >> {dropped} <> 0)
                GROUP BY account_id, user_id, chunk
            ),
            windows AS (
                SELECT account_id, chunk, chunk_mask,
                       (chunk_mask << {history}) | (previous_mask >> {dropped}) AS window_mask
                FROM paired
            ),
            counts AS (
                SELECT account_id, chunk, [{dau}] AS dau, [{mau}] AS mau FROM windows GROUP BY account_id, chunk
            )
            SELECT account_id, day, dau, mau FROM (
                SELECT account_id,
                       DATE '{base:%Y-%m-%d}' + CAST(chunk * {_CHUNK_DAYS} + unnest(range({_CHUNK_DAYS})) AS INTEGER) AS day,
                       unnest(dau) AS dau, unnest(mau) AS mau
                FROM counts
            ) WHERE dau > 0"""
    )
    connection.execute("DROP TABLE _chunks")


def _series_usage(context: SignalContext, daily: ibis.Table, spine: ibis.Table) -> ibis.Table:
    """Compute the usage columns at every spine pair from one DAU/MAU series per account (exact for clean pairs)."""
    days = context.settings.usage_window_days
    week = min(7, days)
    sum_of_squares = days * (days * days - 1) / 12.0

    ratios = daily.select("account_id", "day", ratio=daily.dau.cast("float64") / daily.mau.cast("float64"))
    ends = spine.select("account_id", day=spine.end_day).distinct().mutate(ratio=ibis.literal(0.0))
    points = ratios.union(ends).group_by(["account_id", "day"]).aggregate(ratio=_.ratio.sum())
    points = points.mutate(ordinal=points.day.delta(ibis.literal(_BASE_DAY), unit="day"))
    points = points.mutate(number=points.ordinal.cast("float64"))

    # Frames over the integer day number: DuckDB evaluates them faster than interval frames over dates.
    def trailing(length: int) -> ibis.expr.types.WindowSpec:  # type: ignore[name-defined]
        return ibis.window(group_by="account_id", order_by="ordinal", range=(-(length - 1), 0))

    sums = points.mutate(
        total=points.ratio.sum().over(trailing(days)),
        moment=(points.number * points.ratio).sum().over(trailing(days)),
        last_week=points.ratio.sum().over(trailing(week)),
        after_first_week=points.ratio.sum().over(trailing(days - week)),
    )
    fitted = sums.select(
        "account_id",
        "day",
        usage_trend=(sums.moment - (sums.number - (days - 1) / 2.0) * sums.total) / sum_of_squares,
        usage_level=sums.total / days,
        usage_start=(sums.total - sums.after_first_week) / week,
        usage_end=sums.last_week / week,
    )
    joined = spine.join(fitted, [spine.account_id == fitted.account_id, spine.end_day == fitted.day])
    return joined.select(
        spine.account_id,
        spine.as_of,
        usage_trend=joined.usage_trend.fill_null(0.0),
        usage_level=joined.usage_level.fill_null(0.0),
        usage_start=joined.usage_start.fill_null(0.0),
        usage_end=joined.usage_end.fill_null(0.0),
        usage_measure=ibis.literal("dau_mau"),
    )


def _dirty_pairs(context: SignalContext, user_days: ibis.Table, spine: ibis.Table) -> ibis.Table:
    """Return the (account_id, as_of) pairs whose usage lookback contains a user-day not yet known at
    the pair's knowledge cut-off (`SignalContext.known_until`)."""
    lookback = context.settings.usage_window_days + MAU_DAYS - 1
    # Every comparison with first_known uses the cut-off, as_of plus the knowledge lag.
    spine = spine.mutate(_known_until=context.known_until(spine.as_of))
    first_instant = spine.group_by(["account_id", "end_day"]).aggregate(first_cut_off=_._known_until.min())
    bounds = spine.group_by("account_id").aggregate(
        first_end_day=_.end_day.min(),
        last_end_day=_.end_day.max(),
        first_cut_off=_._known_until.min(),
        min_gap=_._known_until.delta(_.end_day.cast("timestamp"), unit="microsecond").min(),
    )

    rows = user_days.join(bounds, "account_id")
    # A user-day on day d makes pairs only with end days from d on, whose cut-off is at least
    # d + min_gap (the account's smallest gap from end day to cut-off). It makes them only when the
    # cut-off is at or before first_known. Rows that fail this test therefore make no pairs, in any
    # timezone. They are nearly all rows, because a day first known before its first cut-off is not
    # late, so the join below reads few.
    rows = rows.filter(
        (rows.day <= rows.last_end_day)
        & (rows.first_known >= rows.day.cast("timestamp") + rows.min_gap.as_interval("us"))
    )
    rows = rows.left_join(
        first_instant,
        [rows.account_id == first_instant.account_id, rows.day == first_instant.end_day],
    )
    late = ibis.cases(
        (rows.day < rows.first_end_day, rows.first_known >= rows.first_cut_off),
        (rows.first_cut_off_right.isnull(), ibis.literal(True)),
        else_=rows.first_known >= rows.first_cut_off_right,
    )
    late_rows = rows.filter(late).select("account_id", "day", "first_known")
    pairs = late_rows.join(
        spine,
        [
            late_rows.account_id == spine.account_id,
            spine.end_day >= late_rows.day,
            spine.end_day < late_rows.day + ibis.interval(days=lookback),
            spine._known_until <= late_rows.first_known,
        ],
    )
    return pairs.select(spine.account_id, spine.as_of).distinct()


def _restricted_context(
    context: SignalContext, instants: Sequence[datetime], pairs: ibis.Table
) -> SignalContext:
    snapshots = _snapshots(_duckdb(context), "_instants_dirty", instants)
    accounts = context.accounts.semi_join(pairs, ["account_id", "as_of"])
    return SignalContext(context.store, context.workspace, snapshots, accounts, min(instants))


def _write_block(
    workspace: Workspace,
    store: AnalyticalStore,
    table: str,
    instants: Sequence[datetime],
    usage: ibis.Table | None,
    ready: dict[str, ibis.Table],
    first: bool,
) -> None:
    snapshots = _snapshots(store, "_instants_block", instants)
    spine = store.table("_spine")
    accounts = spine.semi_join(snapshots, "as_of")
    context = SignalContext(store, workspace, snapshots, accounts, min(instants))

    result = accounts.select("account_id", "as_of")
    active_users = None
    if workspace.config.signals.support_normalisation == "per_active_user":
        active_users = active_users_in_window(context)

    def stored(name: str, compute: Callable[[], ibis.Table | None]) -> ibis.Table | None:
        return ready[name].semi_join(snapshots, "as_of") if name in ready else compute()

    parts = [
        with_daily_fallback(context, usage.semi_join(snapshots, "as_of"))
        if usage is not None
        else usage_signal(context),
        sentiment_signal(context),
        stored("_support", lambda: support_signal(context, active_users)),
        champion_signal(context),
        stored("_integrations", lambda: integrations_signal(context)),
    ]
    for part in parts:
        if part is not None:
            result = result.left_join(part, ["account_id", "as_of"]).drop("account_id_right", "as_of_right")
    present = set(result.columns)
    columns = {}
    for column in (*FEATURES, *DETAILS):
        if column == "usage_measure":
            columns[column] = result[column] if column in present else ibis.null("string")
        else:
            columns[column] = result[column].cast("float64") if column in present else ibis.null("float64")
    result = result.select("account_id", "as_of", **columns)

    sql = _sql(store, result)
    if first:
        store.connection.execute(f'CREATE TABLE "{table}" AS {sql}')
    else:
        store.connection.execute(f'INSERT INTO "{table}" {sql}')


def _sql(store: AnalyticalStore, expression: ibis.Table) -> str:
    return str(store.ibis.compile(expression))


def _temp(store: AnalyticalStore, name: str, expression: ibis.Table) -> None:
    store.connection.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {_sql(store, expression)}")
