"""Accounts, their people and their latent health: everything the activity streams are drawn from."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

SEGMENTS = ("SMB", "Mid-Market", "Enterprise")
SEGMENT_SHARES = (0.55, 0.30, 0.15)
# Median ARR in USD per segment; each account's ARR is log-normal around it.
SEGMENT_MEDIAN_ARR = (14_000.0, 60_000.0, 240_000.0)
# Inclusive range of customer users per account, per segment.
SEGMENT_USERS = ((2, 6), (4, 12), (8, 22))
TIMEZONES = (
    ("UTC", 0.10),
    ("America/New_York", 0.28),
    ("America/Los_Angeles", 0.18),
    ("Europe/Berlin", 0.22),
    ("Asia/Tokyo", 0.10),
    ("Australia/Sydney", 0.12),
)
CSM_OWNERS = (
    "Amara Okafor", "Ben Hartley", "Chen Wei", "Dana Kowalski", "Elif Yilmaz", "Felipe Rocha",
    "Grace Lindqvist", "Hiro Tanaka", "Ines Moreau", "Jonah Reyes", "Kavya Iyer", "Liam Byrne",
)  # fmt: skip
NAME_PREFIXES = (
    "Northwind", "Bluefin", "Cedar", "Summit", "Harbor", "Ironwood", "Lumen", "Maple", "Orbit",
    "Pioneer", "Quartz", "Redline", "Silverleaf", "Tidewater", "Umber", "Vantage", "Willow", "Zenith",
    "Copperfield", "Granite", "Kestrel", "Meridian", "Nimbus", "Oakridge",
)  # fmt: skip
NAME_SUFFIXES = (
    "Logistics", "Analytics", "Health", "Foods", "Robotics", "Capital", "Media", "Energy", "Labs",
    "Outfitters", "Systems", "Freight", "Studios", "Dental", "Insurance", "Retail", "Software",
)  # fmt: skip
# The SaaS vendor whose customers these accounts are: its staff use this email domain.
STAFF_EMAIL_DOMAIN = "tallyfield.example"
# Integration vendors whose service users act inside customer workspaces.
SERVICE_EMAIL_DOMAIN = "connect-relay.example"

# Weekly AR(1) latent health: persistence per week and innovation sd; account levels spread by LEVEL_SD.
HEALTH_PERSISTENCE = 0.93
HEALTH_INNOVATION_SD = 0.22
HEALTH_LEVEL_SD = 0.75


@dataclass
class Population:
    """Accounts, users, contacts and the daily latent health of each account.

    `health[i, d]` is account i's latent health on local day `days[d]`; higher is healthier, 0 is typical.
    """

    accounts: pd.DataFrame
    users: pd.DataFrame
    contacts: pd.DataFrame
    days: pd.DatetimeIndex
    health: np.ndarray


def build_population(rng: np.random.Generator, count: int, days: pd.DatetimeIndex) -> Population:
    """Draw `count` accounts with their users, contacts and a latent health path over `days`."""
    accounts = _draw_accounts(rng, count)
    health = _draw_health(rng, count, len(days))
    users = _draw_users(rng, accounts)
    contacts = _draw_contacts(rng, accounts)
    return Population(accounts, users, contacts, days, health)


def _draw_accounts(rng: np.random.Generator, count: int) -> pd.DataFrame:
    segment = rng.choice(len(SEGMENTS), size=count, p=SEGMENT_SHARES)
    arr = np.asarray(SEGMENT_MEDIAN_ARR)[segment] * rng.lognormal(0.0, 0.45, size=count)
    zones = [zone for zone, _ in TIMEZONES]
    zone_index = rng.choice(len(zones), size=count, p=[share for _, share in TIMEZONES])
    prefix = rng.integers(0, len(NAME_PREFIXES), size=count)
    suffix = rng.integers(0, len(NAME_SUFFIXES), size=count)
    ids = [f"acct-{i + 1:05d}" for i in range(count)]
    names = [
        f"{NAME_PREFIXES[p]} {NAME_SUFFIXES[s]} {i + 1}"
        for i, (p, s) in enumerate(zip(prefix, suffix, strict=True))
    ]
    return pd.DataFrame(
        {
            "account_id": ids,
            "name": names,
            "arr": np.round(arr, -2),
            "currency": "USD",
            "segment": np.asarray(SEGMENTS)[segment],
            "segment_index": segment,
            "owner": np.asarray(CSM_OWNERS)[rng.integers(0, len(CSM_OWNERS), size=count)],
            "timezone": np.asarray(zones)[zone_index],
            "domain": [_domain(name) for name in names],
        }
    )


def _domain(name: str) -> str:
    return "-".join(name.lower().split()) + ".example"


def _draw_health(rng: np.random.Generator, count: int, day_count: int) -> np.ndarray:
    """Weekly AR(1) around a per-account level, linearly interpolated to days so usage drifts smoothly."""
    weeks = day_count // 7 + 2
    level = rng.normal(0.0, HEALTH_LEVEL_SD, size=count)
    stationary_sd = HEALTH_INNOVATION_SD / np.sqrt(1.0 - HEALTH_PERSISTENCE**2)
    weekly = np.empty((count, weeks))
    weekly[:, 0] = level + rng.normal(0.0, stationary_sd, size=count)
    shocks = rng.normal(0.0, HEALTH_INNOVATION_SD, size=(count, weeks))
    for week in range(1, weeks):
        weekly[:, week] = level + HEALTH_PERSISTENCE * (weekly[:, week - 1] - level) + shocks[:, week]

    position = np.arange(day_count) / 7.0
    lower = np.floor(position).astype(int)
    fraction = position - lower
    return weekly[:, lower] * (1.0 - fraction) + weekly[:, lower + 1] * fraction


def _draw_users(rng: np.random.Generator, accounts: pd.DataFrame) -> pd.DataFrame:
    """Customer users, plus vendor staff, bots and integration service users in some accounts.

    `kind` is customer, staff, bot or service; `propensity` is the user's base log-odds of being
    active on a weekday when the account's health is 0.
    """
    frames = []
    segment_users = np.asarray(SEGMENT_USERS)
    low = segment_users[accounts["segment_index"], 0]
    high = segment_users[accounts["segment_index"], 1]
    customer_count = rng.integers(low, high + 1)
    account_index = np.repeat(np.arange(len(accounts)), customer_count)
    frames.append(
        pd.DataFrame(
            {
                "account_index": account_index,
                "kind": "customer",
                "propensity": rng.normal(-1.65, 0.8, size=len(account_index)),
            }
        )
    )
    for kind, share in (("staff", 0.35), ("bot", 0.12), ("service", 0.15)):
        chosen = np.flatnonzero(rng.random(len(accounts)) < share)
        frames.append(pd.DataFrame({"account_index": chosen, "kind": kind, "propensity": 0.0}))
    users = pd.concat(frames, ignore_index=True).sort_values(["account_index", "kind"], kind="stable")
    users = users.reset_index(drop=True)

    sequence = users.groupby("account_index").cumcount().to_numpy() + 1
    account_ids = accounts["account_id"].to_numpy()[users["account_index"]]
    domains = accounts["domain"].to_numpy()[users["account_index"]]
    number = [f"{a.removeprefix('acct-')}-{s:02d}" for a, s in zip(account_ids, sequence, strict=True)]
    kind = users["kind"].to_numpy()
    users["account_id"] = account_ids
    users["user_id"] = [("bot-" if k == "bot" else "u-") + n for k, n in zip(kind, number, strict=True)]
    users["email"] = [_user_email(k, n, d) for k, n, d in zip(kind, number, domains, strict=True)]
    users["is_internal"] = kind == "staff"
    return users


def _user_email(kind: str, number: str, domain: str) -> str | None:
    if kind == "staff":
        return f"csm-{number}@{STAFF_EMAIL_DOMAIN}"
    if kind == "service":
        return f"sync-{number}@{SERVICE_EMAIL_DOMAIN}"
    if kind == "bot":
        return None
    return f"user-{number}@{domain}"


CHAMPION_TITLES = ("VP Operations", "Director of Customer Success", "Head of Analytics", "Operations Manager")
OTHER_TITLES = (
    "Analyst",
    "Account Manager",
    "Finance Lead",
    "IT Administrator",
    "Project Manager",
    "Engineer",
)


def _draw_contacts(rng: np.random.Generator, accounts: pd.DataFrame) -> pd.DataFrame:
    """CRM contacts; about 15 % of accounts never have a champion tagged, the rest one or two."""
    count = len(accounts)
    champions = rng.choice([0, 1, 2], size=count, p=[0.15, 0.60, 0.25])
    others = rng.integers(1, 5, size=count)
    rows = []
    for i in range(count):
        account_id = accounts["account_id"].iat[i]
        domain = accounts["domain"].iat[i]
        for j in range(champions[i] + others[i]):
            is_champion = j < champions[i]
            titles = CHAMPION_TITLES if is_champion else OTHER_TITLES
            rows.append(
                {
                    "account_index": i,
                    "contact_id": f"c-{account_id.removeprefix('acct-')}-{j + 1:02d}",
                    "account_id": account_id,
                    "email": f"contact{j + 1}@{domain}",
                    "title": titles[int(rng.integers(0, len(titles)))],
                    "is_champion": is_champion,
                }
            )
    return pd.DataFrame(rows)
