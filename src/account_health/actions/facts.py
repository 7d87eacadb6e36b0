"""Account facts the playbook needs, read point-in-time from the analytical store through Ibis.

Every read uses the latest row version available strictly before the as-of instant's knowledge
cut-off (as-of plus `[signals] knowledge_lag_hours`), like the signals, so re-running a date after
later loads gives the same facts. Activity windows end at the as-of instant itself.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import ibis
import pandas as pd
from ibis import _

from account_health.config import Workspace
from account_health.signals.champion import champion_contacts
from account_health.signals.context import SignalContext, build_context, table_fed
from account_health.store.analytical import AnalyticalStore

# Contact changes after which a contact cannot be a replacement champion.
_DEPARTURE_CHANGES = ("left_company", "email_bounced")
CANDIDATE_COLUMNS = [
    "account_id",
    "contact_id",
    "email",
    "title",
    "product_events",
    "active_days",
    "emails",
    "meetings",
]


def account_facts(workspace: Workspace, store: AnalyticalStore, as_of: datetime) -> pd.DataFrame:
    """Return each account's name, owner, ARR, supplied pLTV and active contract as of `as_of`.

    Columns: account_id, name, owner, arr, pltv, contract_id, contract_start, renewal_date,
    term_months, contract_arr, locked. Contract columns are empty for accounts without an active
    contract. Of several active contracts the one renewing last counts (an open-ended one first).
    """
    context = _context(workspace, store, as_of)
    accounts = context.known_at("accounts").select("account_id", "name", "owner", "arr", "pltv")
    frame = store.ibis.execute(accounts)
    contracts = _active_contracts(context)
    if contracts is None:
        for column in (
            "contract_id",
            "contract_start",
            "renewal_date",
            "term_months",
            "contract_arr",
            "locked",
        ):
            frame[column] = None
        return frame
    return frame.merge(store.ibis.execute(contracts), on="account_id", how="left")


def _active_contracts(context: SignalContext) -> ibis.Table | None:
    if not context.configured("contracts"):
        return None
    contracts = context.known_at("contracts")
    active = contracts.filter(
        (contracts.start_at < contracts.as_of)
        & (contracts.end_at.isnull() | (contracts.end_at >= contracts.as_of))
    )
    last_renewing = ibis.window(
        group_by="account_id",
        order_by=[ibis.desc(active.end_at.isnull()), ibis.desc("end_at"), ibis.desc("contract_id")],
    )
    ranked = active.mutate(_rank=ibis.row_number().over(last_renewing)).filter(_._rank == 0)
    return ranked.select(
        "account_id",
        "contract_id",
        contract_start=_.start_at,
        renewal_date=_.end_at,
        term_months=_.term_months,
        contract_arr=_.arr,
        locked=_.locked,
    )


def contact_candidates(
    workspace: Workspace,
    store: AnalyticalStore,
    as_of: datetime,
    account_ids: list[str],
    window_days: int,
) -> pd.DataFrame:
    """Return the contacts of `account_ids` who could replace a departed champion, with their activity.

    A candidate is a contact known before `as_of`, not tagged champion, with no left_company or
    email_bounced change before `as_of`. Activity covers the `window_days` days before `as_of`. It is
    the product events and active days of the product user with the contact's email (usage_events
    joined to users by email). The contact_activity table, when a source feeds it, adds product
    events, emails and meetings. Columns: CANDIDATE_COLUMNS.
    """
    if not account_ids or not _fed(workspace, store, "contacts"):
        return pd.DataFrame(columns=CANDIDATE_COLUMNS)
    context = _context(workspace, store, as_of)
    contacts = context.known_at("contacts")
    contacts = contacts.filter(contacts.account_id.isin(account_ids) & ~contacts.is_champion.fill_null(False))
    if _fed(workspace, store, "contact_changes"):
        changes = context.known_at("contact_changes")
        departed = changes.filter(
            changes.change.isin(_DEPARTURE_CHANGES) & (changes.changed_at < changes.as_of)
        )
        contacts = contacts.anti_join(departed, "contact_id")
    frame = store.ibis.execute(contacts.select("account_id", "contact_id", "email", "title"))
    if frame.empty:
        return pd.DataFrame(columns=CANDIDATE_COLUMNS)

    start = as_of - timedelta(days=window_days)
    known = as_of + workspace.config.signals.knowledge_lag
    frame = frame.merge(
        _product_activity(workspace, store, frame, start, as_of, known), on="contact_id", how="left"
    )
    frame = frame.merge(
        _crm_activity(workspace, store, frame, start, as_of, known), on="contact_id", how="left"
    )
    for column in ("product_events", "active_days", "crm_product_events", "emails", "meetings"):
        if column not in frame.columns:
            frame[column] = 0.0
        frame[column] = pd.to_numeric(frame[column], errors="coerce").fillna(0.0).astype("float64")
    frame["product_events"] = frame["product_events"] + frame.pop("crm_product_events")
    return frame[CANDIDATE_COLUMNS]


def _product_activity(
    workspace: Workspace,
    store: AnalyticalStore,
    contacts: pd.DataFrame,
    start: datetime,
    end: datetime,
    known: datetime,
) -> pd.DataFrame:
    """Events in [start, end) and their distinct UTC days of the product users whose email matches a
    contact's, from rows available before `known`."""
    empty = pd.DataFrame(columns=["contact_id", "product_events", "active_days"])
    if not (_fed(workspace, store, "usage_events") and _fed(workspace, store, "users")):
        return empty
    with_email = contacts.dropna(subset=["email"])
    if with_email.empty:
        return empty
    emails = ibis.memtable(
        pd.DataFrame(
            {"contact_id": with_email["contact_id"], "email_key": with_email["email"].str.strip().str.lower()}
        )
    )
    users = store.table("users")
    users = users.filter(users._available_at < known)
    newest = ibis.window(group_by="user_id", order_by=[ibis.desc("_available_at"), ibis.desc("_load_id")])
    users = users.mutate(_rank=ibis.row_number().over(newest)).filter(_._rank == 0)
    users = users.select("user_id", email_key=users.email.strip().lower())
    events = store.table("usage_events")
    events = events.filter(
        (events._available_at < known) & (events.occurred_at >= start) & (events.occurred_at < end)
    )
    events = events.select("event_id", "user_id", "occurred_at").distinct(on="event_id", keep="first")
    matched = events.join(users, "user_id").join(emails, "email_key")
    activity = matched.group_by("contact_id").aggregate(
        product_events=_.event_id.count(), active_days=_.occurred_at.date().nunique()
    )
    return store.ibis.execute(activity)


def _crm_activity(
    workspace: Workspace,
    store: AnalyticalStore,
    contacts: pd.DataFrame,
    start: datetime,
    end: datetime,
    known: datetime,
) -> pd.DataFrame:
    """Emails, meetings and product events per contact from contact_activity on the days of [start,
    end), when it is fed, from rows available before `known`."""
    if not _fed(workspace, store, "contact_activity"):
        return pd.DataFrame(columns=["contact_id", "emails", "meetings", "crm_product_events"])
    ids = contacts["contact_id"].tolist()
    activity = store.table("contact_activity")
    activity = activity.filter(
        (activity._available_at < known)
        & (activity.day >= start.date())
        & (activity.day < end.date())
        & activity.contact_id.isin(ids)
    )
    newest = ibis.window(
        group_by=["contact_id", "day"], order_by=[ibis.desc("_available_at"), ibis.desc("_load_id")]
    )
    activity = activity.mutate(_rank=ibis.row_number().over(newest)).filter(_._rank == 0)
    totals = activity.group_by("contact_id").aggregate(
        emails=_.emails.fill_null(0).sum(),
        meetings=_.meetings.fill_null(0).sum(),
        crm_product_events=_.product_events.fill_null(0).sum(),
    )
    return store.ibis.execute(totals)


def champions_in_seat(workspace: Workspace, store: AnalyticalStore, as_of: datetime) -> dict[str, list[str]]:
    """Return the contact ids of each account's champions in seat on `as_of`, sorted.

    The same contacts the champion signal counts in `champions_in_seat`: tagged champion and without
    a left_company change before `as_of`. Accounts with no champion in seat are left out.
    """
    champions = champion_contacts(_context(workspace, store, as_of))
    if champions is None:
        return {}
    in_seat = champions.filter(champions.left_at.isnull()).select("account_id", "contact_id")
    frame = store.ibis.execute(in_seat)
    found: dict[str, list[str]] = {}
    for account_id, contact_id in zip(frame["account_id"], frame["contact_id"], strict=True):
        found.setdefault(str(account_id), []).append(str(contact_id))
    return {account_id: sorted(contacts) for account_id, contacts in found.items()}


def crm_ids(workspace: Workspace, store: AnalyticalStore, as_of: datetime) -> dict[str, str]:
    """Return each account's CRM record id as of `as_of`, for accounts that have one."""
    accounts = _context(workspace, store, as_of).known_at("accounts").select("account_id", "crm_id")
    frame = store.ibis.execute(accounts.filter(accounts.crm_id.notnull()))
    return dict(zip(frame["account_id"].astype(str), frame["crm_id"].astype(str), strict=True))


def _fed(workspace: Workspace, store: AnalyticalStore, table: str) -> bool:
    return table_fed(workspace, store, table)


def _context(workspace: Workspace, store: AnalyticalStore, as_of: datetime) -> SignalContext:
    snapshots = ibis.memtable(pd.DataFrame({"as_of": pd.to_datetime([as_of])}))
    return build_context(workspace, store, snapshots)


__all__ = ["CANDIDATE_COLUMNS", "account_facts", "champions_in_seat", "contact_candidates", "crm_ids"]
