"""Raw activity streams drawn from the latent health: usage, tickets, sentiment, integrations, job changes.

Each stream is drawn for the whole span up front, with the account's event instants in UTC
nanoseconds in column `at`. Whether an account is a customer at that instant is decided later, period
by period as churn is drawn, because health does not depend on churn but activity stops at it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import expit

from account_health.synthetic.calendar import NS_PER_DAY, Calendar, local_to_utc_ns
from account_health.synthetic.population import Population

NS_PER_HOUR = 3_600 * 10**9
NS_PER_MINUTE = 60 * 10**9
NS_PER_WEEK = 7 * NS_PER_DAY
# Placeholder for a missing instant (an unsolved ticket's solved_at); the writers turn it into an empty cell.
MISSING = np.iinfo(np.int64).min

USAGE_EVENTS = (
    "dashboard.viewed", "report.run", "record.created", "record.updated", "search.performed",
    "export.downloaded", "comment.added", "workflow.triggered",
)  # fmt: skip
USAGE_EVENT_WEIGHTS = (0.24, 0.14, 0.16, 0.16, 0.12, 0.05, 0.08, 0.05)
# Log-odds effects on a customer user being active on a local day.
USAGE_HEALTH_EFFECT = 1.1
USAGE_WEEKEND_EFFECT = -1.8
# Extra events per active user-day beyond the first (Poisson mean).
EXTRA_EVENTS_PER_ACTIVE_DAY = 0.4
DUPLICATE_SHARE = 0.01
LATE_SHARE = 0.02
LATE_DELAY_DAYS = (1.0, 12.0)
SYNC_DELAY_MINUTES = (1.0, 45.0)
USERS_PER_BLOCK = 4000

# Tickets per account per day at health 0, per segment. The rate is multiplied by exp(-0.9 * health).
TICKET_RATE_PER_DAY = (0.012, 0.025, 0.05)
TICKET_HEALTH_EFFECT = -0.9
PRIORITIES = ("urgent", "high", "normal", "low")
# Median hours to solve, per priority.
SOLVE_MEDIAN_HOURS = (5.0, 20.0, 48.0, 110.0)

NPS_RATE_PER_DAY = 1 / 45
NPS_DISMISSED_SHARE = 0.06
CALL_RATE_PER_DAY = 1 / 50

INTEGRATIONS = (
    "salesforce", "hubspot", "slack", "jira", "zendesk", "snowflake", "okta", "github", "google-drive",
    "microsoft-teams",
)  # fmt: skip
CONNECT_HAZARD_PER_WEEK = 0.0025
DISCONNECT_HAZARD_PER_WEEK = 0.005

CHAMPION_LEAVE_HAZARD_PER_WEEK = 0.0045
CONTACT_LEAVE_HAZARD_PER_WEEK = 0.003
TITLE_CHANGE_HAZARD_PER_WEEK = 0.0008


def draw_usage(rng: np.random.Generator, population: Population, calendar: Calendar) -> pd.DataFrame:
    """Usage events of every user, drawn per local day and converted to UTC.

    Returns account_index, user_index, at, synced_at and event (an index into USAGE_EVENTS), sorted by
    instant, with about 1 % of rows repeated and about 2 % synced days late.
    """
    users = population.users
    days = population.days
    weekend = days.day_of_week.to_numpy() >= 5
    day_start_ns = days.asi8

    user_days = []
    for user_kind in ("customer", "staff", "bot", "service"):
        chosen = np.flatnonzero(users["kind"].to_numpy() == user_kind)
        active = _active_days(rng, user_kind, chosen, users, population.health, weekend)
        user_days.append(active)
    user_index = np.concatenate([u for u, _ in user_days])
    day_index = np.concatenate([d for _, d in user_days])

    kind = users["kind"].to_numpy()[user_index]
    extra_mean = np.where(kind == "bot", 0.5, EXTRA_EVENTS_PER_ACTIVE_DAY)
    per_day = 1 + rng.poisson(extra_mean)
    user_index = np.repeat(user_index, per_day)
    day_index = np.repeat(day_index, per_day)
    kind = np.repeat(kind, per_day)
    account_index = users["account_index"].to_numpy()[user_index]

    around_the_clock = (kind == "bot") | (kind == "service")
    hours = np.where(around_the_clock, rng.uniform(0.0, 24.0, len(kind)), rng.normal(13.5, 2.7, len(kind)))
    offset_ns = (np.clip(hours, 0.0, 23.9997) * NS_PER_HOUR).astype(np.int64)
    local_ns = day_start_ns[day_index] + offset_ns
    at = _to_utc(local_ns, account_index, population.accounts["timezone"].to_numpy())

    inside = (at >= calendar.start_ns) & (at < calendar.end_ns)
    frame = pd.DataFrame(
        {
            "account_index": account_index[inside],
            "user_index": user_index[inside],
            "at": at[inside],
            "event": rng.choice(len(USAGE_EVENTS), size=int(inside.sum()), p=USAGE_EVENT_WEIGHTS),
        }
    )
    frame = frame.sort_values(["at", "user_index"], kind="stable").reset_index(drop=True)
    frame["event_number"] = np.arange(1, len(frame) + 1)
    frame["synced_at"] = _sync_instants(rng, frame["at"].to_numpy())
    return _with_duplicates(rng, frame)


def _active_days(
    rng: np.random.Generator,
    kind: str,
    chosen: np.ndarray,
    users: pd.DataFrame,
    health: np.ndarray,
    weekend: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Return (user index, day index) of each user-day on which a user of this kind is active.

    Users are drawn in blocks of USERS_PER_BLOCK so memory stays bounded for large companies.
    """
    user_parts, day_parts = [], []
    for first in range(0, len(chosen), USERS_PER_BLOCK):
        block = chosen[first : first + USERS_PER_BLOCK]
        probability = _activity_probability(kind, block, users, health, weekend)
        rows, columns = np.nonzero(rng.random(probability.shape) < probability)
        user_parts.append(block[rows])
        day_parts.append(columns)
    if not user_parts:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    return np.concatenate(user_parts), np.concatenate(day_parts)


def _activity_probability(
    kind: str, block: np.ndarray, users: pd.DataFrame, health: np.ndarray, weekend: np.ndarray
) -> np.ndarray:
    """Return the probability that each user of `block` is active on each local day, as a users x days array."""
    shape = (len(block), len(weekend))
    if kind == "customer":
        account = users["account_index"].to_numpy()[block]
        propensity = users["propensity"].to_numpy()[block]
        logit = (
            propensity[:, None]
            + USAGE_HEALTH_EFFECT * health[account]
            + USAGE_WEEKEND_EFFECT * weekend[None, :]
        )
        return expit(logit)
    if kind == "staff":
        return np.broadcast_to(np.where(weekend, 0.0, 0.05), shape)
    if kind == "bot":
        return np.ones(shape)
    return np.full(shape, 0.5)


def _to_utc(local_ns: np.ndarray, account_index: np.ndarray, timezones: np.ndarray) -> np.ndarray:
    """Convert local wall-clock instants of the given accounts to UTC, one timezone at a time."""
    names, account_zone = np.unique(timezones, return_inverse=True)
    zone = account_zone[account_index]
    utc = np.empty_like(local_ns)
    for code, name in enumerate(names):
        selected = zone == code
        utc[selected] = local_to_utc_ns(local_ns[selected], str(name))
    return utc


def _sync_instants(rng: np.random.Generator, at: np.ndarray) -> np.ndarray:
    """Minutes after the event normally; days after it for about 2 % of events."""
    late = rng.random(len(at)) < LATE_SHARE
    minutes = rng.uniform(*SYNC_DELAY_MINUTES, size=len(at))
    days = rng.uniform(*LATE_DELAY_DAYS, size=len(at))
    delay = np.where(late, days * NS_PER_DAY, minutes * NS_PER_MINUTE)
    return at + delay.astype(np.int64)


def _with_duplicates(rng: np.random.Generator, frame: pd.DataFrame) -> pd.DataFrame:
    """Repeat about 1 % of rows unchanged, each right after its original, as a re-sent batch would."""
    repeats = 1 + (rng.random(len(frame)) < DUPLICATE_SHARE).astype(np.int64)
    return frame.loc[frame.index.repeat(repeats)].reset_index(drop=True)


def draw_tickets(rng: np.random.Generator, population: Population, calendar: Calendar) -> pd.DataFrame:
    """Support tickets, more and more urgent as health falls, in their state at the end of the span.

    Returns account_index, at (created), updated_at, solved_at (MISSING while unsolved), priority, status.
    """
    accounts = population.accounts
    base = np.asarray(TICKET_RATE_PER_DAY)[accounts["segment_index"].to_numpy()]
    rate = base[:, None] * np.exp(TICKET_HEALTH_EFFECT * population.health)
    counts = rng.poisson(rate)
    account_index, day_index = np.nonzero(counts)
    repeats = counts[account_index, day_index]
    account_index = np.repeat(account_index, repeats)
    day_index = np.repeat(day_index, repeats)

    hours = np.clip(rng.normal(12.5, 3.0, len(day_index)), 0.0, 23.9997)
    local_ns = population.days.asi8[day_index] + (hours * NS_PER_HOUR).astype(np.int64)
    created = _to_utc(local_ns, account_index, accounts["timezone"].to_numpy())
    health = population.health[account_index, day_index]

    urgent_share = np.minimum(0.3, 0.04 * np.exp(-0.8 * health))
    draw = rng.random(len(created))
    priority = np.where(
        draw < urgent_share, 0, np.where(draw < urgent_share + 0.18, 1, np.where(draw < 0.8, 2, 3))
    )
    solve_hours = np.asarray(SOLVE_MEDIAN_HOURS)[priority] * rng.lognormal(0.0, 0.7, len(created))
    solved = created + (solve_hours * NS_PER_HOUR).astype(np.int64)
    open_at_end = solved >= calendar.end_ns
    closed = solved < calendar.end_ns - 7 * NS_PER_DAY
    status = np.where(open_at_end, np.where(rng.random(len(created)) < 0.5, "open", "pending"),
                      np.where(closed, "closed", "solved"))  # fmt: skip
    touched = created + ((calendar.end_ns - created) * rng.uniform(0.0, 0.5, len(created))).astype(np.int64)
    updated = np.where(open_at_end, np.minimum(touched, created + 3 * NS_PER_DAY), solved)

    frame = pd.DataFrame(
        {
            "account_index": account_index,
            "at": created,
            "updated_at": updated,
            "solved_at": np.where(open_at_end, _missing(len(created)), solved),
            "priority": np.asarray(PRIORITIES)[priority],
            "status": status,
        }
    )
    frame = frame[(frame["at"] >= calendar.start_ns) & (frame["at"] < calendar.end_ns)]
    return frame.sort_values(["at", "account_index"], kind="stable").reset_index(drop=True)


def _missing(count: int) -> np.ndarray:
    return np.full(count, MISSING, dtype=np.int64)


def draw_responses(rng: np.random.Generator, population: Population, calendar: Calendar) -> pd.DataFrame:
    """NPS responses (0-10, some dismissed without a score) and call-sentiment tags.

    Returns account_index, at, kind (nps or call), score (NaN when none), tag (None when none), dismissed.
    """
    frames = []
    for kind, rate in (("nps", NPS_RATE_PER_DAY), ("call", CALL_RATE_PER_DAY)):
        counts = rng.poisson(rate, size=population.health.shape)
        account_index, day_index = np.nonzero(counts)
        hours = np.clip(rng.normal(13.0, 3.0, len(day_index)), 0.0, 23.9997)
        local_ns = population.days.asi8[day_index] + (hours * NS_PER_HOUR).astype(np.int64)
        at = _to_utc(local_ns, account_index, population.accounts["timezone"].to_numpy())
        health = population.health[account_index, day_index]
        if kind == "nps":
            score = np.clip(np.round(7.0 + 1.8 * health + rng.normal(0.0, 1.6, len(at))), 0, 10)
            dismissed = rng.random(len(at)) < NPS_DISMISSED_SHARE
            score = np.where(dismissed, np.nan, score)
            tag = np.full(len(at), None, dtype=object)
        else:
            mood = health + rng.normal(0.0, 0.9, len(at))
            tag = np.where(mood > 0.5, "positive", np.where(mood < -0.5, "negative", "neutral")).astype(
                object
            )
            score = np.full(len(at), np.nan)
            dismissed = np.zeros(len(at), dtype=bool)
        frames.append(
            pd.DataFrame(
                {
                    "account_index": account_index,
                    "at": at,
                    "kind": kind,
                    "score": score,
                    "tag": tag,
                    "dismissed": dismissed,
                }
            )
        )
    frame = pd.concat(frames, ignore_index=True)
    frame = frame[(frame["at"] >= calendar.start_ns) & (frame["at"] < calendar.end_ns)]
    return frame.sort_values(["at", "account_index", "kind"], kind="stable").reset_index(drop=True)


def draw_integrations(
    rng: np.random.Generator, population: Population, calendar: Calendar, first_start: np.ndarray
) -> pd.DataFrame:
    """Integration connections, simulated week by week: healthy accounts connect more and disconnect less.

    Accounts that were customers before the span start with some connections made since they signed.
    Returns account_index, integration, at (connected), disconnected_at (MISSING while connected).
    """
    count, kinds = len(population.accounts), len(INTEGRATIONS)
    segment = population.accounts["segment_index"].to_numpy()
    health0 = population.health[:, 0]
    initial = rng.random((count, kinds)) < expit(-0.9 + 0.3 * segment + 0.6 * health0)[:, None]
    initial &= (first_start < calendar.start_ns)[:, None]
    since_signing = (calendar.start_ns - first_start).clip(min=0)
    connected_at = np.where(
        initial,
        first_start[:, None] + (rng.random((count, kinds)) * since_signing[:, None]).astype(np.int64),
        MISSING,
    )

    rows: list[tuple[int, int, int, int]] = []
    weeks = int(np.ceil((calendar.end_ns - calendar.start_ns) / NS_PER_WEEK))
    for week in range(weeks):
        week_start = calendar.start_ns + week * NS_PER_WEEK
        day = min(week * 7 + 1, population.health.shape[1] - 1)
        health = population.health[:, day][:, None]
        moment = week_start + (rng.random((count, kinds)) * NS_PER_WEEK).astype(np.int64)
        draw = rng.random((count, kinds))
        connected = connected_at != MISSING
        leave = connected & (draw < DISCONNECT_HAZARD_PER_WEEK * np.exp(-0.7 * health))
        signed = (first_start <= week_start)[:, None]
        join = ~connected & signed & (draw < CONNECT_HAZARD_PER_WEEK * np.exp(0.5 * health))
        for i, k in zip(*np.nonzero(leave), strict=True):
            rows.append((i, k, int(connected_at[i, k]), int(moment[i, k])))
        connected_at[leave] = MISSING
        connected_at[join] = moment[join]
    for i, k in zip(*np.nonzero(connected_at != MISSING), strict=True):
        rows.append((i, k, int(connected_at[i, k]), MISSING))

    frame = pd.DataFrame(rows, columns=["account_index", "integration_index", "at", "disconnected_at"])
    frame = frame[frame["disconnected_at"].eq(MISSING) | (frame["disconnected_at"] < calendar.end_ns)]
    frame = frame[frame["at"] < calendar.end_ns]
    frame["integration"] = np.asarray(INTEGRATIONS)[frame["integration_index"].to_numpy()]
    return frame.sort_values(["at", "account_index", "integration_index"], kind="stable").reset_index(
        drop=True
    )


def draw_contact_changes(
    rng: np.random.Generator, population: Population, calendar: Calendar
) -> pd.DataFrame:
    """Job changes of CRM contacts: departures (champions leave more often when health is low), title changes.

    Returns contact_index, at and change; a contact leaves at most once and then changes nothing more.
    """
    contacts = population.contacts
    account = contacts["account_index"].to_numpy()
    champion = contacts["is_champion"].to_numpy()
    base = np.where(champion, CHAMPION_LEAVE_HAZARD_PER_WEEK, CONTACT_LEAVE_HAZARD_PER_WEEK)
    departed = np.zeros(len(contacts), dtype=bool)
    rows: list[tuple[int, int, str]] = []
    weeks = int(np.ceil((calendar.end_ns - calendar.start_ns) / NS_PER_WEEK))
    for week in range(weeks):
        week_start = calendar.start_ns + week * NS_PER_WEEK
        day = min(week * 7 + 1, population.health.shape[1] - 1)
        health = population.health[account, day]
        moment = week_start + (rng.random(len(contacts)) * NS_PER_WEEK).astype(np.int64)
        draw = rng.random(len(contacts))
        leaves = ~departed & (draw < base * np.exp(-0.6 * health))
        retitled = ~departed & ~leaves & (draw > 1.0 - TITLE_CHANGE_HAZARD_PER_WEEK)
        rows.extend((int(c), int(moment[c]), "left_company") for c in np.flatnonzero(leaves))
        rows.extend((int(c), int(moment[c]), "title_change") for c in np.flatnonzero(retitled))
        departed |= leaves

    frame = pd.DataFrame(rows, columns=["contact_index", "at", "change"])
    frame = frame[frame["at"] < calendar.end_ns]
    return frame.sort_values(["at", "contact_index"], kind="stable").reset_index(drop=True)
