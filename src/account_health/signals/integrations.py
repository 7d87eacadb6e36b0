"""Integration depth: integrations active at the as-of instant, and the change over a window."""

from __future__ import annotations

import ibis
from ibis import _

from account_health.signals.context import NEVER, SignalContext


def integrations_signal(context: SignalContext) -> ibis.Table | None:
    """Return (account_id, as_of, integrations_active, integrations_change_90d).

    Both count integrations by name, ignoring case, so a reconnection whose earlier connection has no
    disconnection counts once. Both use what was known at the knowledge cut-off of as_of, so a
    disconnection recorded later does not reach back. Connections and disconnections count only when
    they occurred before as_of (or before as_of minus the window).
    """
    if not context.configured("integrations"):
        return None
    window = ibis.interval(days=context.settings.integrations_change_days)
    rows = context.known_at("integrations")
    name = integration_name(rows.integration)

    def active_at(instant: ibis.TimestampValue) -> ibis.BooleanValue:
        return (rows.connected_at < instant) & (
            rows.disconnected_at.isnull() | (rows.disconnected_at >= instant)
        )

    counts = rows.group_by(["account_id", "as_of"]).aggregate(
        now=name.nunique(where=active_at(rows.as_of)),
        before=name.nunique(where=active_at(rows.as_of - window)),
    )
    result = context.accounts.select("account_id", "as_of").left_join(counts, ["account_id", "as_of"])
    now = result.now.fill_null(0).cast("float64")
    before = result.before.fill_null(0).cast("float64")
    return result.select("account_id", "as_of", integrations_active=now, integrations_change_90d=now - before)


def integration_name(integration: ibis.StringValue) -> ibis.StringValue:
    """Return the name that two rows of one integration share: `Slack` and `slack ` are one integration."""
    return integration.strip().lower()


def integrations_series(context: SignalContext) -> ibis.Table | None:
    """`integrations_signal` at every (account_id, as_of) of the context, from running sums (the daily
    backfill's path).

    A version that is the latest at as_of (`_available_at < known_until(as_of) <= _valid_until`, so
    as_of lies between the two shifted back by the knowledge lag) counts as active
    while `connected_at < as_of <= disconnected_at`, and as active a window earlier while
    `connected_at + window < as_of <= disconnected_at + window`. The intervals of as_of of one
    integration name are merged first, so that overlapping connections count once, and each merged
    interval is a +1 at its start and a -1 at its end.
    """
    if not context.configured("integrations"):
        return None
    window = ibis.interval(days=context.settings.integrations_change_days)
    rows = context.versions("integrations")
    rows = rows.filter(rows.connected_at.notnull())

    # Availability instants are shifted back by the knowledge lag; event times are not.
    known_from = context.known_from(rows._available_at)
    known_to = context.known_from(rows._valid_until)

    def intervals(start: ibis.TimestampValue, end: ibis.TimestampValue, now: bool) -> ibis.Table:
        start = ibis.greatest(known_from, start).cast("timestamp")
        end = ibis.least(known_to, end).cast("timestamp")
        return rows.filter(end > start).select(
            "account_id",
            "_available_at",
            "_load_id",
            "_row_number",
            "_source",
            _name=integration_name(rows.integration),
            _now=ibis.literal(now),
            _start=start,
            _end=end,
        )

    spans = _merged(
        intervals(rows.connected_at, rows.disconnected_at.fill_null(NEVER), True).union(
            intervals(rows.connected_at + window, (rows.disconnected_at + window).fill_null(NEVER), False)
        )
    )
    now_step = spans._now.cast("int64")
    before_step = 1 - now_step
    changes = spans.select("account_id", _at=spans._start, _now=now_step, _before=before_step).union(
        spans.select("account_id", _at=spans._end, _now=-now_step, _before=-before_step)
    )
    sums = context.at_instants(changes, ["_now", "_before"])
    now_count = sums._now.cast("float64")
    return sums.select(
        "account_id",
        "as_of",
        integrations_active=now_count,
        integrations_change_90d=now_count - sums._before.cast("float64"),
    )


def _merged(intervals: ibis.Table) -> ibis.Table:
    """Merge the intervals (`_start`, `_end`] of each (account_id, `_name`, `_now`) that overlap or touch.

    In start order, an interval opens a new merged one when it starts after every interval before it
    has ended. The version columns make the order total, so both engines number the merged intervals
    alike.
    """
    group = ["account_id", "_name", "_now"]
    order = ["_start", "_end", "_available_at", "_load_id", "_row_number", "_source"]
    before = ibis.window(group_by=group, order_by=order, rows=(None, -1))
    so_far = ibis.window(group_by=group, order_by=order, rows=(None, 0))
    reach = intervals._end.max().over(before)
    opens = ibis.ifelse(reach.isnull() | (intervals._start > reach), 1, 0)
    numbered = intervals.mutate(_opens=opens)
    numbered = numbered.mutate(_span=numbered._opens.sum().over(so_far))
    return numbered.group_by([*group, "_span"]).aggregate(_start=_._start.min(), _end=_._end.max())
