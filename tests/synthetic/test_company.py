from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from account_health.config import load_workspace
from account_health.synthetic import DATA_END, GeneratedCompany, generate_company
from account_health.synthetic.calendar import build_calendar
from account_health.synthetic.population import SERVICE_EMAIL_DOMAIN, STAFF_EMAIL_DOMAIN
from account_health.training.spine import snapshot_dates

from .conftest import SMALL_ACCOUNTS, SMALL_MONTHS, SMALL_SEED


def _csv(company: GeneratedCompany, name: str, **options: object) -> pd.DataFrame:
    return pd.read_csv(company.exports_dir / f"{name}.csv", **options)


def _instants(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values, utc=True).dt.tz_localize(None)


def _usage(company: GeneratedCompany) -> pd.DataFrame:
    usage = pd.read_parquet(company.exports_dir / "usage_events.parquet")
    usage["occurred_at"] = _instants(usage["occurred_at"])
    usage["synced_at"] = _instants(usage["synced_at"])
    return usage


def _all_files(folder: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def test_same_seed_gives_identical_files(small_company: GeneratedCompany, tmp_path: Path) -> None:
    steps: list[tuple[str, int, int]] = []
    again = generate_company(
        tmp_path / "again",
        accounts=SMALL_ACCOUNTS,
        months=SMALL_MONTHS,
        seed=SMALL_SEED,
        progress=lambda step, done, total: steps.append((step, done, total)),
    )
    assert [done for _, done, _ in steps] == list(range(1, len(steps) + 1))
    assert steps[-1][1] == steps[-1][2]
    first, second = _all_files(small_company.out_dir), _all_files(again.out_dir)
    assert sorted(first) == sorted(second)
    for name, content in first.items():
        assert content == second[name], f"{name} differs between two runs with seed {SMALL_SEED}"


def test_other_seed_gives_other_accounts(small_company: GeneratedCompany, tmp_path: Path) -> None:
    other = generate_company(
        tmp_path / "other", accounts=SMALL_ACCOUNTS, months=SMALL_MONTHS, seed=SMALL_SEED + 1
    )
    assert (other.exports_dir / "accounts.csv").read_bytes() != (
        small_company.exports_dir / "accounts.csv"
    ).read_bytes()


def test_config_maps_every_export(small_company: GeneratedCompany) -> None:
    workspace = load_workspace(small_company.out_dir)
    config = workspace.config
    assert config.training.end == DATA_END + timedelta(days=1)
    assert config.training.horizon_days == 90
    assert config.training.snapshot_every_days == 90
    assert config.training.window_months == SMALL_MONTHS - 3
    assert config.sources["usage_events"].loaded_at == "synced_at"
    assert config.signals.internal_user_patterns == ["bot-*"]
    assert set(config.signals.internal_email_domains) == {STAFF_EMAIL_DOMAIN, SERVICE_EMAIL_DOMAIN}
    for name in config.sources:
        for pattern in workspace.source_files(name):
            assert (workspace.root / pattern).is_file(), f"source {name} names a missing file {pattern}"


def test_default_window_is_eighteen_months() -> None:
    calendar = build_calendar(24)
    assert calendar.window_months == 18
    assert len(calendar.snapshots) == 6
    assert calendar.end == datetime(2026, 12, 1)


def test_exports_end_on_data_end(small_company: GeneratedCompany) -> None:
    usage = _usage(small_company)
    assert usage["occurred_at"].max() < datetime(2026, 12, 1)
    assert usage["occurred_at"].max() >= datetime(2026, 11, 29)


def test_usage_has_duplicates_and_late_rows(small_company: GeneratedCompany) -> None:
    usage = _usage(small_company)
    duplicated = usage["event_id"].duplicated().mean()
    delay = usage["synced_at"] - usage["occurred_at"]
    late = (delay > pd.Timedelta(days=1)).mean()
    assert 0.004 < duplicated < 0.02, duplicated
    assert 0.01 < late < 0.03, late
    assert usage["synced_at"].notna().all()
    assert (delay >= pd.Timedelta(0)).all()


def test_duplicates_repeat_whole_rows(small_company: GeneratedCompany) -> None:
    usage = pd.read_parquet(small_company.exports_dir / "usage_events.parquet")
    repeated = usage[usage["event_id"].duplicated(keep=False)]
    assert len(repeated) > 0
    assert repeated.drop_duplicates().shape[0] == repeated["event_id"].nunique()


def test_internal_bot_and_service_users_act(small_company: GeneratedCompany) -> None:
    users = _csv(small_company, "users")
    usage = _usage(small_company)
    staff = users[users["is_internal"]]
    bots = users[users["user_id"].str.startswith("bot-")]
    service = users[users["email"].fillna("").str.endswith("@" + SERVICE_EMAIL_DOMAIN)]
    for kind, group in (("staff", staff), ("bot", bots), ("service", service)):
        assert len(group) > 0, f"no {kind} users"
        assert usage["user_id"].isin(group["user_id"]).any(), f"{kind} users have no usage events"
    assert staff["email"].str.endswith("@" + STAFF_EMAIL_DOMAIN).all()


def test_accounts_span_several_timezones(small_company: GeneratedCompany) -> None:
    accounts = _csv(small_company, "accounts")
    assert accounts["timezone"].nunique() >= 5, accounts["timezone"].value_counts().to_dict()
    assert accounts["account_id"].is_unique


def _dst_change_days(zone: str, first: datetime, last: datetime) -> set[str]:
    tz = ZoneInfo(zone)
    days = pd.date_range(first, last, freq="D")
    return {
        f"{day:%Y-%m-%d}"
        for day in days
        if day.to_pydatetime().replace(tzinfo=tz).utcoffset()
        != (day + pd.Timedelta(days=1)).to_pydatetime().replace(tzinfo=tz).utcoffset()
    }


def test_usage_occurs_on_dst_change_days(small_company: GeneratedCompany) -> None:
    accounts = _csv(small_company, "accounts")
    usage = _usage(small_company).merge(accounts[["account_id", "timezone"]], on="account_id")
    found = []
    for zone, events in usage.groupby("timezone"):
        if zone == "UTC" or zone == "Asia/Tokyo":
            continue
        changes = _dst_change_days(str(zone), datetime(2025, 12, 1), datetime(2026, 11, 30))
        local = events["occurred_at"].dt.tz_localize("UTC").dt.tz_convert(str(zone)).dt.strftime("%Y-%m-%d")
        found.extend(sorted(set(local) & changes))
    assert found, "no usage event falls on a local day with a daylight-saving change"


def test_churned_accounts_return(small_company: GeneratedCompany) -> None:
    assert small_company.returning_accounts > 0
    contracts = _csv(small_company, "contracts")
    churns = _csv(small_company, "churn_events")
    contracts["start_at"] = _instants(contracts["start_at"])
    churns["churned_at"] = _instants(churns["churned_at"])
    comebacks = 0
    for row in churns.itertuples():
        later = contracts[
            (contracts["account_id"] == row.account_id) & (contracts["start_at"] > row.churned_at)
        ]
        if len(later):
            gap = later["start_at"].min() - row.churned_at
            assert pd.Timedelta(days=60) <= gap <= pd.Timedelta(days=180), (row.account_id, gap)
            comebacks += 1
    assert comebacks == small_company.returning_accounts


def test_contracts_end_at_churn(small_company: GeneratedCompany) -> None:
    contracts = _csv(small_company, "contracts")
    churns = _csv(small_company, "churn_events")
    assert len(churns) > 0
    for row in churns.itertuples():
        ending = contracts[
            (contracts["account_id"] == row.account_id) & (contracts["end_at"] == row.churned_at)
        ]
        assert len(ending) == 1, f"{row.account_id}: no contract ends at its churn {row.churned_at}"


def test_contract_terms_are_consecutive(small_company: GeneratedCompany) -> None:
    contracts = _csv(small_company, "contracts")
    churned_at = set(_csv(small_company, "churn_events")["churned_at"])
    for account_id, group in contracts.groupby("account_id"):
        ends = group["end_at"].tolist()[:-1]
        starts = group["start_at"].tolist()[1:]
        for end, start in zip(ends, starts, strict=True):
            assert end == start or end in churned_at, (
                f"{account_id}: contract ends {end}, next starts {start}"
            )
    assert (contracts["term_months"] == 12).all()


def test_no_churn_outside_truth_windows(small_company: GeneratedCompany) -> None:
    churns = _instants(_csv(small_company, "churn_events")["churned_at"])
    windows = [(moment, moment + timedelta(days=90)) for moment in small_company.snapshots]
    outside = [moment for moment in churns if not any(lower <= moment < upper for lower, upper in windows)]
    assert outside == []


def test_activity_stops_while_churned(small_company: GeneratedCompany) -> None:
    contracts = _csv(small_company, "contracts")
    contracts["start_at"] = _instants(contracts["start_at"])
    churns = _csv(small_company, "churn_events")
    churns["churned_at"] = _instants(churns["churned_at"])
    usage = _usage(small_company)
    tickets = _csv(small_company, "tickets")
    tickets["created_at"] = _instants(tickets["created_at"])
    responses = _csv(small_company, "sentiment_responses")
    responses["responded_at"] = _instants(responses["responded_at"])
    for row in churns.itertuples():
        later = contracts[
            (contracts["account_id"] == row.account_id) & (contracts["start_at"] > row.churned_at)
        ]
        comeback = later["start_at"].min() if len(later) else pd.Timestamp("2100-01-01")
        for name, frame, column in (
            ("usage", usage, "occurred_at"),
            ("tickets", tickets, "created_at"),
            ("responses", responses, "responded_at"),
        ):
            mine = frame[frame["account_id"] == row.account_id][column]
            during_gap = mine[(mine >= row.churned_at) & (mine < comeback)]
            assert during_gap.empty, (
                f"{row.account_id} has {name} between churn {row.churned_at} and {comeback}"
            )


def test_labels_match_contracts_and_churn(small_company: GeneratedCompany) -> None:
    labels = pd.read_csv(small_company.truth_dir / "labels.csv")
    contracts = _csv(small_company, "contracts")
    churns = _csv(small_company, "churn_events")
    contracts["start_at"] = _instants(contracts["start_at"])
    contracts["end_at"] = _instants(contracts["end_at"])
    churns["churned_at"] = _instants(churns["churned_at"])
    config = load_workspace(small_company.out_dir).config.training
    assert config.end is not None
    end = datetime.combine(config.end, datetime.min.time())
    moments = snapshot_dates(end, config.window_months, config.snapshot_every_days, config.horizon_days)
    assert tuple(moments) == small_company.snapshots

    for moment in moments:
        active = contracts[
            (contracts["start_at"] < moment) & (contracts["end_at"].isna() | (contracts["end_at"] >= moment))
        ]["account_id"].unique()
        horizon = churns[
            (churns["churned_at"] >= moment) & (churns["churned_at"] < moment + timedelta(days=90))
        ]
        expected = pd.DataFrame(
            {"account_id": active, "expected": np.isin(active, horizon["account_id"]).astype(int)}
        )
        drawn = labels[labels["as_of"] == f"{moment:%Y-%m-%dT%H:%M:%S}"]
        joined = drawn.merge(expected, on="account_id", how="outer", indicator=True)
        assert (joined["_merge"] == "both").all(), f"at-risk accounts differ at {moment}"
        assert (joined["label"] == joined["expected"]).all(), f"labels differ at {moment}"


def test_label_rate_near_mean_probability(small_company: GeneratedCompany) -> None:
    labels = pd.read_csv(small_company.truth_dir / "labels.csv")
    probability = labels["true_probability"]
    standard_error = np.sqrt((probability * (1 - probability)).sum()) / len(labels)
    gap = abs(labels["label"].mean() - probability.mean())
    assert gap < 4 * standard_error, (labels["label"].mean(), probability.mean(), standard_error)
    assert 0.03 < probability.mean() < 0.12, probability.mean()


def test_truth_file_describes_model(small_company: GeneratedCompany) -> None:
    import json

    truth = json.loads((small_company.truth_dir / "truth.json").read_text())
    features = truth["features"]
    assert len(features) == 7
    assert set(truth["coefficients"]) == set(features)
    assert set(truth["fill_values"]) == set(features)
    assert truth["seed"] == SMALL_SEED
    assert truth["snapshots"] == [f"{moment:%Y-%m-%dT%H:%M:%S}" for moment in small_company.snapshots]
    for feature in features:
        assert truth["coefficients"][feature] != 0.0, f"{feature} has no effect in the true model"


def test_rejects_too_short_span(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="months must be at least 6"):
        generate_company(tmp_path, accounts=10, months=5)


def test_labels_parse_as_naive_utc(small_company: GeneratedCompany) -> None:
    # The product's as-of instants are naive UTC, so the labels merge with its training frames as they are.
    labels = pd.read_csv(small_company.truth_dir / "labels.csv", parse_dates=["as_of"])
    assert labels["as_of"].dt.tz is None
    assert set(labels["as_of"].dt.to_pydatetime()) == set(small_company.snapshots)
