"""The RavenStack example config ingested from the third-party dataset into a real DuckDB file."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from account_health.config import CONFIG_FILE, Workspace, load_workspace
from account_health.signals import compute_signals
from account_health.sources import files as source_files
from account_health.sources.ingest import IngestReport, SourceCounts, ingest
from account_health.store.analytical import AnalyticalStore, open_analytical_store

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ravenstack"
RELATIVE_DATA = "../../../shared/data/"
AS_OF = datetime(2024, 10, 1)

# Source name in the example config -> file name in the dataset folder.
SOURCE_FILES = {
    "accounts": "ravenstack_accounts.csv",
    "subscriptions": "ravenstack_subscriptions.csv",
    "feature_usage": "ravenstack_feature_usage.csv",
    "tickets": "ravenstack_support_tickets.csv",
    "ticket_satisfaction": "ravenstack_support_tickets.csv",
    "churn_events": "ravenstack_churn_events.csv",
}
CANONICAL_TABLES = ("accounts", "contracts", "churn_events", "usage_daily", "sentiment_responses", "tickets")


@dataclass
class Loaded:
    workspace: Workspace
    store: AnalyticalStore
    data: Path
    first: IngestReport
    second: IngestReport
    # Every canonical table's rows after the first ingest, to compare with the second.
    before_second: dict[str, pd.DataFrame]


@pytest.fixture(scope="module")
def loaded(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loaded]:
    folder = tmp_path_factory.mktemp("ravenstack")
    text = (EXAMPLE / CONFIG_FILE).read_text(encoding="utf-8")
    assert text.count(RELATIVE_DATA) == len(SOURCE_FILES)
    (folder / CONFIG_FILE).write_text(
        text.replace(RELATIVE_DATA, shared_data.as_posix() + "/"), encoding="utf-8"
    )

    workspace = load_workspace(folder)
    store = open_analytical_store(workspace.analytical_store_path)
    first = ingest(workspace, store)
    before = {table: _table_rows(store, table) for table in CANONICAL_TABLES}
    second = ingest(workspace, store)
    yield Loaded(workspace, store, shared_data / "ravenstack", first, second, before)
    store.close()


def _table_rows(store: AnalyticalStore, table: str) -> pd.DataFrame:
    frame = store.connection.execute(f'SELECT * FROM "{table}"').df()
    return frame.sort_values(["_source", "_file", "_row_number"]).reset_index(drop=True)


def _csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _counts(report: IngestReport, source: str) -> SourceCounts:
    return next(counts for counts in report.sources if counts.source == source)


def _scalar(store: AnalyticalStore, sql: str) -> object:
    return store.connection.execute(sql).fetchall()[0][0]


def test_example_paths_resolve_next_to_checkout(shared_data: Path) -> None:
    workspace = load_workspace(EXAMPLE)
    for source, file_name in SOURCE_FILES.items():
        paths = source_files.expand_files(workspace.source_files(source), workspace.root, source)
        assert len(paths) == 1
        assert paths[0].samefile(shared_data / "ravenstack" / file_name)


def test_source_files_env_override(shared_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    copy = str(shared_data / "ravenstack" / "elsewhere.csv")
    monkeypatch.setenv("ACCOUNT_HEALTH_SOURCE_TICKETS_FILES", copy)
    workspace = load_workspace(EXAMPLE)
    assert workspace.source_files("tickets") == [copy]
    assert workspace.source_files("ticket_satisfaction") != [copy]


def test_every_row_read_and_accounted(loaded: Loaded) -> None:
    for source, file_name in SOURCE_FILES.items():
        counts = _counts(loaded.first, source)
        file_rows = len(_csv_rows(loaded.data / file_name))
        assert counts.read == file_rows, source
        assert counts.read == counts.inserted + counts.new_version + counts.unchanged + counts.quarantined, (
            counts
        )
        assert counts.backfill, source


def test_first_ingest_counts_per_source(loaded: Loaded) -> None:
    expected = {
        "accounts": (500, 0, 0),
        "subscriptions": (5000, 0, 0),
        "tickets": (2000, 0, 0),
        "ticket_satisfaction": (2000, 0, 0),
        # C-e20cc6 and C-ce47da both record account A-cc102e churning on 2024-11-19 for "pricing".
        # In canonical columns they are one churn event, so the second is unchanged.
        "churn_events": (599, 0, 1),
        # 25,000 feature rows fall on 24,111 distinct (account, day) keys; with duplicate_keys = "sum"
        # each key is inserted once and the 889 rows added into it count as new versions.
        "feature_usage": (24111, 889, 0),
    }
    for source, (inserted, new_version, unchanged) in expected.items():
        counts = _counts(loaded.first, source)
        assert (counts.inserted, counts.new_version, counts.unchanged) == (
            inserted,
            new_version,
            unchanged,
        ), counts
        assert counts.quarantined == 0, counts
        assert counts.unattributed == 0, counts


def test_stored_row_counts_per_table(loaded: Loaded) -> None:
    stored = {table: len(rows) for table, rows in loaded.before_second.items()}
    assert stored == {
        "accounts": 500,
        "contracts": 5000,
        "churn_events": 599,
        "usage_daily": 24111,
        "sentiment_responses": 2000,
        "tickets": 2000,
    }


def test_nothing_quarantined(loaded: Loaded) -> None:
    # Every value in the dataset parses: dates, closing times without an offset (read as UTC),
    # True/False flags, priorities once medium is mapped, and satisfaction scores within 1-5.
    assert _scalar(loaded.store, "SELECT count(*) FROM quarantine") == 0


def test_usage_rows_resolved_through_contracts(loaded: Loaded) -> None:
    subscriptions = {
        row["subscription_id"]: row["account_id"]
        for row in _csv_rows(loaded.data / SOURCE_FILES["subscriptions"])
    }
    usage = _csv_rows(loaded.data / SOURCE_FILES["feature_usage"])
    stored = loaded.before_second["usage_daily"]

    assert stored["account_id"].notna().all()
    assert not stored["_unattributed"].any()
    columns = ["_row_number", "account_id", "day", "event_count"]
    for row_number, account_id, day, event_count in stored[columns].itertuples(index=False):
        source_row = usage[row_number - 1]
        assert account_id == subscriptions[source_row["subscription_id"]], source_row
        assert pd.Timestamp(day) == pd.Timestamp(source_row["usage_date"]), source_row
        # The stored row is the sum of every feature row of its account and day, the first of which it names.
        assert event_count >= float(source_row["usage_count"]), source_row


def test_usage_daily_volume_sums_feature_rows(loaded: Loaded) -> None:
    subscriptions = {
        row["subscription_id"]: row["account_id"]
        for row in _csv_rows(loaded.data / SOURCE_FILES["subscriptions"])
    }
    expected: dict[tuple[str, str], float] = {}
    for row in _csv_rows(loaded.data / SOURCE_FILES["feature_usage"]):
        key = (subscriptions[row["subscription_id"]], row["usage_date"])
        expected[key] = expected.get(key, 0.0) + float(row["usage_count"])

    latest = loaded.store.connection.execute(
        """SELECT account_id, CAST(day AS VARCHAR), event_count FROM usage_daily
           QUALIFY row_number() OVER (PARTITION BY account_id, day
                                      ORDER BY _available_at DESC, _load_id DESC, _row_number DESC) = 1"""
    ).fetchall()
    seen = {(account, day): count for account, day, count in latest}
    assert sum(seen.values()) == sum(expected.values())
    assert seen == expected


def test_ticket_priorities_mapped(loaded: Loaded) -> None:
    source = _csv_rows(loaded.data / SOURCE_FILES["tickets"])
    mapped = {"medium": "normal"}
    expected = {row["ticket_id"]: mapped.get(row["priority"], row["priority"]) for row in source}
    stored = loaded.before_second["tickets"]
    assert dict(zip(stored["ticket_id"], stored["priority"], strict=True)) == expected
    assert set(stored["priority"]) == {"urgent", "high", "normal", "low"}


def test_ticket_times_stored_as_utc(loaded: Loaded) -> None:
    stored = loaded.before_second["tickets"].set_index("ticket_id")
    # T-0024de: submitted 2023-07-27 (a date), closed 2023-07-28 03:00:00 (no offset, so UTC).
    assert stored.loc["T-0024de", "created_at"] == pd.Timestamp("2023-07-27 00:00:00")
    assert stored.loc["T-0024de", "solved_at"] == pd.Timestamp("2023-07-28 03:00:00")
    assert stored.loc["T-0024de", "_available_at"] == pd.Timestamp("2023-07-27 00:00:00")


def test_satisfaction_scores_as_surveys(loaded: Loaded) -> None:
    source = {row["ticket_id"]: row for row in _csv_rows(loaded.data / SOURCE_FILES["tickets"])}
    stored = loaded.before_second["sentiment_responses"]

    assert set(stored["kind"]) == {"survey"}
    assert set(stored["scale"]) == {"1-5"}
    for row in stored.itertuples():
        raw = source[row.response_id]["satisfaction_score"]
        if raw:
            assert row.score == float(raw), row
        else:
            assert np.isnan(row.score), row
        assert row.responded_at == pd.Timestamp(source[row.response_id]["closed_at"]), row
    assert stored["score"].isna().sum() == sum(1 for row in source.values() if not row["satisfaction_score"])


def test_repeated_churn_kept_per_date(loaded: Loaded) -> None:
    source = _csv_rows(loaded.data / SOURCE_FILES["churn_events"])
    expected = {(row["account_id"], row["churn_date"]) for row in source}
    stored = loaded.before_second["churn_events"]
    stored_keys = {(row.account_id, row.churned_at.date().isoformat()) for row in stored.itertuples()}
    assert stored_keys == expected

    churns_per_account = stored.groupby("account_id").size()
    reactivated = {row["account_id"] for row in source if row["is_reactivation"] == "True"}
    assert (churns_per_account > 1).sum() == 175
    assert all(churns_per_account[account] >= 1 for account in reactivated)


def test_second_ingest_changes_nothing(loaded: Loaded) -> None:
    for source in SOURCE_FILES:
        counts = _counts(loaded.second, source)
        assert counts.unchanged == counts.read, counts
        assert not counts.backfill, counts
    for table, before in loaded.before_second.items():
        pd.testing.assert_frame_equal(_table_rows(loaded.store, table), before, obj=table)


def test_signals_at_one_as_of(loaded: Loaded) -> None:
    frame = compute_signals(loaded.workspace, loaded.store, [AS_OF]).set_index("account_id")

    assert len(frame) == 500
    assert frame["usage_trend"].notna().all()
    assert set(frame["usage_measure"]) == {"event_count"}
    assert frame["support_load"].notna().all()
    assert frame["sentiment_score"].notna().any()
    for feature in (
        "champion_in_seat",
        "days_since_champion_departure",
        "integrations_active",
        "integrations_change_90d",
    ):
        assert frame[feature].isna().all(), feature

    expected_load = _support_load_from_file(loaded.data / SOURCE_FILES["tickets"], frame.index)
    np.testing.assert_allclose(frame["support_load"].to_numpy(), expected_load.to_numpy())
    expected_sentiment = _sentiment_from_file(loaded.data / SOURCE_FILES["tickets"], frame.index)
    np.testing.assert_allclose(frame["sentiment_score"].to_numpy(), expected_sentiment.to_numpy())


def _support_load_from_file(path: Path, accounts: pd.Index) -> pd.Series:
    """Severity-weighted tickets submitted in the 90 days before AS_OF, per account, from the raw file."""
    weights = {"urgent": 4.0, "high": 2.0, "medium": 1.0, "low": 0.5}
    tickets = pd.read_csv(path, parse_dates=["submitted_at"])
    recent = tickets[
        (tickets["submitted_at"] >= AS_OF - timedelta(days=90)) & (tickets["submitted_at"] < AS_OF)
    ]
    load = recent["priority"].map(weights).groupby(recent["account_id"]).sum()
    return load.reindex(accounts, fill_value=0.0)


def _sentiment_from_file(path: Path, accounts: pd.Index) -> pd.Series:
    """Scores on 1-5 rescaled to 0-10, averaged with a 90-day half-life over the year before AS_OF."""
    tickets = pd.read_csv(path, parse_dates=["closed_at"]).dropna(subset=["satisfaction_score"])
    recent = tickets[(tickets["closed_at"] >= AS_OF - timedelta(days=365)) & (tickets["closed_at"] < AS_OF)]
    age_days = (AS_OF - recent["closed_at"]).dt.total_seconds() / 86_400
    weight = 0.5 ** (age_days / 90.0)
    normalised = (recent["satisfaction_score"] - 1.0) / 4.0 * 10.0
    weighted = (weight * normalised).groupby(recent["account_id"]).sum()
    total = weight.groupby(recent["account_id"]).sum()
    return (weighted / total).reindex(accounts)
