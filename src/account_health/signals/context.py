"""Shared inputs of every signal: the snapshot instants, point-in-time views of canonical tables, local days."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import ibis
import ibis.expr.datatypes as dt
from ibis import _

from account_health.config import SignalSettings, Workspace
from account_health.sources.canonical import TABLES
from account_health.store.analytical import AnalyticalStore

SECONDS_PER_DAY = 86_400.0


@ibis.udf.scalar.builtin(name="timezone", signature=((dt.string, dt.Timestamp(timezone="UTC")), dt.timestamp))
def _utc_to_local(zone, timestamp):  # type: ignore[no-untyped-def]
    """DuckDB's timezone(zone, timestamptz): the wall-clock time in `zone`."""


def local_day(timestamp: ibis.TimestampValue, zone: ibis.StringValue) -> ibis.DateValue:
    """Return the calendar day of a naive-UTC `timestamp` in the IANA timezone `zone`."""
    return _utc_to_local(zone, timestamp.cast(dt.Timestamp(timezone="UTC"))).date()


@dataclass
class SignalContext:
    """Inputs shared by the signal computations of one call.

    `accounts` has one row per (account_id, as_of) for every account known before `as_of`, with the
    account's timezone (the default where it has none) and `end_day`, the last complete local day
    before `as_of`.
    """

    store: AnalyticalStore
    workspace: Workspace
    snapshots: ibis.Table
    accounts: ibis.Table
    # The earliest as_of among the snapshots, when known, so that scans of dated rows can skip older days.
    earliest_as_of: datetime | None = None

    @property
    def settings(self) -> SignalSettings:
        return self.workspace.config.signals

    def configured(self, table: str) -> bool:
        """Return whether a source feeds `table` and the store contains rows of it."""
        feeds = any(source.table == table for source in self.workspace.config.sources.values())
        return feeds and self.store.has_rows(table)

    def known_at(self, table: str, extra: ibis.ir.BooleanValue | None = None) -> ibis.Table:
        """Each row of `table` in its latest version available strictly before each snapshot's as_of."""
        spec = TABLES[table]
        # Rows of accounts that are not (yet) known drop out where signals join onto known accounts, so
        # the ingest's unattributed flag is not needed here and a later accounts load attributes them.
        rows = self.store.table(table)
        joined = rows.join(self.snapshots, rows._available_at < self.snapshots.as_of)
        if extra is not None:
            joined = joined.filter(extra)
        newest_first = ibis.window(
            group_by=[*spec.key, "as_of"],
            order_by=[ibis.desc("_available_at"), ibis.desc("_load_id"), ibis.desc("_row_number")],
        )
        ranked = joined.mutate(_version_rank=ibis.row_number().over(newest_first))
        return ranked.filter(_._version_rank == 0).drop("_version_rank")


def days_between(later: ibis.TimestampValue, earlier: ibis.TimestampValue) -> ibis.FloatingValue:
    """`later - earlier` in fractional days."""
    return (later.epoch_seconds() - earlier.epoch_seconds()).cast("float64") / SECONDS_PER_DAY


def glob_to_like(pattern: str) -> str:
    """Turn a shell glob (`bot-*`) into a SQL LIKE pattern with `\\` as the escape character."""
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


def build_context(
    workspace: Workspace,
    store: AnalyticalStore,
    snapshots: ibis.Table,
    earliest_as_of: datetime | None = None,
) -> SignalContext:
    settings = workspace.config.signals
    partial = SignalContext(store, workspace, snapshots, snapshots)
    accounts = partial.known_at("accounts")
    zone = accounts.timezone.fill_null(settings.default_timezone)
    accounts = accounts.select(
        "account_id",
        "as_of",
        timezone=zone,
        end_day=local_day(accounts.as_of, zone) - ibis.interval(days=1),
    )
    return SignalContext(store, workspace, snapshots, accounts, earliest_as_of)
