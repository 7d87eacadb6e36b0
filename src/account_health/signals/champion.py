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
    if not context.configured("contacts"):
        return None
    cap = float(context.settings.champion_departure_cap_days)
    contacts = context.known_at("contacts")
    champions = contacts.filter(contacts.is_champion.fill_null(False)).select(
        "contact_id", "account_id", "as_of"
    )

    if context.configured("contact_changes"):
        changes = context.known_at("contact_changes")
        departures = (
            changes.filter((changes.change == LEFT_COMPANY) & (changes.changed_at < changes.as_of))
            .group_by(["contact_id", "as_of"])
            .aggregate(left_at=_.changed_at.max())
        )
        champions = champions.left_join(departures, ["contact_id", "as_of"]).select(
            "contact_id", "account_id", "as_of", "left_at"
        )
    else:
        champions = champions.mutate(left_at=ibis.null("timestamp"))

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
