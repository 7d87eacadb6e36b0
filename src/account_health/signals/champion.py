"""Champion in seat: whether a contact tagged champion is still at the account, and since when not."""

from __future__ import annotations

import ibis
from ibis import _

from account_health.signals.context import SignalContext, days_between

LEFT_COMPANY = "left_company"


def champion_signal(context: SignalContext) -> ibis.Table | None:
    """Return (account_id, as_of, champion_in_seat, days_since_champion_departure, champions_in_seat).

    Missing for an account with no champion tagged before as_of. Days since the latest departure are
    capped at `champion_departure_cap_days`, which is also the value when no champion ever left.
    """
    champions = champion_contacts(context)
    if champions is None:
        return None
    cap = float(context.settings.champion_departure_cap_days)
    per_account = champions.group_by(["account_id", "as_of"]).aggregate(
        champions_in_seat=champions.left_at.isnull().sum(),
        last_departure=champions.left_at.max(),
        champions_tagged=champions.contact_id.count(),
    )
    result = context.accounts.select("account_id", "as_of").left_join(per_account, ["account_id", "as_of"])
    tagged = result.champions_tagged.fill_null(0) > 0
    since = days_between(result.as_of, result.last_departure)
    since = ibis.ifelse(result.last_departure.isnull(), cap, ibis.least(since, cap))
    return result.select(
        "account_id",
        "as_of",
        champion_in_seat=ibis.ifelse(
            tagged, (result.champions_in_seat > 0).cast("float64"), ibis.null("float64")
        ),
        days_since_champion_departure=ibis.ifelse(tagged, since, ibis.null("float64")),
        champions_in_seat=ibis.ifelse(tagged, result.champions_in_seat, ibis.null("int64")),
    )


def champion_contacts(context: SignalContext) -> ibis.Table | None:
    """Return (contact_id, account_id, as_of, left_at): each contact tagged champion before as_of.

    `left_at` is the latest left_company change before as_of, or null for a champion still in seat.
    None when no source feeds the contacts table. The nightly run stores the champions in seat from
    this same table, so a re-score after a job change starts from the list the signal counted.
    """
    if not context.configured("contacts"):
        return None
    contacts = context.known_at("contacts")
    champions = contacts.filter(contacts.is_champion.fill_null(False)).select(
        "contact_id", "account_id", "as_of"
    )
    if not context.configured("contact_changes"):
        return champions.mutate(left_at=ibis.null("timestamp"))
    changes = context.known_at("contact_changes")
    departures = (
        changes.filter((changes.change == LEFT_COMPANY) & (changes.changed_at < changes.as_of))
        .group_by(["contact_id", "as_of"])
        .aggregate(left_at=_.changed_at.max())
    )
    return champions.left_join(departures, ["contact_id", "as_of"]).select(
        "contact_id", "account_id", "as_of", "left_at"
    )
