"""Support load: tickets created in the window before the as-of instant, weighted by severity."""

from __future__ import annotations

import ibis

from account_health.errors import ConfigError
from account_health.signals.context import SignalContext

CLOSED_STATUSES = ("solved", "closed")
DELETED_STATUS = "deleted"


def support_signal(context: SignalContext, active_users: ibis.Table | None) -> ibis.Table | None:
    """Return (account_id, as_of, support_load, support_tickets, support_open_backlog).

    Each ticket counts once, in its latest version available before as_of; deleted tickets do not
    count. With `support_normalisation = "per_active_user"` the load is divided by the account's
    distinct active users over the usage window (at least one).
    """
    if not context.configured("tickets"):
        return None
    settings = context.settings
    tickets = context.known_at("tickets")
    status = tickets.status.lower().fill_null("")
    tickets = tickets.filter((status != DELETED_STATUS) & (tickets.created_at < tickets.as_of))

    weights = settings.severity_weights
    default_weight = weights.get("normal", 1.0)
    weight = tickets.priority.cases(*weights.items(), else_=default_weight).cast("float64")
    recent = tickets.created_at >= tickets.as_of - ibis.interval(days=settings.support_window_days)
    solved_before = tickets.solved_at.notnull() & (tickets.solved_at < tickets.as_of)
    closed_without_date = tickets.solved_at.isnull() & status.isin(CLOSED_STATUSES)
    still_open = ~(solved_before | closed_without_date)

    load = tickets.group_by(["account_id", "as_of"]).aggregate(
        weighted=weight.sum(where=recent),
        support_tickets=recent.sum(),
        support_open_backlog=still_open.sum(),
    )
    result = context.accounts.select("account_id", "as_of").left_join(load, ["account_id", "as_of"])
    weighted = result.weighted.fill_null(0.0)
    if settings.support_normalisation == "per_active_user":
        if active_users is None:
            raise ConfigError(
                "signals.support_normalisation = 'per_active_user' needs an event-level usage source "
                "(usage_events); set it to 'absolute' or configure usage"
            )
        result = result.left_join(active_users, ["account_id", "as_of"])
        weighted = weighted / ibis.greatest(result.active_users.fill_null(0), 1).cast("float64")
    return result.select(
        "account_id",
        "as_of",
        support_load=weighted,
        support_tickets=result.support_tickets.fill_null(0),
        support_open_backlog=result.support_open_backlog.fill_null(0),
    )
