"""Active user-days from usage events: the one definition the raw path and the stored aggregate share.

A user-day is (account_id, user_id, local day) with `first_known`, the earliest `_available_at` among
its events. An event id counts once, in its first stored version (ordered by `_available_at`, then
load, then row); the later versions are the *superseded* rows. Local days use each account's newest
timezone, or the default. Internal users are not removed here: the signals filter them when they read,
so a change of the users table or of the exclusion settings needs no recomputation.
"""

from __future__ import annotations

import ibis
from ibis import _

from account_health.signals.context import local_day

VERSION_KEY = ("event_id", "_load_id", "_row_number")


def superseded_versions(events: ibis.Table, candidates: ibis.Table | None = None) -> ibis.Table:
    """(event_id, _load_id, _row_number) of every stored event version that is not its id's first.

    With `candidates` (a table with an event_id column), only those ids are examined.
    """
    if candidates is not None:
        events = events.semi_join(candidates, "event_id")
    repeated = events.group_by("event_id").aggregate(_versions=_.count()).filter(_._versions > 1)
    versions = events.semi_join(repeated, "event_id").select(*VERSION_KEY, "_available_at")
    first_first = ibis.window(group_by="event_id", order_by=["_available_at", "_load_id", "_row_number"])
    ranked = versions.mutate(_rank=ibis.row_number().over(first_first))
    return ranked.filter(_._rank > 0).select(*VERSION_KEY)


def account_zones(accounts: ibis.Table, default_timezone: str) -> ibis.Table:
    """(account_id, zone): each account's timezone in its newest version, or the default."""
    newest = ibis.window(group_by="account_id", order_by=[ibis.desc("_available_at"), ibis.desc("_load_id")])
    return (
        accounts.mutate(_rank=ibis.row_number().over(newest))
        .filter(_._rank == 0)
        .select("account_id", zone=_.timezone.fill_null(default_timezone))
    )


def user_day_rows(
    events: ibis.Table,
    superseded: ibis.Table,
    zones: ibis.Table,
    default_timezone: str,
    backend: str = "duckdb",
) -> ibis.Table:
    """(account_id, user_id, day, first_known) of `events`, leaving out superseded versions.

    `backend` names the Ibis engine the expression runs on, which picks its local-day function.
    """
    events = events.anti_join(superseded, list(VERSION_KEY))
    events = events.left_join(zones, "account_id")
    zone = events.zone.fill_null(default_timezone)
    events = events.mutate(day=local_day(events.occurred_at, zone, backend))
    return events.group_by(["account_id", "user_id", "day"]).aggregate(first_known=_._available_at.min())
