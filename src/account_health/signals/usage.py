"""Usage trend: the least-squares slope of daily DAU/MAU over the last complete local days.

MAU on day d counts distinct active users over the trailing 28 days [d - 27, d]. Spark has no
distinct count over a sliding frame. When the lookback (window plus 27 days) fits in 63 bits, each
user's active days become one bit mask per (account, as-of), and DAU and MAU on each window day are
counts of users with the day's bit, or any bit of its 28 days, set. Otherwise each user's active days
are merged into islands that cover [first active day, last active day + 27]. A +1 at an island's start
and a -1 the day after its end, summed in day order, give MAU on every day. The daily backfill
computes the same DAU and MAU from bit masks over fixed chunks of days (`backfill._daily_activity`).

With x = 0..n-1 over the n window days, the slope is sum((x - mean_x) * y) / sum((x - mean_x)^2); days
without activity have y = 0 and add nothing, so only active days need a row.
"""

from __future__ import annotations

import functools
import operator
from datetime import timedelta

import ibis
from ibis import _

from account_health.signals.aggregate import SUPERSEDED_TABLE, stored_user_days
from account_health.signals.context import SignalContext, glob_to_regex
from account_health.signals.user_days import account_zones, superseded_versions, user_day_rows
from account_health.store.analytical import AnalyticalStore

MAU_DAYS = 28
# Lookback days whose activity fits in one signed 64-bit mask per user (bits 0 to 62).
MASK_DAYS = 63


USAGE_COLUMNS = ("usage_trend", "usage_level", "usage_start", "usage_end", "usage_measure")


def usage_signal(context: SignalContext) -> ibis.Table | None:
    """Return (account_id, as_of, usage_trend, usage_level, usage_start, usage_end, usage_measure).

    With both an event-level and an aggregated source, see `with_daily_fallback`.
    """
    events = event_usage(context)
    if events is not None:
        return with_daily_fallback(context, events)
    if context.configured("usage_daily"):
        return _from_daily(context)
    return None


def event_usage(context: SignalContext) -> ibis.Table | None:
    """Return the usage columns from the usage events alone, or None when no source feeds them."""
    return _from_events(context) if context.configured("usage_events") else None


def with_daily_fallback(context: SignalContext, events: ibis.Table) -> ibis.Table:
    """Return the usage columns of `events` (computed from events) for each pair whose window has an
    active user, and the aggregated feed's for the other pairs. Without a fed aggregated table, return
    `events` as it is.

    A company moving from a daily feed to event tracking keeps the feed's usage for the dates before
    its first events, and both choices are per (account_id, as_of), so later loads change no snapshot.
    """
    if not context.configured("usage_daily"):
        return events
    daily = _from_daily(context).rename({f"_daily_{column}": column for column in USAGE_COLUMNS})
    joined = events.join(daily, ["account_id", "as_of"])
    # The level is the window's mean DAU/MAU, above zero exactly when some window day had an active user.
    active = joined.usage_level > 0
    return joined.select(
        "account_id",
        "as_of",
        **{
            column: ibis.ifelse(active, joined[column], joined[f"_daily_{column}"])
            for column in USAGE_COLUMNS
        },
    )


def active_user_days(context: SignalContext) -> ibis.Table:
    """Distinct (account_id, user_id, day) of non-internal users, with the instant each became known
    (`first_known`) and the `zone` their days were cut in: each account's current timezone.

    Reads the stored aggregate when it covers every load (`signals.aggregate`), else the events.
    """
    rows, _superseded = _current_user_days(context)
    return rows.filter(~_internal_user(context, rows))


def _current_user_days(context: SignalContext) -> tuple[ibis.Table, ibis.Table]:
    """Return every account's user-days in its current zone, with `zone`, and the superseded versions."""
    default = context.settings.default_timezone
    zones = account_zones(context.store.table("accounts"), default)
    # The stored aggregate lives in the DuckDB store; Spark reads the exported events instead.
    rows = stored_user_days(context.store, default) if isinstance(context.store, AnalyticalStore) else None
    if rows is not None:
        superseded = context.store.table(SUPERSEDED_TABLE)
    else:
        events = context.store.table("usage_events")
        superseded = superseded_versions(events)
        rows = user_day_rows(events, superseded, zones, default, context.store.ibis.name)
    rows = rows.left_join(zones, "account_id")
    rows = rows.select("account_id", "user_id", "day", "first_known", zone=rows.zone.fill_null(default))
    return rows, superseded


def stale_zone_pairs(context: SignalContext) -> ibis.Table:
    """(account_id, as_of, timezone) of the context's snapshots that knew the account in a timezone other
    than its current one, in which its stored days are cut."""
    current = account_zones(context.store.table("accounts"), context.settings.default_timezone)
    pairs = context.accounts.join(current, "account_id")
    return pairs.filter(pairs.timezone != pairs.zone).select("account_id", "as_of", "timezone")


def snapshot_user_days(context: SignalContext) -> ibis.Table:
    """`active_user_days`, plus the days of each account cut in every other zone a snapshot knew it in.

    A snapshot cuts days in the zone the account had at its as_of, so an old snapshot recomputed after a
    timezone change gives the same values as before the change. Those days come from the account's
    events; with no such snapshot (the usual case), the stored or current days alone are returned.
    """
    rows, superseded = _current_user_days(context)
    stale = stale_zone_pairs(context).select("account_id", zone=_.timezone).distinct()
    if int(stale.count().execute()) > 0:
        events = context.store.table("usage_events").semi_join(stale, "account_id")
        default = context.settings.default_timezone
        other = user_day_rows(events, superseded, stale, default, context.store.ibis.name, by_zone=True)
        rows = rows.union(other.select(*rows.columns))
    return rows.filter(~_internal_user(context, rows))


def _internal_user(context: SignalContext, events: ibis.Table) -> ibis.ir.BooleanValue:
    settings = context.settings
    excluded = ibis.literal(False)
    for pattern in settings.internal_user_patterns:
        excluded = excluded | events.user_id.re_search(glob_to_regex(pattern))
    if context.store.has_rows("users"):
        users = context.store.table("users")
        newest = ibis.window(group_by="user_id", order_by=[ibis.desc("_available_at"), ibis.desc("_load_id")])
        users = users.mutate(_rank=ibis.row_number().over(newest)).filter(_._rank == 0)
        internal = users.is_internal.fill_null(False)
        email = users.email.lower().fill_null("")
        # An address may come with a display name, "Jane Doe <jane@acme.com>": as `resolve` does, the part
        # in angle brackets is read when an @ lies between a < and a later >, else the whole cell.
        named = email.re_search("<.*@.*>")
        email = ibis.ifelse(named, email.re_extract("<([^<>]*)>", 1), email).strip()
        for domain in settings.internal_email_domains:
            internal = internal | email.endswith("@" + domain.lower().lstrip("@"))
        internal_ids = users.filter(internal).select("user_id")
        excluded = excluded | events.user_id.isin(internal_ids.user_id)
    return excluded


def _visible_user_days(context: SignalContext, user_days: ibis.Table, days: int) -> ibis.Table:
    """Active user-days in the `days` local days up to each account's end day, known before the
    knowledge cut-off of as_of, cut in the account's zone at as_of."""
    accounts, earliest_as_of = context.accounts, context.earliest_as_of
    if earliest_as_of is not None:
        # An end day is at least two days before its as_of (UTC-12 at the latest), so older days cannot
        # match; filtering them first spares the join a scan of the whole history.
        oldest = earliest_as_of.date() - timedelta(days=days + 2)
        user_days = user_days.filter(user_days.day >= ibis.literal(oldest))
    return user_days.join(
        accounts,
        [
            user_days.account_id == accounts.account_id,
            user_days.zone == accounts.timezone,
            user_days.day <= accounts.end_day,
            user_days.day > accounts.end_day - ibis.interval(days=days),
            user_days.first_known < context.known_until(accounts.as_of),
        ],
    )


def _window_bounds(context: SignalContext) -> tuple[int, float]:
    days = context.settings.usage_window_days
    sum_of_squares = days * (days * days - 1) / 12.0
    return days, sum_of_squares


def _from_events(context: SignalContext) -> ibis.Table:
    days, sum_of_squares = _window_bounds(context)
    user_days = snapshot_user_days(context)
    accounts = context.accounts
    lookback = days + MAU_DAYS - 1

    visible = _visible_user_days(context, user_days, lookback).select(
        "account_id", "as_of", "end_day", "user_id", "day"
    )

    if lookback <= MASK_DAYS:
        return _fit_from_masks(visible, days, sum_of_squares, accounts)
    series = active_and_trailing(visible, ["account_id", "as_of", "end_day"], MAU_DAYS)
    series = series.filter(series.day > series.end_day - ibis.interval(days=days))
    series = series.mutate(
        ratio=series.dau.cast("float64") / series.mau.cast("float64"),
        position=(days - 1) - series.end_day.delta(series.day, unit="day").cast("float64"),
    )
    return _slope(series, "ratio", days, sum_of_squares, accounts, "dau_mau")


def _fit_from_masks(
    visible: ibis.Table, days: int, sum_of_squares: float, accounts: ibis.Table
) -> ibis.Table:
    """Fit DAU/MAU as `_slope` does, from one bit mask per (account_id, as_of, user_id) in which bit i
    is set when the user was active i days before the end day.

    Two hash aggregates replace `active_and_trailing`'s sort of each user's days: DAU and MAU of each
    window day are columns of one row per (account_id, as_of), and the fit is a sum over those columns
    in a fixed order. The lookback must fit in `MASK_DAYS` bits.
    """
    # Spark types a bare 1 as a 32-bit int, which would shift out its bits past 31, so it is cast.
    lowest_bit = ibis.literal(1, "int8").cast("int64")
    age = visible.end_day.delta(visible.day, unit="day")
    # Each (account_id, as_of, user_id, day) occurs once, so the sum of distinct powers of two is the
    # bitwise or of the user's days, which Ibis cannot write for Spark.
    masks = visible.group_by(["account_id", "as_of", "user_id"]).aggregate(
        mask=(lowest_bit << age).sum().cast("int64")
    )
    month = (1 << MAU_DAYS) - 1
    counts = {}
    for days_back in range(days):
        shifted = masks.mask >> days_back
        counts[f"_dau_{days_back}"] = (shifted & 1).sum()
        counts[f"_mau_{days_back}"] = ((shifted & month) != 0).sum()
    per_account = masks.group_by(["account_id", "as_of"]).aggregate(**counts)

    # A day without active users has DAU 0 and a ratio of exactly 0, whatever its MAU.
    ratios = [
        per_account[f"_dau_{days_back}"] / ibis.greatest(per_account[f"_mau_{days_back}"], 1)
        for days_back in range(days)
    ]
    # Position x of a window day runs from 0 (the first day) to days - 1 (the end day).
    points = [(days - 1 - days_back, ratio) for days_back, ratio in enumerate(ratios)]
    centre = (days - 1) / 2.0
    week = min(7, days)
    moment = functools.reduce(operator.add, [(x - centre) * y for x, y in points])
    level = functools.reduce(operator.add, [y for _x, y in points])
    first_week = functools.reduce(operator.add, [y for x, y in points if x < week])
    last_week = functools.reduce(operator.add, [y for x, y in points if x >= days - week])
    fitted = per_account.select(
        "account_id",
        "as_of",
        usage_trend=moment / sum_of_squares,
        usage_level=level / days,
        usage_start=first_week / week,
        usage_end=last_week / week,
    )
    return _for_every_account(fitted, accounts, "dau_mau")


def active_and_trailing(user_days: ibis.Table, keys: list[str], trailing_days: int) -> ibis.Table:
    """(keys..., day, dau, mau) on every day with an active user: DAU and distinct users over the
    trailing `trailing_days` days, from islands of each user's active days and a running sum.

    `user_days` has one row per (keys..., user_id, day).
    """
    daily_active = user_days.group_by([*keys, "day"]).aggregate(dau=_.user_id.count())

    # end_day follows from (account_id, as_of), so it is left out of the windows' partitions, whose sort it would widen.
    partition = [key for key in keys if key != "end_day"]
    # One window gives each active day its user's previous and next active day: an island starts where
    # the previous one is more than `trailing_days` back and ends where the next one is that far ahead.
    in_order = ibis.window(group_by=[*partition, "user_id"], order_by="day")
    gap = ibis.interval(days=trailing_days)
    neighbours = user_days.mutate(previous=_.day.lag().over(in_order), following=_.day.lead().over(in_order))
    edges = neighbours.filter(
        neighbours.previous.isnull()
        | (neighbours.day > neighbours.previous + gap)
        | neighbours.following.isnull()
        | (neighbours.following > neighbours.day + gap)
    )
    first = edges.previous.isnull() | (edges.day > edges.previous + gap)
    last = edges.following.isnull() | (edges.following > edges.day + gap)
    zero = ibis.literal(0, "int64")
    starts = edges.filter(first).select(*keys, day=_.day, delta=ibis.literal(1, "int64"), dau=zero)
    ends = edges.filter(last).select(*keys, day=_.day + gap, delta=ibis.literal(-1, "int64"), dau=zero)
    actives = daily_active.select(*keys, "day", delta=zero, dau=_.dau)
    changes = (
        starts.union(ends)
        .union(actives)
        .group_by([*keys, "day"])
        .aggregate(delta=_.delta.sum(), dau=_.dau.sum())
    )
    by_day = ibis.window(group_by=partition, order_by="day")
    series = changes.mutate(mau=_.delta.cumsum().over(by_day))
    return series.filter(series.dau > 0)


def _from_daily(context: SignalContext) -> ibis.Table:
    """Fit daily active users where a snapshot's window has them, else daily events, per account.

    The measure is chosen per (account_id, as_of) from the rows visible at that snapshot, so a later load
    (or another account's rows) cannot change it. In a window with active users, a day with only an
    event count counts as zero active users.
    """
    days, sum_of_squares = _window_bounds(context)
    accounts = context.accounts
    rows = context.known_at("usage_daily")
    rows = rows.join(
        accounts,
        [
            rows.account_id == accounts.account_id,
            rows.as_of == accounts.as_of,
            rows.day <= accounts.end_day,
            rows.day > accounts.end_day - ibis.interval(days=days),
        ],
    )
    rows = rows.select(
        "account_id",
        "as_of",
        users=rows.active_users.cast("float64"),
        events=rows.event_count.cast("float64"),
        position=(days - 1) - rows.end_day.delta(rows.day, unit="day").cast("float64"),
    )
    with_users = rows.group_by(["account_id", "as_of"]).aggregate(_has_users=rows.users.notnull().any())
    rows = rows.join(with_users, ["account_id", "as_of"])
    series = rows.select(
        "account_id",
        "as_of",
        "position",
        value=ibis.ifelse(rows._has_users, rows.users.fill_null(0.0), rows.events.fill_null(0.0)),
        measure=ibis.ifelse(rows._has_users, ibis.literal("active_users"), ibis.literal("event_count")),
    )
    return _slope(series, "value", days, sum_of_squares, accounts, "event_count")


def _slope(
    series: ibis.Table, value: str, days: int, sum_of_squares: float, accounts: ibis.Table, measure: str
) -> ibis.Table:
    """Fit `value` over `position` per (account_id, as_of). The series' own `measure` column, when it
    has one, labels each account, and `measure` labels the others."""
    centre = (days - 1) / 2.0
    week = min(7, days)
    first_week = series.position < week
    last_week = series.position >= days - week
    labels = {"usage_measure": series.measure.max()} if "measure" in series.columns else {}
    fitted = series.group_by(["account_id", "as_of"]).aggregate(
        usage_trend=((series.position - centre) * series[value]).sum() / sum_of_squares,
        usage_level=series[value].sum() / days,
        usage_start=series[value].sum(where=first_week) / week,
        usage_end=series[value].sum(where=last_week) / week,
        **labels,
    )
    return _for_every_account(fitted, accounts, measure)


def _for_every_account(fitted: ibis.Table, accounts: ibis.Table, measure: str) -> ibis.Table:
    """Join the fitted usage columns onto every (account_id, as_of), with zeros where an account had no
    usage, labelled `measure` unless `fitted` has its own `usage_measure`."""
    result = accounts.select("account_id", "as_of").left_join(fitted, ["account_id", "as_of"])
    label = ibis.literal(measure)
    if "usage_measure" in fitted.columns:
        label = result.usage_measure.fill_null(measure)
    return result.select(
        "account_id",
        "as_of",
        usage_trend=result.usage_trend.fill_null(0.0),
        usage_level=result.usage_level.fill_null(0.0),
        usage_start=result.usage_start.fill_null(0.0),
        usage_end=result.usage_end.fill_null(0.0),
        usage_measure=label,
    )


def active_users_in_window(context: SignalContext) -> ibis.Table | None:
    """Distinct non-internal active users per (account_id, as_of) over the usage window, or None."""
    if not context.configured("usage_events"):
        return None
    days = context.settings.usage_window_days
    user_days = snapshot_user_days(context)
    visible = _visible_user_days(context, user_days, days)
    return visible.group_by(["account_id", "as_of"]).aggregate(active_users=_.user_id.nunique())
