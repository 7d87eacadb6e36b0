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

from account_health.signals.context import local_day, utc_to_local

# Hours of a UTC day at which a zone's offset is sampled. Equal offsets mean no switch that day.
_SAMPLE_HOURS = (0, 12, 24)

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


def day_boundaries(grid: ibis.Table) -> ibis.Table:
    """(zone, utc_day, boundary, before, after) for each (zone, utc_day) of `grid` on which the zone's
    UTC offset stays the same all day (DuckDB only).

    On such a day an instant before `boundary` (the UTC instant of the next local midnight) falls on
    local day `before`, and any later one on `after`. Days with a switch (daylight saving, or a zone
    moving across the date line, such as Pacific/Apia on 2011-12-30) have no row, so their events take
    `local_day` itself. `grid` has a string `zone` and a timestamp `utc_day` at UTC midnight.
    """
    offsets = {
        hour: utc_to_local(grid.utc_day + ibis.interval(hours=hour), grid.zone).delta(
            grid.utc_day + ibis.interval(hours=hour), unit="microsecond"
        )
        for hour in _SAMPLE_HOURS
    }
    steady = grid.filter((offsets[0] == offsets[12]) & (offsets[12] == offsets[24]))
    start = utc_to_local(steady.utc_day, steady.zone)
    before = start.date()
    offset = start.delta(steady.utc_day, unit="microsecond")
    next_midnight = (before + ibis.interval(days=1)).cast("timestamp")
    boundary = next_midnight - offset.as_interval("us")
    # Ibis drops a cast of date + interval to date that DuckDB needs, so the day after is read at the
    # boundary itself, which lies within the day's steady offset.
    return steady.select(
        "zone",
        utc_day=steady.utc_day.date(),
        boundary=boundary,
        before=before,
        after=utc_to_local(boundary, steady.zone).date(),
    )


def user_day_rows(
    events: ibis.Table,
    superseded: ibis.Table,
    zones: ibis.Table,
    default_timezone: str,
    backend: str = "duckdb",
    boundaries: ibis.Table | None = None,
    by_zone: bool = False,
) -> ibis.Table:
    """(account_id, user_id, day, first_known) of `events`, leaving out superseded versions.

    `backend` names the Ibis engine the expression runs on, which picks its local-day function. With
    `boundaries` (from `day_boundaries`, DuckDB only), events on a day without an offset switch take
    their local day from a join instead of converting each timestamp: the same days, faster. With
    `by_zone`, `zones` may hold several zones of one account: each event is cut in each of them, and
    the rows carry their `zone`.
    """
    events = events.anti_join(superseded, list(VERSION_KEY))
    events = events.left_join(zones, "account_id")
    events = events.mutate(zone=events.zone.fill_null(default_timezone))
    if boundaries is None:
        events = events.mutate(day=local_day(events.occurred_at, events.zone, backend))
    else:
        known = boundaries.select(
            _zone="zone", _utc_day="utc_day", _boundary="boundary", _before="before", _after="after"
        )
        events = events.mutate(_day_of=events.occurred_at.date())
        events = events.left_join(known, [events.zone == known._zone, events._day_of == known._utc_day])
        by_boundary = ibis.ifelse(events.occurred_at < events._boundary, events._before, events._after)
        events = events.mutate(
            day=ibis.ifelse(
                events._boundary.isnull(), local_day(events.occurred_at, events.zone, backend), by_boundary
            )
        )
    keys = ["account_id", "zone", "user_id", "day"] if by_zone else ["account_id", "user_id", "day"]
    return events.group_by(keys).aggregate(first_known=_._available_at.min())
