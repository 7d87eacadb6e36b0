"""The five signals on tiny ingested data, against values worked out by hand or with numpy."""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from account_health.config import CONFIG_FILE, Workspace, load_workspace
from account_health.signals import compute_signals
from account_health.signals.backfill import backfill_signals
from account_health.sources.ingest import ingest
from account_health.store.analytical import open_analytical_store
from account_health.store.operational import now

STORE_SETTINGS = '[workspace]\nanalytical_store = "analytical.duckdb"\n\n'
ACCOUNTS_SOURCE = '[sources.accounts]\ntable = "accounts"\nfiles = ["accounts.csv"]\n\n'
WINDOW_DAYS = 28
HALF_LIFE_DAYS = 90.0


def _workspace(folder: Path, sources: str, files: dict[str, str]) -> Workspace:
    (folder / CONFIG_FILE).write_text(STORE_SETTINGS + textwrap.dedent(sources), encoding="utf-8")
    for name, content in files.items():
        (folder / name).write_text(content, encoding="utf-8")
    return load_workspace(folder)


def _ingest(workspace: Workspace) -> None:
    with open_analytical_store(workspace.analytical_store_path) as store:
        ingest(workspace, store)


def _signals(workspace: Workspace, as_of: Sequence[datetime]) -> pd.DataFrame:
    """Return the signals indexed by (account_id, as_of)."""
    with open_analytical_store(workspace.analytical_store_path) as store:
        frame = compute_signals(workspace, store, as_of)
    return frame.set_index(["account_id", "as_of"])


def _csv(header: str, rows: Sequence[Sequence[object]]) -> str:
    lines = [header] + [",".join("" if value is None else str(value) for value in row) for row in rows]
    return "\n".join(lines) + "\n"


def _slope(values: Sequence[float]) -> float:
    """Least-squares slope of `values` against 0, 1, 2, ... computed by numpy."""
    return float(np.polyfit(np.arange(len(values), dtype=float), np.asarray(values, dtype=float), 1)[0])


def _dau_mau_series(active_days: dict[str, set[date]], end_day: date) -> list[float]:
    """DAU / MAU for each of the WINDOW_DAYS days ending at `end_day`, MAU over the trailing 28 days."""
    series = []
    for offset in range(WINDOW_DAYS - 1, -1, -1):
        day = end_day - timedelta(days=offset)
        trailing = {day - timedelta(days=back) for back in range(28)}
        dau = sum(1 for days in active_days.values() if day in days)
        mau = sum(1 for days in active_days.values() if days & trailing)
        series.append(dau / mau if mau else 0.0)
    return series


def test_usage_dau_mau_slope_matches_numpy(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    first_day = date(2024, 1, 1)
    end_day = date(2024, 2, 29)
    total_days = (end_day - first_day).days + 1
    active_days: dict[str, set[date]] = {}
    rows: list[tuple[str, str, str, str]] = []
    for user_index in range(8):
        user = f"u{user_index}"
        # Users drift in and out at different rates, so both DAU and the trailing MAU move.
        probability = np.linspace(rng.uniform(0.05, 0.6), rng.uniform(0.0, 0.9), total_days)
        for day_index in np.flatnonzero(rng.random(total_days) < probability):
            day = first_day + timedelta(days=int(day_index))
            active_days.setdefault(user, set()).add(day)
            for repeat in range(int(rng.integers(1, 4))):
                rows.append((f"E{len(rows)}", "A1", user, f"{day.isoformat()}T{9 + repeat}:15:00Z"))
    sources = ACCOUNTS_SOURCE + '[sources.events]\ntable = "usage_events"\nfiles = ["events.csv"]\n'
    files = {
        "accounts.csv": "account_id\nA1\n",
        "events.csv": _csv("event_id,account_id,user_id,occurred_at", rows),
    }
    workspace = _workspace(tmp_path, sources, files)
    _ingest(workspace)
    as_of = datetime(2024, 3, 1)

    result = _signals(workspace, [as_of]).loc[("A1", as_of)]

    series = _dau_mau_series(active_days, end_day)
    assert result["usage_measure"] == "dau_mau"
    assert result["usage_trend"] == pytest.approx(_slope(series), abs=1e-12)
    assert result["usage_level"] == pytest.approx(float(np.mean(series)), abs=1e-12)


def test_usage_daily_event_volume_slope(tmp_path: Path) -> None:
    end_day = date(2024, 2, 29)
    volumes = {
        end_day - timedelta(days=offset): float(offset % 5 + 40 - offset) for offset in range(0, 40, 2)
    }
    rows = [("A1", day.isoformat(), volume) for day, volume in sorted(volumes.items())]
    sources = ACCOUNTS_SOURCE + textwrap.dedent(
        """\
        [sources.usage]
        table = "usage_daily"
        files = ["usage.csv"]
        """
    )
    files = {"accounts.csv": "account_id\nA1\nA2\n", "usage.csv": _csv("account_id,day,event_count", rows)}
    workspace = _workspace(tmp_path, sources, files)
    _ingest(workspace)
    as_of = datetime(2024, 3, 1)

    result = _signals(workspace, [as_of])

    # Days without a row in the window count as zero events.
    series = [volumes.get(end_day - timedelta(days=offset), 0.0) for offset in range(WINDOW_DAYS - 1, -1, -1)]
    assert result.loc[("A1", as_of), "usage_measure"] == "event_count"
    assert result.loc[("A1", as_of), "usage_trend"] == pytest.approx(_slope(series), abs=1e-12)
    # No usage at all is a real value, not a missing one.
    assert result.loc[("A2", as_of), "usage_trend"] == 0.0


def test_daily_measure_per_account_snapshot(tmp_path: Path) -> None:
    end_day = date(2024, 2, 29)
    window = [end_day - timedelta(days=offset) for offset in range(WINDOW_DAYS - 1, -1, -1)]
    counts = {day: float(60 - 2 * index) for index, day in enumerate(window)}
    users = {day: float(3 + index % 4) for index, day in enumerate(window)}
    later = date(2024, 5, 1)
    rows = [("A1", day.isoformat(), None, counts[day]) for day in window]
    rows += [("A2", day.isoformat(), users[day], None) for day in window]
    rows += [("A3", day.isoformat(), None, counts[day]) for day in window]
    # A3's feed gains active users after the first snapshot, which must not change what it saw.
    rows.append(("A3", later.isoformat(), 5.0, 70.0))
    sources = ACCOUNTS_SOURCE + '[sources.usage]\ntable = "usage_daily"\nfiles = ["usage.csv"]\n'
    files = {
        "accounts.csv": "account_id\nA1\nA2\nA3\nA4\n",
        "usage.csv": _csv("account_id,day,active_users,event_count", rows),
    }
    workspace = _workspace(tmp_path, sources, files)
    _ingest(workspace)
    first, second = datetime(2024, 3, 1), datetime(2024, 5, 2)

    result = _signals(workspace, [first, second])

    by_count = _slope([counts[day] for day in window])
    assert result.loc[("A1", first), "usage_measure"] == "event_count"
    assert result.loc[("A1", first), "usage_trend"] == pytest.approx(by_count, abs=1e-12)
    assert result.loc[("A2", first), "usage_measure"] == "active_users"
    assert result.loc[("A2", first), "usage_trend"] == pytest.approx(
        _slope([users[d] for d in window]), abs=1e-12
    )
    assert result.loc[("A3", first), "usage_measure"] == "event_count"
    assert result.loc[("A3", first), "usage_trend"] == pytest.approx(by_count, abs=1e-12)
    assert result.loc[("A4", first), "usage_trend"] == 0.0
    # In the later window A3 has active users on one day; its other days count as zero users.
    assert result.loc[("A3", second), "usage_measure"] == "active_users"
    assert result.loc[("A3", second), "usage_level"] == pytest.approx(5.0 / WINDOW_DAYS)


def test_usage_local_day_in_new_york(tmp_path: Path) -> None:
    # 03:30 UTC on 1 March is 22:30 on 29 February in New York (EST, UTC-5).
    events = _csv(
        "event_id,account_id,user_id,occurred_at",
        [("E1", "A-NY", "u1", "2024-03-01T03:30:00Z"), ("E2", "A-UTC", "u2", "2024-03-01T03:30:00Z")],
    )
    sources = ACCOUNTS_SOURCE + '[sources.events]\ntable = "usage_events"\nfiles = ["events.csv"]\n'
    files = {"accounts.csv": "account_id,timezone\nA-NY,America/New_York\nA-UTC,\n", "events.csv": events}
    workspace = _workspace(tmp_path, sources, files)
    _ingest(workspace)
    # Midnight of 1 March in New York: the account's last complete local day is 29 February.
    as_of = datetime(2024, 3, 1, 5, 0)

    result = _signals(workspace, [as_of])

    only_last_day_active = [0.0] * (WINDOW_DAYS - 1) + [1.0]
    assert result.loc[("A-NY", as_of), "usage_trend"] == pytest.approx(
        _slope(only_last_day_active), abs=1e-12
    )
    # In UTC the event falls on 1 March, which is not complete at as_of.
    assert result.loc[("A-UTC", as_of), "usage_trend"] == 0.0


def test_active_users_exclude_internal_and_duplicates(tmp_path: Path) -> None:
    events = _csv(
        "event_id,account_id,user_id,occurred_at",
        [
            ("E1", "A1", "u1", "2024-02-20T10:00:00Z"),
            ("E1", "A1", "u1", "2024-02-20T10:00:00Z"),
            # A second version of E2 under another user: the event counts once, in its first version.
            ("E2", "A1", "u2", "2024-02-21T10:00:00Z"),
            ("E2", "A1", "u-resent", "2024-02-21T10:00:00Z"),
            ("E3", "A1", "bot-importer", "2024-02-22T10:00:00Z"),
            ("E4", "A1", "u-staff", "2024-02-22T10:00:00Z"),
            ("E5", "A1", "u-vendor", "2024-02-22T10:00:00Z"),
            ("E6", "A1", "u-named", "2024-02-23T10:00:00Z"),
            ("E7", "A1", "u-unclosed", "2024-02-23T10:00:00Z"),
        ],
    )
    users = _csv(
        "user_id,account_id,email,is_internal",
        [
            ("u1", "A1", "ana@customer.test", "false"),
            ("u2", "A1", "bo@customer.test", ""),
            ("u-staff", "A1", "cy@customer.test", "true"),
            ("u-vendor", "A1", "di@OurCo.test", "false"),
            # A display name around the address, as CRMs export it.
            ("u-named", "A1", '"Ed Ng <ed@ourco.test> "', "false"),
            # Without the closing bracket the whole cell is the address, which still ends in the domain.
            ("u-unclosed", "A1", "Fay <fay@ourco.test", "false"),
        ],
    )
    tickets = _csv("ticket_id,account_id,created_at,priority", [("T1", "A1", "2024-02-25", "urgent")])
    sources = ACCOUNTS_SOURCE + textwrap.dedent(
        """\
        [sources.users]
        table = "users"
        files = ["users.csv"]

        [sources.events]
        table = "usage_events"
        files = ["events.csv"]

        [sources.tickets]
        table = "tickets"
        files = ["tickets.csv"]

        [signals]
        support_normalisation = "per_active_user"
        internal_user_patterns = ["bot-*"]
        internal_email_domains = ["ourco.test"]
        """
    )
    files = {
        "accounts.csv": "account_id\nA1\n",
        "events.csv": events,
        "users.csv": users,
        "tickets.csv": tickets,
    }
    workspace = _workspace(tmp_path, sources, files)
    _ingest(workspace)
    as_of = datetime(2024, 3, 1)

    result = _signals(workspace, [as_of]).loc[("A1", as_of)]

    # Active users are u1 and u2 only, so the urgent ticket (weight 4) is shared by two users.
    assert result["support_load"] == pytest.approx(4.0 / 2)
    assert result["support_tickets"] == 1


def test_support_point_in_time_versions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    today = datetime.combine(now().date(), datetime.min.time())

    def day(offset: int) -> str:
        return (today + timedelta(days=offset)).date().isoformat()

    header = "ticket_id,account_id,created_at,priority,status"
    backfill = _csv(
        header,
        [
            ("K1", "A1", day(-30), "low", "open"),
            ("K2", "A1", day(-20), "high", "open"),
            ("K3", "A1", day(-200), "urgent", "open"),
            ("K5", "A1", day(-15), "urgent", "deleted"),
        ],
    )
    later = _csv(
        header,
        [
            ("K1", "A1", day(-30), "urgent", "open"),
            ("K2", "A1", day(-20), "high", "deleted"),
            ("K3", "A1", day(-200), "urgent", "open"),
            ("K4", "A1", day(-10), "normal", "open"),
        ],
    )
    sources = ACCOUNTS_SOURCE + '[sources.tickets]\ntable = "tickets"\nfiles = ["tickets.csv"]\n'
    files = {"accounts.csv": "account_id\nA1\nA2\n", "tickets.csv": backfill, "tickets_later.csv": later}
    workspace = _workspace(tmp_path, sources, files)
    _ingest(workspace)
    monkeypatch.setenv("ACCOUNT_HEALTH_SOURCE_TICKETS_FILES", str(tmp_path / "tickets_later.csv"))
    _ingest(workspace)
    before_later_load = today - timedelta(days=5)
    after_later_load = today + timedelta(days=2)

    result = _signals(workspace, [before_later_load, after_later_load])

    # Before the later load: K1 as low (0.5) and K2 as high (2). K3 is older than 90 days, K5 is deleted,
    # and K4 arrived in the later load, so it is not yet known although it was created earlier.
    early = result.loc[("A1", before_later_load)]
    assert early["support_load"] == pytest.approx(0.5 + 2.0)
    assert early["support_tickets"] == 2
    # After it: K1 is urgent (4), K2 is deleted, and the late K4 counts as normal (1).
    late = result.loc[("A1", after_later_load)]
    assert late["support_load"] == pytest.approx(4.0 + 1.0)
    assert late["support_tickets"] == 2
    # An account without tickets has no support load, which is zero, not missing.
    assert result.loc[("A2", before_later_load), "support_load"] == 0.0
    assert result.loc[("A2", after_later_load), "support_load"] == 0.0


def test_support_backlog_counts_reopened_tickets(tmp_path: Path) -> None:
    tickets = _csv(
        "ticket_id,account_id,created_at,solved_at,priority,status",
        [
            # Reopened: the export keeps the date of the earlier solve.
            ("K1", "A1", "2025-03-01", "2025-03-02", "high", "open"),
            ("K2", "A1", "2025-03-01", "2025-03-02", "high", "Pending"),
            ("K3", "A1", "2025-03-01", None, "high", "open"),
            # Solved before the as-of instants, with or without a status.
            ("K4", "A1", "2025-03-01", "2025-03-02", "high", "solved"),
            ("K5", "A1", "2025-03-01", "2025-03-02", "high", None),
            ("K6", "A1", "2025-03-01", "2025-03-02", "high", "resolved"),
            ("K7", "A1", "2025-03-01", None, "high", "closed"),
            # Solved between the two as-of instants: open at the first.
            ("K8", "A1", "2025-03-01", "2025-03-07", "high", "solved"),
            # Solved in the first load, reopened in a load synced on 03-06.
            ("K9", "A1", "2025-03-01", "2025-03-02", "high", "solved"),
        ],
    )
    reopened = _csv(
        "ticket_id,account_id,created_at,solved_at,priority,status,synced_at",
        [("K9", "A1", "2025-03-01", "2025-03-02", "high", "open", "2025-03-06")],
    )
    sources = ACCOUNTS_SOURCE + textwrap.dedent(
        """\
        [sources.tickets]
        table = "tickets"
        files = ["tickets.csv"]

        [sources.reopened]
        table = "tickets"
        files = ["reopened.csv"]
        loaded_at = "synced_at"
        """
    )
    files = {"accounts.csv": "account_id\nA1\n", "tickets.csv": tickets, "reopened.csv": reopened}
    workspace = _workspace(tmp_path, sources, files)
    _ingest(workspace)
    as_of = [datetime(2025, 3, 5), datetime(2025, 3, 10)]

    result = _signals(workspace, as_of)
    with open_analytical_store(workspace.analytical_store_path) as store:
        backfill_signals(workspace, store, as_of)
        backfilled = store.connection.execute(
            "SELECT account_id, as_of, support_open_backlog FROM signal_backfill"
        ).df()

    # K1, K2, K3 and K8 on 03-05; K1, K2, K3 and the reopened K9 on 03-10.
    assert result.loc[("A1", as_of[0]), "support_open_backlog"] == 4
    assert result.loc[("A1", as_of[1]), "support_open_backlog"] == 4
    by_instant = dict(
        zip(pd.to_datetime(backfilled["as_of"]), backfilled["support_open_backlog"], strict=True)
    )
    assert by_instant == {pd.Timestamp(instant): 4.0 for instant in as_of}


def test_sentiment_recency_weighted_mean(tmp_path: Path) -> None:
    as_of = datetime(2024, 6, 1)

    def at(days_before: float) -> str:
        return (as_of - timedelta(days=days_before)).isoformat()

    responses = _csv(
        "account_id,responded_at,kind,score,tag,scale,dismissed",
        [
            ("A1", at(100), "nps", 6, None, None, None),
            ("A1", at(10), "nps", 9, None, None, None),
            ("A1", at(30), "survey", 4, None, "1-5", None),
            ("A1", at(5), "call", None, "positive", None, None),
            ("A1", at(3), "call", None, None, None, "true"),
            ("A1", at(400), "nps", 0, None, None, None),
            ("A1", at(-2), "nps", 0, None, None, None),
        ],
    )
    sources = (
        ACCOUNTS_SOURCE + '[sources.responses]\ntable = "sentiment_responses"\nfiles = ["responses.csv"]\n'
    )
    workspace = _workspace(
        tmp_path, sources, {"accounts.csv": "account_id\nA1\nA2\n", "responses.csv": responses}
    )
    _ingest(workspace)

    result = _signals(workspace, [as_of])

    # NPS as is, the 1-5 survey's 4 as 7.5, a positive call as 10. The dismissed call is excluded,
    # the 400-day-old response is outside the 365-day lookback and the future one is not yet known.
    ages = np.array([100.0, 10.0, 30.0, 5.0])
    values = np.array([6.0, 9.0, 7.5, 10.0])
    weights = 0.5 ** (ages / HALF_LIFE_DAYS)
    row = result.loc[("A1", as_of)]
    assert row["sentiment_score"] == pytest.approx(float(np.sum(weights * values) / np.sum(weights)))
    assert row["sentiment_responses"] == 4
    assert row["sentiment_excluded"] == 1
    assert row["nps_latest"] == 9
    assert row["nps_change"] == 3
    assert math.isnan(result.loc[("A2", as_of), "sentiment_score"])


def test_sentiment_skips_stored_nps_on_other_scale(tmp_path: Path) -> None:
    """NPS rows stored with a scale other than 0-10 (before the ingest quarantined them) are excluded."""
    as_of = datetime(2024, 6, 1)
    responses = _csv(
        "response_id,account_id,responded_at,kind,score,scale",
        [
            ("r1", "A1", (as_of - timedelta(days=20)).isoformat(), "nps", 6, "0-10"),
            ("r2", "A1", (as_of - timedelta(days=10)).isoformat(), "nps", 4, None),
            ("r3", "A1", (as_of - timedelta(days=5)).isoformat(), "nps", 2, None),
        ],
    )
    sources = (
        ACCOUNTS_SOURCE + '[sources.responses]\ntable = "sentiment_responses"\nfiles = ["responses.csv"]\n'
    )
    workspace = _workspace(
        tmp_path, sources, {"accounts.csv": "account_id\nA1\n", "responses.csv": responses}
    )
    _ingest(workspace)
    # The ingest rejects these scales on an NPS row, so the rows are written as an older store held them.
    with open_analytical_store(workspace.analytical_store_path) as store:
        store.connection.execute("UPDATE sentiment_responses SET scale = '1-5' WHERE response_id = 'r2'")
        store.connection.execute("UPDATE sentiment_responses SET scale = 'five' WHERE response_id = 'r3'")

    row = _signals(workspace, [as_of]).loc[("A1", as_of)]

    assert row["sentiment_score"] == 6.0
    assert row["sentiment_responses"] == 1
    assert row["sentiment_excluded"] == 2
    assert row["nps_latest"] == 6.0


def test_champion_in_seat_and_departure(tmp_path: Path) -> None:
    contacts = _csv(
        "contact_id,account_id,email,is_champion",
        [
            ("C1", "A1", "c1@a1.test", "true"),
            ("C2", "A1", "c2@a1.test", "true"),
            ("C3", "A2", "c3@a2.test", "true"),
            ("C4", "A3", "c4@a3.test", "false"),
            ("C5", "A4", "c5@a4.test", "true"),
        ],
    )
    changes = _csv(
        "contact_id,changed_at,change",
        [
            ("C2", "2024-05-01", "left_company"),
            ("C3", "2024-05-22", "left_company"),
            ("C3", "2024-05-25", "email_bounced"),
            ("C5", "2024-06-10", "left_company"),
        ],
    )
    sources = ACCOUNTS_SOURCE + textwrap.dedent(
        """\
        [sources.contacts]
        table = "contacts"
        files = ["contacts.csv"]

        [sources.changes]
        table = "contact_changes"
        files = ["changes.csv"]
        """
    )
    files = {"accounts.csv": "account_id\nA1\nA2\nA3\nA4\n", "contacts.csv": contacts, "changes.csv": changes}
    workspace = _workspace(tmp_path, sources, files)
    _ingest(workspace)
    as_of = datetime(2024, 6, 1)

    result = _signals(workspace, [as_of])

    expected = {
        # C1 still in seat, C2 left 31 days before as_of.
        "A1": (1.0, 31.0, 1),
        # Its only champion left 10 days before as_of.
        "A2": (0.0, 10.0, 0),
        # C5 leaves after as_of, so at as_of no departure is known and the days stay at the 365-day cap.
        "A4": (1.0, 365.0, 1),
    }
    for account, (in_seat, days_since, count) in expected.items():
        row = result.loc[(account, as_of)]
        assert row["champion_in_seat"] == in_seat, account
        assert row["days_since_champion_departure"] == pytest.approx(days_since), account
        assert row["champions_in_seat"] == count, account
    # No champion was ever tagged at A3: the signal is missing, not "no champion in seat".
    assert math.isnan(result.loc[("A3", as_of), "champion_in_seat"])
    assert math.isnan(result.loc[("A3", as_of), "days_since_champion_departure"])


CHAMPION_SOURCES = ACCOUNTS_SOURCE + textwrap.dedent(
    """\
    [sources.contacts]
    table = "contacts"
    files = ["contacts.csv"]

    [sources.changes]
    table = "contact_changes"
    files = ["changes.csv"]
    """
)
CHAMPIONS_BEFORE_MOVE = _csv(
    "contact_id,account_id,email,is_champion",
    [("C1", "A1", "c1@a1.test", "true"), ("C2", "A2", "c2@a2.test", "true")],
)
# The CRM moves C1, who left A1, to A2: their new employer.
CHAMPIONS_AFTER_MOVE = _csv(
    "contact_id,account_id,email,is_champion",
    [("C1", "A2", "c1@a2.test", "true"), ("C2", "A2", "c2@a2.test", "true")],
)


def _champion_columns(workspace: Workspace, as_of: Sequence[datetime]) -> dict[tuple[str, datetime], tuple]:
    """Return (champion_in_seat, days_since_champion_departure, champions_in_seat) from compute_signals,
    after checking that the daily backfill gives the same values."""
    columns = ["champion_in_seat", "days_since_champion_departure", "champions_in_seat"]
    result = _signals(workspace, as_of)[columns]
    with open_analytical_store(workspace.analytical_store_path) as store:
        backfill_signals(workspace, store, as_of)
        backfilled = store.connection.execute("SELECT * FROM signal_backfill").df()
    backfilled = backfilled.set_index(["account_id", "as_of"]).loc[result.index, columns]
    pd.testing.assert_frame_equal(backfilled, result, check_dtype=False, check_index_type=False)
    return {key: tuple(row) for key, row in zip(result.index, result.itertuples(index=False), strict=True)}


def test_champion_departure_stays_with_old_account(tmp_path: Path) -> None:
    changes = _csv("contact_id,changed_at,change", [("C1", "2025-03-01", "left_company")])
    files = {
        "accounts.csv": "account_id\nA1\nA2\n",
        "contacts.csv": CHAMPIONS_BEFORE_MOVE,
        "changes.csv": changes,
    }
    workspace = _workspace(tmp_path, CHAMPION_SOURCES, files)
    _ingest(workspace)
    (tmp_path / "contacts.csv").write_text(CHAMPIONS_AFTER_MOVE, encoding="utf-8")
    with open_analytical_store(workspace.analytical_store_path) as store:
        ingest(workspace, store, backfill=True)
    as_of = [datetime(2025, 2, 20), datetime(2025, 3, 11)]

    values = _champion_columns(workspace, as_of)

    # The backfill makes both versions of C1 available from 1970, so before the departure C1 counts at
    # A2 only. Only the load order shows that the move came after the departure, which the first
    # load recorded against A1.
    assert all(math.isnan(value) for value in values[("A1", as_of[0])])
    assert values[("A2", as_of[0])] == (1.0, 365.0, 2)
    assert values[("A1", as_of[1])] == (0.0, 10.0, 0)
    assert values[("A2", as_of[1])] == (1.0, 365.0, 2)


def test_champion_move_seen_from_its_load(tmp_path: Path) -> None:
    today = datetime.combine(now().date(), datetime.min.time())
    left_at = today - timedelta(days=10)
    changes = _csv("contact_id,changed_at,change", [("C1", left_at.date().isoformat(), "left_company")])
    files = {
        "accounts.csv": "account_id\nA1\nA2\n",
        "contacts.csv": CHAMPIONS_BEFORE_MOVE,
        "changes.csv": changes,
    }
    workspace = _workspace(tmp_path, CHAMPION_SOURCES, files)
    _ingest(workspace)
    (tmp_path / "contacts.csv").write_text(CHAMPIONS_AFTER_MOVE, encoding="utf-8")
    _ingest(workspace)
    before_move_load = today - timedelta(days=2)
    after_move_load = today + timedelta(days=2)

    values = _champion_columns(workspace, [before_move_load, after_move_load])

    # Until the second load C1 is A1's champion who left; from then on also a champion in seat at A2.
    assert values[("A1", before_move_load)] == (0.0, 8.0, 0)
    assert values[("A2", before_move_load)] == (1.0, 365.0, 1)
    assert values[("A1", after_move_load)] == (0.0, 12.0, 0)
    assert values[("A2", after_move_load)] == (1.0, 365.0, 2)


def test_champion_departure_needs_a_champion(tmp_path: Path) -> None:
    contacts = _csv(
        "contact_id,account_id,email,is_champion",
        [("C1", "A1", "c1@a1.test", "false"), ("C2", "A2", "c2@a2.test", "true")],
    )
    untagged = _csv(
        "contact_id,account_id,email,is_champion",
        [("C1", "A1", "c1@a1.test", "false"), ("C2", "A2", "c2@a2.test", "false")],
    )
    changes = _csv(
        "contact_id,changed_at,change",
        [("C1", "2025-03-01", "left_company"), ("C2", "2025-03-01", "left_company")],
    )
    files = {"accounts.csv": "account_id\nA1\nA2\n", "contacts.csv": contacts, "changes.csv": changes}
    workspace = _workspace(tmp_path, CHAMPION_SOURCES, files)
    _ingest(workspace)
    (tmp_path / "contacts.csv").write_text(untagged, encoding="utf-8")
    with open_analytical_store(workspace.analytical_store_path) as store:
        ingest(workspace, store, backfill=True)
    as_of = datetime(2025, 3, 11)

    values = _champion_columns(workspace, [as_of])

    # C1 was no champion when leaving. The CRM untagged C2 after C2 left, which still counts as a
    # champion's departure at A2.
    assert all(math.isnan(value) for value in values[("A1", as_of)])
    assert values[("A2", as_of)] == (0.0, 10.0, 0)


def test_champion_untagged_or_moved_leaves_none_in_seat(tmp_path: Path) -> None:
    """An account whose only champion loses the tag or moves away has no champion in seat, which is a
    value, not missing like an account that never had one."""
    tagged = _csv(
        "contact_id,account_id,email,is_champion",
        [("C1", "A1", "c1@a1.test", "true"), ("C2", "A2", "c2@a2.test", "true")],
    )
    later = _csv(
        "contact_id,account_id,email,is_champion",
        [("C1", "A1", "c1@a1.test", "false"), ("C2", "A3", "c2@a3.test", "true")],
    )
    files = {
        "accounts.csv": "account_id\nA1\nA2\nA3\nA4\n",
        "contacts.csv": tagged,
        "changes.csv": "contact_id,changed_at,change\n",
    }
    workspace = _workspace(tmp_path, CHAMPION_SOURCES, files)
    with open_analytical_store(workspace.analytical_store_path) as store:
        ingest(workspace, store, backfill=True)
    (tmp_path / "contacts.csv").write_text(later, encoding="utf-8")
    _ingest(workspace)
    before = datetime(2025, 3, 11)
    after = (datetime.now(UTC) + timedelta(days=2)).replace(
        tzinfo=None, hour=0, minute=0, second=0, microsecond=0
    )

    values = _champion_columns(workspace, [before, after])

    assert values[("A1", before)] == (1.0, 365.0, 1)
    assert values[("A2", before)] == (1.0, 365.0, 1)
    assert values[("A1", after)] == (0.0, 365.0, 0)
    assert values[("A2", after)] == (0.0, 365.0, 0)
    assert values[("A3", after)] == (1.0, 365.0, 1)
    for account, as_of in [("A3", before), ("A4", before), ("A4", after)]:
        assert all(math.isnan(value) for value in values[(account, as_of)])


def test_integrations_count_each_name_once(tmp_path: Path) -> None:
    integrations = _csv(
        "account_id,integration,connected_at,disconnected_at",
        [
            # Reconnected without the first connection ever being closed, once in another case.
            ("A1", "jira", "2024-01-01", None),
            ("A1", "Jira", "2024-05-01", None),
            # Two overlapping connections that end at different dates.
            ("A1", "slack", "2024-01-01", "2024-05-20"),
            ("A1", "slack", "2024-05-10", "2024-07-01"),
        ],
    )
    sources = (
        ACCOUNTS_SOURCE + '[sources.integrations]\ntable = "integrations"\nfiles = ["integrations.csv"]\n'
    )
    workspace = _workspace(
        tmp_path, sources, {"accounts.csv": "account_id\nA1\n", "integrations.csv": integrations}
    )
    _ingest(workspace)
    instants = [datetime(2024, 3, 1), datetime(2024, 6, 1), datetime(2024, 7, 2), datetime(2024, 9, 1)]

    result = _signals(workspace, instants)
    with open_analytical_store(workspace.analytical_store_path) as store:
        backfill_signals(workspace, store, instants)
        backfilled = store.connection.execute("SELECT * FROM signal_backfill").df()

    columns = ["integrations_active", "integrations_change_90d"]
    expected = {
        datetime(2024, 3, 1): (2.0, 2.0),
        datetime(2024, 6, 1): (2.0, 0.0),  # 90 days earlier, 2024-03-03: jira and slack
        datetime(2024, 7, 2): (1.0, -1.0),
        datetime(2024, 9, 1): (1.0, -1.0),  # 90 days earlier, 2024-06-03: slack still connected
    }
    assert {as_of: tuple(result.loc[("A1", as_of), columns]) for as_of in instants} == expected
    backfilled = backfilled.set_index(["account_id", "as_of"])
    assert {as_of: tuple(backfilled.loc[("A1", as_of), columns]) for as_of in instants} == expected


def test_integrations_active_and_change(tmp_path: Path) -> None:
    integrations = _csv(
        "account_id,integration,connected_at,disconnected_at",
        [
            ("A1", "slack", "2024-01-01", None),
            ("A1", "github", "2024-01-01", "2024-05-01"),
            ("A1", "jira", "2024-04-01", None),
            ("A1", "salesforce", "2024-05-01", None),
        ],
    )
    sources = (
        ACCOUNTS_SOURCE + '[sources.integrations]\ntable = "integrations"\nfiles = ["integrations.csv"]\n'
    )
    workspace = _workspace(
        tmp_path, sources, {"accounts.csv": "account_id\nA1\nA2\n", "integrations.csv": integrations}
    )
    _ingest(workspace)
    as_of = datetime(2024, 6, 1)

    result = _signals(workspace, [as_of])

    # At as_of: slack, jira, salesforce. 90 days earlier (2024-03-03): slack, github.
    assert result.loc[("A1", as_of), "integrations_active"] == 3.0
    assert result.loc[("A1", as_of), "integrations_change_90d"] == 1.0
    assert result.loc[("A2", as_of), "integrations_active"] == 0.0
    assert result.loc[("A2", as_of), "integrations_change_90d"] == 0.0


def test_unconfigured_signals_are_missing(tmp_path: Path) -> None:
    sources = ACCOUNTS_SOURCE + '[sources.tickets]\ntable = "tickets"\nfiles = ["tickets.csv"]\n'
    tickets = _csv("ticket_id,account_id,created_at,priority", [("T1", "A1", "2024-05-20", "high")])
    workspace = _workspace(
        tmp_path, sources, {"accounts.csv": "account_id\nA1\nA2\n", "tickets.csv": tickets}
    )
    _ingest(workspace)
    as_of = datetime(2024, 6, 1)

    result = _signals(workspace, [as_of])

    for feature in (
        "usage_trend",
        "sentiment_score",
        "champion_in_seat",
        "days_since_champion_departure",
        "integrations_active",
        "integrations_change_90d",
    ):
        assert result[feature].isna().all(), feature
    assert result.loc[("A1", as_of), "support_load"] == 2.0
    assert result.loc[("A2", as_of), "support_load"] == 0.0


@pytest.mark.parametrize(
    ("weights", "expected"), [("{}", 3.0), ("{ urgent = 5.0 }", 7.0), ("{ normal = 2.0 }", 6.0)]
)
def test_support_weights_left_out(tmp_path: Path, weights: str, expected: float) -> None:
    tickets = _csv(
        "ticket_id,account_id,created_at,priority",
        [
            ("T1", "A1", "2024-02-20", "urgent"),
            ("T2", "A1", "2024-02-21", "low"),
            ("T3", "A1", "2024-02-22", ""),
        ],
    )
    sources = ACCOUNTS_SOURCE + (
        f'[sources.tickets]\ntable = "tickets"\nfiles = ["tickets.csv"]\n\n[signals]\nseverity_weights = {weights}\n'
    )
    workspace = _workspace(tmp_path, sources, {"accounts.csv": "account_id\nA1\n", "tickets.csv": tickets})
    _ingest(workspace)
    as_of = datetime(2024, 3, 1)

    result = _signals(workspace, [as_of])

    # A priority left out weighs as normal, and normal as 1.0 when it is left out too.
    assert result.loc[("A1", as_of), "support_load"] == pytest.approx(expected)


def test_events_fall_back_to_daily_feed(tmp_path: Path) -> None:
    end_day = date(2024, 2, 29)
    window = [end_day - timedelta(days=offset) for offset in range(WINDOW_DAYS - 1, -1, -1)]
    counts = {day: float(60 - 2 * index) for index, day in enumerate(window)}
    daily = [(account, day.isoformat(), None, counts[day]) for account in ("D1", "D2") for day in window]
    # D1 moves to event tracking after the first snapshot; E1 only ever sends events.
    events = [("X1", "D1", "u1", "2024-03-20T10:00:00Z"), ("X2", "E1", "u2", "2024-02-28T10:00:00Z")]
    sources = ACCOUNTS_SOURCE + textwrap.dedent(
        """\
        [sources.usage]
        table = "usage_daily"
        files = ["usage.csv"]

        [sources.events]
        table = "usage_events"
        files = ["events.csv"]
        """
    )
    files = {
        "accounts.csv": "account_id\nD1\nD2\nE1\n",
        "usage.csv": _csv("account_id,day,active_users,event_count", daily),
        "events.csv": _csv("event_id,account_id,user_id,occurred_at", events),
    }
    workspace = _workspace(tmp_path, sources, files)
    _ingest(workspace)
    first, later = datetime(2024, 3, 1), datetime(2024, 3, 22)

    result = _signals(workspace, [first, later])
    with open_analytical_store(workspace.analytical_store_path) as store:
        backfill_signals(workspace, store, [first, later])
        backfilled = store.connection.execute("SELECT * FROM signal_backfill").df()

    by_count = _slope([counts[day] for day in window])
    # Before its first event, D1 keeps the feed's usage, as D2 does throughout.
    assert result.loc[("D1", first), "usage_measure"] == "event_count"
    assert result.loc[("D1", first), "usage_trend"] == pytest.approx(by_count, abs=1e-12)
    assert result.loc[("D2", first), "usage_trend"] == pytest.approx(by_count, abs=1e-12)
    assert result.loc[("E1", first), "usage_measure"] == "dau_mau"
    assert result.loc[("E1", first), "usage_level"] > 0
    # Once its window has an active user, D1's usage comes from its events.
    assert result.loc[("D1", later), "usage_measure"] == "dau_mau"
    assert result.loc[("D1", later), "usage_level"] == pytest.approx(1.0 / WINDOW_DAYS)
    columns = ["usage_trend", "usage_level", "usage_measure"]
    backfilled = backfilled.set_index(["account_id", "as_of"]).loc[result.index, columns]
    pd.testing.assert_frame_equal(backfilled, result[columns], check_dtype=False, check_index_type=False)
