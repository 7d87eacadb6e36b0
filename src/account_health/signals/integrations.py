"""Integration depth: integrations active at the as-of instant, and the change over a window."""

from __future__ import annotations

import ibis

from account_health.signals.context import NEVER, SignalContext


def integrations_signal(context: SignalContext) -> ibis.Table | None:
    """Return (account_id, as_of, integrations_active, integrations_change_90d).

    Both counts use what was known at the knowledge cut-off of as_of, so a disconnection recorded
    later does not reach back. Connections and disconnections count only when they occurred before
    as_of (or before as_of minus the window).
    """
    if not context.configured("integrations"):
        return None
    window = ibis.interval(days=context.settings.integrations_change_days)
    rows = context.known_at("integrations")

    def active_at(instant: ibis.TimestampValue) -> ibis.BooleanValue:
        return (rows.connected_at < instant) & (
            rows.disconnected_at.isnull() | (rows.disconnected_at >= instant)
        )

    counts = rows.group_by(["account_id", "as_of"]).aggregate(
        now=active_at(rows.as_of).sum(),
        before=active_at(rows.as_of - window).sum(),
    )
    result = context.accounts.select("account_id", "as_of").left_join(counts, ["account_id", "as_of"])
    now = result.now.fill_null(0).cast("float64")
    before = result.before.fill_null(0).cast("float64")
    return result.select("account_id", "as_of", integrations_active=now, integrations_change_90d=now - before)


def integrations_series(context: SignalContext) -> ibis.Table | None:
    """`integrations_signal` at every (account_id, as_of) of the context, from running sums (the daily
    backfill's path).

    A version that is the latest at as_of (`_available_at < known_until(as_of) <= _valid_until`, so
    as_of lies between the two shifted back by the knowledge lag) counts as active
    while `connected_at < as_of <= disconnected_at`, and as active a window earlier while
    `connected_at + window < as_of <= disconnected_at + window`: two intervals of as_of, each a +1 at
    its start and a -1 at its end.
    """
    if not context.configured("integrations"):
        return None
    window = ibis.interval(days=context.settings.integrations_change_days)
    rows = context.versions("integrations")
    rows = rows.filter(rows.connected_at.notnull())
    zero = ibis.literal(0, "int64")
    one = ibis.literal(1, "int64")

    # Availability instants are shifted back by the knowledge lag; event times are not.
    known_from = context.known_from(rows._available_at)
    known_to = context.known_from(rows._valid_until)

    def interval(start: ibis.TimestampValue, end: ibis.TimestampValue, now: bool) -> ibis.Table:
        start = ibis.greatest(known_from, start)
        end = ibis.least(known_to, end)
        counted = rows.filter(end > start)
        opened = counted.select(
            "account_id", _at=start.cast("timestamp"), _now=one if now else zero, _before=zero if now else one
        )
        closed = counted.select(
            "account_id", _at=end.cast("timestamp"), _now=-one if now else zero, _before=zero if now else -one
        )
        return opened.union(closed)

    changes = interval(rows.connected_at, rows.disconnected_at.fill_null(NEVER), True).union(
        interval(rows.connected_at + window, (rows.disconnected_at + window).fill_null(NEVER), False)
    )
    sums = context.at_instants(changes, ["_now", "_before"])
    now = sums._now.cast("float64")
    return sums.select(
        "account_id",
        "as_of",
        integrations_active=now,
        integrations_change_90d=now - sums._before.cast("float64"),
    )
