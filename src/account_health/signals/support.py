"""Support load: tickets created in the window before the as-of instant, weighted by severity."""

from __future__ import annotations

import ibis

from account_health.errors import ConfigError
from account_health.signals.context import NEVER, SignalContext
from account_health.sources.canonical import PRIORITIES

CLOSED_STATUSES = ("solved", "closed")
# Statuses of a ticket that is still being worked on (Zendesk's new, open, pending and hold, Intercom's
# open and snoozed). A ticket in one of them is open whatever its solved_at, because Intercom's
# statistics.last_close_at and Zendesk's metric set keep the date of an earlier solve after a reopen.
OPEN_STATUSES = ("new", "open", "pending", "hold", "snoozed", "reopened")
DELETED_STATUS = "deleted"


def support_signal(context: SignalContext, active_users: ibis.Table | None) -> ibis.Table | None:
    """Return (account_id, as_of, support_load, support_tickets, support_open_backlog).

    Each ticket created before as_of counts once, in its latest version available before the
    knowledge cut-off (`SignalContext.known_until`); deleted tickets do not count. A ticket is in the
    open backlog unless that version is closed at as_of: solved_at lies before as_of and the status
    is not one of OPEN_STATUSES, or the status is solved or closed without a solved_at. With `support_normalisation = "per_active_user"` the load is divided by the account's
    distinct active users over the usage window (at least one).
    """
    if not context.configured("tickets"):
        return None
    settings = context.settings
    tickets = context.known_at("tickets")
    status = tickets.status.lower().fill_null("")
    tickets = tickets.filter((status != DELETED_STATUS) & (tickets.created_at < tickets.as_of))

    weights, default_weight = _weights(settings.severity_weights)
    weight = tickets.priority.cases(*weights.items(), else_=default_weight).cast("float64")
    recent = tickets.created_at >= tickets.as_of - ibis.interval(days=settings.support_window_days)
    solved_before = tickets.solved_at.notnull() & (tickets.solved_at < tickets.as_of)
    closed_without_date = tickets.solved_at.isnull() & status.isin(CLOSED_STATUSES)
    still_open = status.isin(OPEN_STATUSES) | ~(solved_before | closed_without_date)

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


def support_series(context: SignalContext) -> ibis.Table | None:
    """`support_signal` with absolute normalisation at every (account_id, as_of) of the context, from
    running sums instead of joining each ticket version to every instant (the daily backfill's path).

    A ticket version counts at the instants where it is the latest version (`_available_at <
    known_until(as_of) <= _valid_until`, so as_of lies between the two shifted back by the knowledge
    lag) and was created before as_of; it is recent while `as_of <= created_at + window` and open while
    `as_of <= solved_at`, or for as long as it is the latest version when its status is one of
    OPEN_STATUSES. Each of those is an interval of as_of, so it adds +1 at its start
    and -1 at its end. The load is a sum over the severity weights of weight times the number of
    recent tickets with that weight, counted in integers so an empty window gives exactly zero.
    """
    if not context.configured("tickets"):
        return None
    settings = context.settings
    if settings.support_normalisation != "absolute":
        raise ConfigError("support_series computes the absolute support load only")
    rows = context.versions("tickets")
    status = rows.status.lower().fill_null("")
    rows = rows.filter((status != DELETED_STATUS) & rows.created_at.notnull())

    weights, default_weight = _weights(settings.severity_weights)
    weight = rows.priority.cases(*weights.items(), else_=default_weight).cast("float64")
    levels = sorted({*weights.values(), default_weight})
    counted = {f"_weight_{number}": weight == level for number, level in enumerate(levels)}

    # Availability instants are shifted back by the knowledge lag; event times are not.
    known_from = context.known_from(rows._available_at)
    known_to = context.known_from(rows._valid_until)
    start = ibis.greatest(known_from, rows.created_at)
    recent_end = ibis.least(known_to, rows.created_at + ibis.interval(days=settings.support_window_days))
    closed_without_date = rows.solved_at.isnull() & status.isin(CLOSED_STATUSES)
    solved_end = ibis.ifelse(status.isin(OPEN_STATUSES), NEVER, rows.solved_at.fill_null(NEVER))
    open_end = ibis.least(known_to, solved_end)

    zero = ibis.literal(0, "int64")
    one = ibis.literal(1, "int64")

    def change(
        at: ibis.TimestampValue, sign: int, recent: bool, backlog: bool, keep: ibis.BooleanValue
    ) -> ibis.Table:
        picked = rows.filter(keep)
        values = {
            name: ibis.ifelse(test, sign * one, zero) if recent else zero for name, test in counted.items()
        }
        return picked.select(
            "account_id", _at=at.cast("timestamp"), **values, _backlog=sign * one if backlog else zero
        )

    recent = recent_end > start
    still_open = (open_end > start) & ~closed_without_date
    changes = (
        change(start, 1, True, False, recent)
        .union(change(recent_end, -1, True, False, recent))
        .union(change(start, 1, False, True, still_open))
        .union(change(open_end, -1, False, True, still_open))
    )
    sums = context.at_instants(changes, [*counted, "_backlog"])
    load = sum(
        (sums[name].cast("float64") * level for name, level in zip(counted, levels, strict=True)),
        ibis.literal(0.0),
    )
    tickets = sum((sums[name] for name in counted), zero)
    return sums.select(
        "account_id",
        "as_of",
        support_load=load,
        support_tickets=tickets,
        support_open_backlog=sums._backlog,
    )


def _weights(configured: dict[str, float]) -> tuple[dict[str, float], float]:
    """Return the weight of each priority and of a ticket without one: a priority left out of
    `configured` weighs as normal, and normal as 1.0 when it is left out too."""
    default = configured.get("normal", 1.0)
    return {priority: configured.get(priority, default) for priority in PRIORITIES}, default
