"""Integration depth: integrations active at the as-of instant, and the change over a window."""

from __future__ import annotations

import ibis

from account_health.signals.context import SignalContext


def integrations_signal(context: SignalContext) -> ibis.Table | None:
    """Return (account_id, as_of, integrations_active, integrations_change_90d).

    Both counts use what was known at as_of, so a disconnection recorded later does not reach back.
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
