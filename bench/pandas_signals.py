"""A plain pandas implementation of the five signals, the baseline of bench/signals.py.

It reads the generated Parquet files directly and, for each as-of instant in turn, filters the rows
known before it and computes each signal with ordinary group-bys: what an analyst would write first.
It follows the product's rules for the generated data (one version per row, backfilled availability,
NPS-only sentiment, solved tickets), not every rule of the product.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

WINDOW = 28
MAU = 28
WEEK = 7
WEIGHTS = {"urgent": 4.0, "high": 2.0, "normal": 1.0, "low": 0.5}
DAY = pd.Timedelta(days=1)


def pandas_signals(folder: Path, instants: Sequence[datetime]) -> pd.DataFrame:
    accounts = pd.read_parquet(folder / "accounts.parquet")
    user_days = _user_days(folder, accounts)
    tickets = pd.read_parquet(folder / "tickets.parquet")
    responses = pd.read_parquet(folder / "sentiment.parquet")
    contacts = pd.read_parquet(folder / "contacts.parquet")
    changes = pd.read_parquet(folder / "contact_changes.parquet")
    integrations = pd.read_parquet(folder / "integrations.parquet")
    champions = contacts[contacts["is_champion"]]
    departures = changes[changes["change"] == "left_company"].merge(champions, on="contact_id")

    frames = []
    for instant in instants:
        as_of = pd.Timestamp(instant)
        frame = accounts[["account_id"]].copy()
        frame["as_of"] = as_of
        frame = frame.merge(_usage(user_days, accounts, as_of), on="account_id", how="left")
        frame = frame.merge(_sentiment(responses, as_of), on="account_id", how="left")
        frame = frame.merge(_support(tickets, as_of), on="account_id", how="left")
        frame = frame.merge(_champion(champions, departures, as_of), on="account_id", how="left")
        frame = frame.merge(_integrations(integrations, as_of), on="account_id", how="left")
        frames.append(frame)
    result = pd.concat(frames, ignore_index=True)
    zero = [
        "usage_trend",
        "usage_level",
        "usage_start",
        "usage_end",
        "sentiment_responses",
        "sentiment_excluded",
    ]
    zero += [
        "support_load",
        "support_tickets",
        "support_open_backlog",
        "integrations_active",
        "integrations_change_90d",
    ]
    result[zero] = result[zero].fillna(0.0)
    return result


def _user_days(folder: Path, accounts: pd.DataFrame) -> pd.DataFrame:
    events = pd.concat(
        [pd.read_parquet(path) for path in sorted(folder.glob("events-*.parquet"))], ignore_index=True
    )
    events["row"] = np.arange(len(events))
    events["available"] = events["occurred_at"].where(
        events["loaded_at"].isna() | (events["loaded_at"] < events["occurred_at"]), events["loaded_at"]
    )
    events = events.sort_values(["available", "row"]).drop_duplicates("event_id", keep="first")
    events = events.merge(accounts[["account_id", "timezone"]], on="account_id", how="left")
    days = []
    for zone, group in events.groupby("timezone"):
        local = group["occurred_at"].dt.tz_localize("UTC").dt.tz_convert(zone)
        days.append(local.dt.tz_localize(None).dt.normalize())
    events["day"] = pd.concat(days)
    return events.groupby(["account_id", "user_id", "day"], as_index=False)["available"].min()


def _usage(user_days: pd.DataFrame, accounts: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    ends = {}
    for zone in accounts["timezone"].unique():
        ends[zone] = as_of.tz_localize("UTC").tz_convert(zone).tz_localize(None).normalize() - DAY
    end_day = accounts.set_index("account_id")["timezone"].map(ends)
    rows = user_days[user_days["available"] < as_of].copy()
    rows["end"] = rows["account_id"].map(end_day)
    rows = rows[(rows["day"] <= rows["end"]) & (rows["day"] > rows["end"] - (WINDOW + MAU - 1) * DAY)]
    ratios = []
    for offset in range(WINDOW):
        day = rows["end"] - offset * DAY
        today = rows[rows["day"] == day].groupby("account_id")["user_id"].nunique()
        trailing = rows[(rows["day"] <= day) & (rows["day"] > day - MAU * DAY)]
        month = trailing.groupby("account_id")["user_id"].nunique()
        ratio = (today / month.reindex(today.index)).rename(WINDOW - 1 - offset)
        ratios.append(ratio)
    table = pd.concat(ratios, axis=1).reindex(columns=range(WINDOW)).fillna(0.0)
    positions = np.arange(WINDOW) - (WINDOW - 1) / 2.0
    return pd.DataFrame(
        {
            "account_id": table.index,
            "usage_trend": table.to_numpy() @ positions / (positions**2).sum(),
            "usage_level": table.mean(axis=1).to_numpy(),
            "usage_start": table.iloc[:, :WEEK].mean(axis=1).to_numpy(),
            "usage_end": table.iloc[:, -WEEK:].mean(axis=1).to_numpy(),
        }
    )


def _sentiment(responses: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    rows = responses[
        (responses["responded_at"] < as_of) & (responses["responded_at"] >= as_of - 365 * DAY)
    ].copy()
    rows["weight"] = 0.5 ** (((as_of - rows["responded_at"]).dt.total_seconds() / 86_400.0) / 90.0)
    rows["weighted"] = rows["weight"] * rows["score"]
    grouped = rows.groupby("account_id")
    ordered = rows.sort_values(["account_id", "responded_at"], ascending=[True, False])
    rank = ordered.groupby("account_id").cumcount()
    latest = ordered[rank == 0].set_index("account_id")["score"]
    previous = ordered[rank == 1].set_index("account_id")["score"]
    result = pd.DataFrame(
        {
            "sentiment_score": grouped["weighted"].sum() / grouped["weight"].sum(),
            "sentiment_responses": grouped.size().astype(float),
            "sentiment_excluded": 0.0,
            "nps_latest": latest,
        }
    )
    result["nps_change"] = result["nps_latest"] - previous.reindex(result.index)
    return result.rename_axis("account_id").reset_index()


def _support(tickets: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    rows = tickets[tickets["created_at"] < as_of].copy()
    recent = rows["created_at"] >= as_of - 90 * DAY
    rows["load"] = rows["priority"].map(WEIGHTS).fillna(1.0).where(recent, 0.0)
    rows["recent"] = recent.astype(float)
    rows["open"] = (~(rows["solved_at"].notna() & (rows["solved_at"] < as_of))).astype(float)
    grouped = rows.groupby("account_id")
    return pd.DataFrame(
        {
            "support_load": grouped["load"].sum(),
            "support_tickets": grouped["recent"].sum(),
            "support_open_backlog": grouped["open"].sum(),
        }
    ).reset_index()


def _champion(champions: pd.DataFrame, departures: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    left = departures[departures["changed_at"] < as_of].groupby("contact_id")["changed_at"].max()
    rows = champions.merge(left.rename("left_at"), left_on="contact_id", right_index=True, how="left")
    grouped = rows.groupby("account_id")
    in_seat = grouped["left_at"].apply(lambda values: float(values.isna().sum()))
    last = grouped["left_at"].max()
    since = ((as_of - last).dt.total_seconds() / 86_400.0).clip(upper=365.0).fillna(365.0)
    return pd.DataFrame(
        {
            "champion_in_seat": (in_seat > 0).astype(float),
            "days_since_champion_departure": since,
            "champions_in_seat": in_seat,
        }
    ).reset_index()


def _integrations(integrations: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    rows = integrations[integrations["connected_at"] < as_of]

    def active(instant: pd.Timestamp) -> pd.Series:
        return (rows["connected_at"] < instant) & (
            rows["disconnected_at"].isna() | (rows["disconnected_at"] >= instant)
        )

    # An integration counts once by its name, ignoring case, however many connections of it are open.
    names = rows["integration"].str.strip().str.lower()

    def distinct(active_rows: pd.Series) -> pd.Series:
        return names[active_rows].groupby(rows["account_id"][active_rows]).nunique().astype(float)

    accounts = rows["account_id"].drop_duplicates()
    now = distinct(active(as_of)).reindex(accounts, fill_value=0.0)
    before = distinct(active(as_of - 90 * DAY)).reindex(accounts, fill_value=0.0)
    return pd.DataFrame({"integrations_active": now, "integrations_change_90d": now - before}).reset_index()


def compare(ours: pd.DataFrame, theirs: pd.DataFrame) -> dict[str, float]:
    """Return the largest absolute difference per numeric column between the two results (NaN equals NaN)."""
    ours = ours.assign(as_of=pd.to_datetime(ours["as_of"]))
    theirs = theirs.assign(as_of=pd.to_datetime(theirs["as_of"]))
    merged = ours.merge(
        theirs, on=["account_id", "as_of"], suffixes=("", "_pandas"), how="outer", indicator=True
    )
    differences = {"unmatched_rows": float((merged["_merge"] != "both").sum())}
    for column in theirs.columns:
        if column in ("account_id", "as_of"):
            continue
        left = merged[column].astype(float)
        right = merged[f"{column}_pandas"].astype(float)
        gap = (left - right).abs()
        mismatch_nan = left.isna() != right.isna()
        differences[column] = float(np.inf) if mismatch_nan.any() else float(gap.max(skipna=True) or 0.0)
    return differences
