"""Shared inputs of every signal: the snapshot instants, point-in-time views of canonical tables, local days."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir
from ibis.backends import BaseBackend

from account_health.config import SignalSettings, Workspace
from account_health.sources.canonical import TABLES

MICROSECONDS_PER_DAY = 86_400_000_000.0
MICROSECOND = timedelta(microseconds=1)
# Tables that the API fills besides the configured sources: job changes received by
# `POST /v1/job-changes` are copied into contact_changes (see `sources.received`).
API_FED_TABLES = ("contact_changes",)
# Valid-until of a version no newer version replaces: later than any as_of.
NEVER = ibis.literal(datetime(9999, 12, 31), "timestamp")


class TableSource(Protocol):
    """Where the signal expressions find the canonical tables and run.

    The DuckDB analytical store is one, and `store.spark.SparkTables` (the same tables, read by Spark)
    is the other.
    """

    @property
    def ibis(self) -> BaseBackend: ...

    def table(self, name: str) -> ir.Table: ...

    def has_rows(self, name: str) -> bool: ...


@ibis.udf.scalar.builtin(name="timezone", signature=((dt.string, dt.Timestamp(timezone="UTC")), dt.timestamp))
def _duckdb_utc_to_local(zone, timestamp):  # type: ignore[no-untyped-def]
    """DuckDB's timezone(zone, timestamptz): the wall-clock time in `zone`."""


@ibis.udf.scalar.builtin(
    name="from_utc_timestamp",
    signature=((dt.Timestamp(timezone="UTC"), dt.string), dt.Timestamp(timezone="UTC")),
)
def _spark_utc_to_local(timestamp, zone):  # type: ignore[no-untyped-def]
    """Spark's from_utc_timestamp(timestamp, zone): the wall-clock time in `zone`, as a UTC timestamp."""


def local_day(
    timestamp: ibis.TimestampValue, zone: ibis.StringValue, backend: str = "duckdb"
) -> ibis.DateValue:
    """Return the calendar day of a naive-UTC `timestamp` in the IANA timezone `zone`.

    Each engine has its own builtin (`backend` is an Ibis backend name, "duckdb" or "pyspark"). Both
    read the timezone rules of the instant itself, so a day that starts or ends a daylight-saving period
    is 23 or 25 hours long on both. Spark's result is read back in the session time zone, which Ibis
    sets to UTC, so its date is the local date.
    """
    instant = timestamp.cast(dt.Timestamp(timezone="UTC"))
    if backend == "pyspark":
        return _spark_utc_to_local(instant, zone).date()
    if backend != "duckdb":
        raise ValueError(f"no local-day function for the {backend!r} backend; use duckdb or pyspark")
    return utc_to_local(timestamp, zone).date()


def utc_to_local(timestamp: ibis.TimestampValue, zone: ibis.StringValue) -> ibis.TimestampValue:
    """Return the wall-clock time in `zone` of a naive-UTC `timestamp`, as a naive timestamp (DuckDB only)."""
    return _duckdb_utc_to_local(zone, timestamp.cast(dt.Timestamp(timezone="UTC")))


@dataclass
class SignalContext:
    """Inputs shared by the signal computations of one call.

    `accounts` has one row per (account_id, as_of) for every account known at the knowledge cut-off of
    `as_of` (see `known_until`), with the account's timezone (the default where it has none) and
    `end_day`, the last complete local day before `as_of`.
    """

    store: TableSource
    workspace: Workspace
    snapshots: ibis.Table
    accounts: ibis.Table
    # The earliest as_of among the snapshots, when known, so that scans of dated rows can skip older days.
    earliest_as_of: datetime | None = None
    # How long after as_of rows loaded still count; None takes `[signals] knowledge_lag_hours`.
    lag: timedelta | None = None

    @property
    def settings(self) -> SignalSettings:
        return self.workspace.config.signals

    @property
    def knowledge_lag(self) -> timedelta:
        return self.settings.knowledge_lag if self.lag is None else self.lag

    def known_until(self, as_of: ibis.TimestampValue) -> ibis.TimestampValue:
        """Return the knowledge cut-off of a snapshot at `as_of`: as_of plus the knowledge lag.

        The snapshot reads the row versions available before the cut-off, so a run shortly after as_of
        includes its own load. Event-time windows still end at as_of, and only availability instants are
        compared with the cut-off.
        """
        lag = self.knowledge_lag
        return as_of + ibis.interval(lag // MICROSECOND, unit="us") if lag else as_of

    def known_from(self, available_at: ibis.TimestampValue) -> ibis.TimestampValue:
        """Return `available_at` minus the knowledge lag: a row available at `available_at` is known at
        every as_of strictly after the result, because then `available_at < known_until(as_of)`."""
        lag = self.knowledge_lag
        return available_at - ibis.interval(lag // MICROSECOND, unit="us") if lag else available_at

    def local_day(self, timestamp: ibis.TimestampValue, zone: ibis.StringValue) -> ibis.DateValue:
        """Return the calendar day of a naive-UTC `timestamp` in `zone`, on this context's engine."""
        return local_day(timestamp, zone, self.store.ibis.name)

    def configured(self, table: str) -> bool:
        """Return whether a source (or the API) feeds `table` and the store contains rows of it."""
        return table_fed(self.workspace, self.store, table)

    def known_at(self, table: str, versions: ibis.Table | None = None) -> ibis.Table:
        """Each row of `table` in its latest version available strictly before each snapshot's
        knowledge cut-off (`known_until`), with the snapshot's as_of.

        `versions` replaces `self.versions(table)`, so that columns computed once per stored version
        need not be computed again for each snapshot.

        Each version is valid from its `_available_at` until the next version of its key becomes
        available, so a version is joined only to the instants inside that interval: a version is the
        latest one at as_of when it is available before the cut-off and the next one is not. This is
        the same choice as ranking every version known at each instant, without the ranking's sort over
        the join. Event-time filters on the result compare with as_of itself.
        """
        # Rows of accounts that are not (yet) known drop out where signals join onto known accounts, so
        # the ingest's unattributed flag is not needed here and a later accounts load attributes them.
        rows = self.versions(table) if versions is None else versions
        snapshots = self.snapshots
        cut_off = self.known_until(snapshots.as_of)
        joined = rows.join(snapshots, [rows._available_at < cut_off, rows._valid_until >= cut_off])
        return joined.drop("_valid_until")

    def versions(self, table: str) -> ibis.Table:
        """Every stored version of `table`'s rows with `_valid_until`, when the next version of its key
        became available (far in the future for the newest): the version is the latest one at every
        as_of with `_available_at < known_until(as_of) <= _valid_until`."""
        # Two sources of one table can store the same key at the same row number in one load; the source
        # name breaks that tie, so both engines order the versions alike.
        in_order = ibis.window(
            group_by=list(TABLES[table].key), order_by=["_available_at", "_load_id", "_row_number", "_source"]
        )
        rows = self.store.table(table)
        return rows.mutate(_valid_until=rows._available_at.lead().over(in_order).fill_null(NEVER))

    def at_instants(self, changes: ibis.Table, columns: Sequence[str]) -> ibis.Table:
        """Running sums of `changes` at every (account_id, as_of) of `accounts`.

        `changes` has account_id, `_at` and the numeric `columns`: a change at `_at` counts at every
        as_of strictly after it. An `_at` that comes from an availability instant must be passed
        through `known_from` first, so that it counts from the snapshots whose cut-off lies after it.
        One running sum per account over the changes and the instants in time order replaces joining
        every row to every instant it counts at.
        """
        zero = ibis.literal(0, "int64")
        # Timestamp columns of different precisions do not union, so every `_at` is cast alike.
        steps = changes.select(
            "account_id",
            _at=changes._at.cast("timestamp"),
            _instant=zero,
            **{name: changes[name] for name in columns},
        )
        instants = self.accounts.select(
            "account_id",
            _at=self.accounts.as_of.cast("timestamp"),
            _instant=ibis.literal(1, "int64"),
            **{name: ibis.literal(0, changes[name].type()) for name in columns},
        )
        # An instant sorts before the changes at its own time, which it must not see yet.
        in_time = ibis.window(group_by="account_id", order_by=["_at", ibis.desc("_instant")], rows=(None, 0))
        sums = steps.union(instants).mutate(**{name: ibis._[name].sum().over(in_time) for name in columns})
        sums = sums.filter(sums._instant == 1)
        return sums.select("account_id", as_of=sums._at, **{name: sums[name] for name in columns})


def table_fed(workspace: Workspace, store: TableSource, table: str) -> bool:
    """Return whether a configured source or the API feeds `table`, and the store contains rows of it."""
    feeds = table in API_FED_TABLES or any(
        source.table == table for source in workspace.config.sources.values()
    )
    return feeds and store.has_rows(table)


def days_between(later: ibis.TimestampValue, earlier: ibis.TimestampValue) -> ibis.FloatingValue:
    """`later - earlier` in fractional days.

    Counted in whole microseconds, which both engines agree on; `epoch_seconds()` does not port: Spark's
    `unix_timestamp` drops the fraction of a second that DuckDB's `epoch` keeps.
    """
    return later.delta(earlier, unit="microsecond").cast("float64") / MICROSECONDS_PER_DAY


def glob_to_regex(pattern: str) -> str:
    """Turn a shell glob (`bot-*`) into an anchored regular expression that RE2 and Java read alike.

    Not a LIKE pattern: Spark's LIKE takes `\\` as its escape character and DuckDB's LIKE has none,
    and Ibis writes no ESCAPE clause, so a literal `_` or `%` would match differently on the two engines.
    """
    special = set(".^$*+?()[]{}|\\")
    parts = []
    for char in pattern:
        if char == "*":
            parts.append(".*")
        elif char == "?":
            parts.append(".")
        elif char in special:
            parts.append("\\" + char)
        else:
            parts.append(char)
    return "^" + "".join(parts) + "$"


def build_context(
    workspace: Workspace,
    store: TableSource,
    snapshots: ibis.Table,
    earliest_as_of: datetime | None = None,
    lag: timedelta | None = None,
) -> SignalContext:
    """Return the context of `snapshots` (a table with an `as_of` column).

    `lag` overrides `[signals] knowledge_lag_hours`, for reads that must see only what was available
    before as_of itself.
    """
    settings = workspace.config.signals
    partial = SignalContext(store, workspace, snapshots, snapshots, lag=lag)
    accounts = partial.known_at("accounts")
    zone = accounts.timezone.fill_null(settings.default_timezone)
    accounts = accounts.select(
        "account_id",
        "as_of",
        timezone=zone,
        end_day=local_day(accounts.as_of, zone, store.ibis.name) - ibis.interval(days=1),
    )
    return SignalContext(store, workspace, snapshots, accounts, earliest_as_of, lag)
