"""Champion in seat: whether a contact tagged champion is still at the account, and since when not."""

from __future__ import annotations

import ibis
from ibis import _

from account_health.signals.context import SignalContext, days_between

LEFT_COMPANY = "left_company"
_ZERO = ibis.literal(0, "int64")
_ONE = ibis.literal(1, "int64")


def champion_signal(context: SignalContext) -> ibis.Table | None:
    """Return (account_id, as_of, champion_in_seat, days_since_champion_departure, champions_in_seat).

    Missing for an account where no version known at as_of ever tagged a contact champion there. An account
    whose champions all lost the tag or moved away has none in seat. Days since the latest departure
    are capped at `champion_departure_cap_days`, which is also the value when no champion ever left.
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
    # A version that a later one replaced at the same instant (two versions of a backfill) was never
    # the current one, so its champion tag does not count.
    contacts = context.versions("contacts")
    tags = contacts.filter(
        contacts.is_champion.fill_null(False) & (contacts._valid_until > contacts._available_at)
    )
    first_tags = tags.group_by("account_id").aggregate(_first_tagged=tags._available_at.min())
    result = (
        context.accounts.select("account_id", "as_of")
        .left_join(per_account, ["account_id", "as_of"])
        .left_join(first_tags, "account_id")
    )
    ever_tagged = result._first_tagged.notnull() & (result._first_tagged < context.known_until(result.as_of))
    tagged = (result.champions_tagged.fill_null(0) > 0) | ever_tagged
    in_seat = result.champions_in_seat.fill_null(0)
    since = days_between(result.as_of, result.last_departure)
    since = ibis.ifelse(result.last_departure.isnull(), cap, ibis.least(since, cap))
    return result.select(
        "account_id",
        "as_of",
        champion_in_seat=ibis.ifelse(tagged, (in_seat > 0).cast("float64"), ibis.null("float64")),
        days_since_champion_departure=ibis.ifelse(tagged, since, ibis.null("float64")),
        champions_in_seat=ibis.ifelse(tagged, in_seat, ibis.null("int64")),
    )


def champion_contacts(context: SignalContext) -> ibis.Table | None:
    """Return (contact_id, account_id, as_of, left_at): the champions of each account before as_of.

    A contact counts at an account when its version known at as_of tags it champion there, or when it
    was the account's champion when it left (see `departures`). `left_at` is the latest left_company
    change before as_of that belongs to that account, or null for a champion still in seat. So a
    champion whom the CRM moves to a new employer after a departure counts as departed at the old
    account and in seat at the new one. None when no source feeds the contacts table. The nightly run
    stores the champions in seat from this same table, so a re-score after a job change starts from
    the list the signal counted.
    """
    if not context.configured("contacts"):
        return None
    contacts = context.known_at("contacts")
    champions = contacts.filter(contacts.is_champion.fill_null(False)).select(
        "contact_id", "account_id", "as_of"
    )
    if not context.configured("contact_changes"):
        return champions.mutate(left_at=ibis.null("timestamp"))

    seated = champions.select(
        "contact_id",
        "account_id",
        "as_of",
        _tagged_now=_ONE,
        _tagged_when_left=_ZERO,
        left_at=ibis.null("timestamp"),
    )
    left = departures(context)
    departed = left.select(
        "contact_id",
        "account_id",
        "as_of",
        _tagged_now=_ZERO,
        _tagged_when_left=ibis.ifelse(left.is_champion.fill_null(False), _ONE, _ZERO),
        left_at=left.changed_at.cast("timestamp"),
    )
    rows = (
        seated.union(departed)
        .group_by(["contact_id", "account_id", "as_of"])
        .aggregate(
            tagged_now=_._tagged_now.max(),
            tagged_when_left=_._tagged_when_left.max(),
            left_at=_.left_at.max(),
        )
    )
    # A departure counts only where the contact was tagged champion when leaving or is tagged now.
    rows = rows.filter((rows.tagged_now == 1) | (rows.tagged_when_left == 1))
    return rows.select("contact_id", "account_id", "as_of", "left_at")


def departures(context: SignalContext) -> ibis.Table:
    """Return (contact_id, as_of, changed_at, account_id, is_champion) for each left_company change
    known at as_of and before it, with the account and champion tag of the contact's version when it left.

    That version is the latest one available strictly before changed_at, so it is known at as_of too
    (changed_at lies before as_of, and so before its knowledge cut-off) and later versions (the CRM moving the contact to a new employer) do not change it. Versions
    that a backfill makes available at the same instant are ordered by load, except that a version
    stored by the load that stored the change comes before one stored later: the change was recorded
    against it. A contact with no version before changed_at left the account of its earliest version
    known at as_of.
    """
    changes = context.known_at("contact_changes")
    left = changes.filter((changes.change == LEFT_COMPANY) & (changes.changed_at < changes.as_of)).select(
        "contact_id", "changed_at", "as_of", _change_load=changes._load_id
    )
    by_contact = ibis.window(
        group_by="contact_id", order_by=["_available_at", "_load_id", "_row_number", "_source"]
    )
    by_availability = ibis.window(group_by="contact_id", order_by="_available_at")
    stored = context.store.table("contacts")
    versions = stored.select(
        "contact_id",
        "account_id",
        "is_champion",
        "_available_at",
        "_load_id",
        _version=ibis.row_number().over(by_contact),
        _moment=ibis.dense_rank().over(by_availability),
    )
    joined = left.join(
        versions,
        [left.contact_id == versions.contact_id, versions._available_at < context.known_until(left.as_of)],
    )
    before = joined._available_at < joined.changed_at
    # Latest first among versions before the change, earliest first among the others.
    direction = ibis.ifelse(before, _ONE, -_ONE)
    preference = ibis.window(
        group_by=[joined.contact_id, joined.changed_at, joined.as_of],
        order_by=[
            ibis.desc(ibis.ifelse(before, _ONE, _ZERO)),
            ibis.desc(joined._moment * direction),
            ibis.desc(ibis.ifelse(joined._load_id <= joined._change_load, _ONE, _ZERO)),
            ibis.desc(joined._version * direction),
        ],
    )
    ranked = joined.mutate(_rank=ibis.row_number().over(preference))
    chosen = ranked.filter(ranked._rank == 0)
    return chosen.select(
        chosen.contact_id, chosen.as_of, chosen.changed_at, chosen.account_id, chosen.is_champion
    )
