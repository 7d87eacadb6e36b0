"""The signal expressions give the same results on DuckDB and on Spark, over edge-case data.

One ingest into DuckDB, exported as Parquet for Spark. Every signal and detail is computed on both
engines at instants chosen to sit on the edges: local midnights, daylight-saving switches in four
timezones, the instant a late load becomes visible, tickets created and integrations disconnected
exactly at as_of. `engines.assert_same` defines "the same".
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import ibis
import numpy as np
import pandas as pd
import pytest

from account_health.config import CONFIG_FILE, Workspace, load_workspace
from account_health.signals import DETAILS, FEATURES, compute_signals
from account_health.signals.backfill import backfill_signals
from account_health.signals.context import SignalContext, build_context, local_day
from account_health.signals.integrations import integrations_series, integrations_signal
from account_health.signals.support import support_series, support_signal
from account_health.signals.usage import active_user_days, active_users_in_window, usage_signal
from account_health.sources.ingest import ingest
from account_health.store.analytical import AnalyticalStore, open_analytical_store
from account_health.store.parquet_export import export_parquet
from account_health.store.spark import SparkTables
from engines import assert_same

DEFAULT_ZONE = "Australia/Lord_Howe"  # half-hour daylight-saving shift
ZONES = {
    "A-NY": "America/New_York",
    "A-BER": "Europe/Berlin",
    "A-LHW": "",  # no timezone: the default above
    "A-KTM": "Asia/Kathmandu",  # UTC+05:45
    "A-GAP": "UTC",
    "A-NOUSERS": "America/Los_Angeles",
    "A-EMPTY": "Europe/Berlin",
    "A-LATE": "America/New_York",
    "A-TWIN": "America/New_York",
}
# A-LATE gets everything A-TWIN gets, plus rows that only become available at LATE_AT, among them a
# move to another timezone.
LATE_AT = datetime(2024, 3, 20, 12, 0)
MICROSECOND = timedelta(microseconds=1)
AS_OF = [
    datetime(2024, 1, 1),
    datetime(2024, 2, 15),
    datetime(2024, 3, 1, 5),  # New York midnight (EST); a ticket and a disconnection at this instant
    datetime(2024, 3, 10, 7),  # New York 03:00 EDT, just after the spring-forward gap
    datetime(2024, 3, 11, 4),  # New York midnight (EDT)
    LATE_AT - MICROSECOND,
    LATE_AT,  # strictly before: the late rows are still invisible
    LATE_AT + MICROSECOND,
    datetime(2024, 3, 31, 1),  # Berlin switches to CEST
    datetime(2024, 3, 31, 2),
    datetime(2024, 4, 1),  # a Kathmandu integration connected at this instant
    datetime(2024, 4, 6, 13),  # Lord Howe midnight (+11)
    datetime(2024, 4, 6, 15),  # Lord Howe falls back half an hour
    datetime(2024, 4, 22),
]
LAG = timedelta(hours=6)
# The edge instants, with those around LATE_AT moved back by the lag, and instants between the two.
LAG_AS_OF = sorted(
    {
        *AS_OF,
        LATE_AT - LAG - MICROSECOND,
        LATE_AT - LAG,
        LATE_AT - LAG + MICROSECOND,
        LATE_AT - timedelta(hours=3),
        # Tickets of A-NY change in versions available from 03-15 00:00: seen after 03-14 18:00.
        datetime(2024, 3, 14, 18),
        datetime(2024, 3, 14, 18) + MICROSECOND,
    }
)


CONFIG = """\
[workspace]
analytical_store = "analytical.duckdb"

[sources.accounts]
table = "accounts"
files = ["accounts.csv"]

[sources.late_accounts]
table = "accounts"
files = ["late_accounts.csv"]
loaded_at = "synced_at"

[sources.users]
table = "users"
files = ["users.csv"]

[sources.events]
table = "usage_events"
files = ["events.csv"]

[sources.late_events]
table = "usage_events"
files = ["late_events.csv"]
loaded_at = "synced_at"

[sources.daily]
table = "usage_daily"
files = ["daily.csv"]

[sources.late_daily]
table = "usage_daily"
files = ["late_daily.csv"]
loaded_at = "synced_at"

[sources.tickets]
table = "tickets"
files = ["tickets.csv"]

[sources.ticket_updates]
table = "tickets"
files = ["ticket_updates.csv"]
loaded_at = "synced_at"

[sources.responses]
table = "sentiment_responses"
files = ["responses.csv"]

[sources.late_responses]
table = "sentiment_responses"
files = ["late_responses.csv"]
loaded_at = "synced_at"

[sources.contacts]
table = "contacts"
files = ["contacts.csv"]

[sources.contact_moves]
table = "contacts"
files = ["contact_moves.csv"]
loaded_at = "synced_at"

[sources.changes]
table = "contact_changes"
files = ["changes.csv"]

[sources.integrations]
table = "integrations"
files = ["integrations.csv"]

[signals]
# The edge instants below test the strict rule; test_knowledge_lag_agrees sets a lag of 6 hours.
knowledge_lag_hours = 0
default_timezone = "{default_zone}"
internal_user_patterns = ["svc_*", "bot-?"]
internal_email_domains = ["ourco.test"]
"""


def _utc(account: str, day: date, clock: time) -> datetime:
    """The UTC instant of a local wall-clock time at the account (fold 0 in gaps and overlaps)."""
    zone = ZoneInfo(ZONES[account] or DEFAULT_ZONE)
    return datetime.combine(day, clock, tzinfo=zone).astimezone(UTC).replace(tzinfo=None)


def _iso(instant: datetime) -> str:
    return instant.isoformat(timespec="microseconds") + "Z"


def _csv(path: Path, header: str, rows: list[tuple[Any, ...]]) -> None:
    lines = [header] + [",".join("" if value is None else str(value) for value in row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


# Local clock times that sit on day edges and inside daylight-saving gaps and overlaps.
EDGE_TIMES = (time(0, 0), time(23, 59, 59, 999999), time(2, 30), time(1, 30), time(12, 0), time(0, 0, 0, 1))


def _usage_rows(
    rng: np.random.Generator, account: str, users: list[str], prefix: str
) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    day = date(2024, 1, 1)
    while day <= date(2024, 4, 21):
        for user in users:
            if rng.random() < 0.35:
                clock = EDGE_TIMES[int(rng.integers(len(EDGE_TIMES)))]
                event_id = f"{prefix}{len(rows)}"
                row = (event_id, account, user, _iso(_utc(account, day, clock)), "view")
                rows.append(row)
                if rng.random() < 0.1:
                    rows.append(row)  # the same event exported twice
        day += timedelta(days=1)
    return rows


def _gap_rows() -> list[tuple[Any, ...]]:
    """Gaps of 27, 28 and 29 days between one user's active days, and one of more than 60."""
    start = date(2024, 1, 2)
    days = [start, start + timedelta(days=27), start + timedelta(days=55), start + timedelta(days=84)]
    rows = [
        (f"G1-{i}", "A-GAP", "g1", _iso(_utc("A-GAP", day, time(9))), "view") for i, day in enumerate(days)
    ]
    other = [date(2024, 1, 10), *(date(2024, 3, 15) + timedelta(days=i) for i in range(6))]
    rows += [
        (f"G2-{i}", "A-GAP", "g2", _iso(_utc("A-GAP", day, time(23, 59))), "view")
        for i, day in enumerate(other)
    ]
    return rows


def write_fixture(folder: Path) -> Workspace:
    rng = np.random.default_rng(20240310)
    (folder / CONFIG_FILE).write_text(CONFIG.format(default_zone=DEFAULT_ZONE), encoding="utf-8")
    _csv(folder / "accounts.csv", "account_id,timezone", [(account, zone) for account, zone in ZONES.items()])
    # A-LATE moves to Tokyo at LATE_AT: snapshots before it still cut A-LATE's days in New York, as A-TWIN's.
    _csv(
        folder / "late_accounts.csv",
        "account_id,timezone,synced_at",
        [("A-LATE", "Asia/Tokyo", _iso(LATE_AT))],
    )

    # Internal users: a users-table flag, an email domain (any case, after a display name), and the
    # globs svc_* and bot-?.
    # svcXsync and bot-12 do not match the globs (a LIKE pattern with `_` would match svcXsync).
    users = ["n1", "n2", "n3", "n-staff", "n-vendor", "svc_sync", "svcXsync", "bot-1", "bot-12"]
    _csv(
        folder / "users.csv",
        "user_id,account_id,email,is_internal",
        [
            ("n1", "A-NY", "n1@customer.test", "false"),
            ("n2", "A-NY", "n2@customer.test", None),
            ("n-staff", "A-NY", "staff@customer.test", "true"),
            ("n-vendor", "A-NY", "Vendor Desk <Vendor@OurCo.TEST>", "false"),
            ("b1", "A-BER", "b1@kunde.test", "false"),
        ],
    )
    events: list[tuple[Any, ...]] = []
    events += _usage_rows(rng, "A-NY", users, "NY")
    events += _usage_rows(rng, "A-BER", ["b1", "b2", "b3"], "BER")
    events += _usage_rows(rng, "A-LHW", ["l1", "l2"], "LHW")
    events += _usage_rows(rng, "A-KTM", ["k1", "k2", "k3"], "KTM")
    events += _usage_rows(rng, "A-NOUSERS", ["x1", "x2"], "NOU")
    events += _gap_rows()
    twin = _usage_rows(rng, "A-TWIN", ["t1", "t2", "t3"], "TWIN")
    events += twin
    events += [(f"LATE{row[0][4:]}", "A-LATE", *row[2:]) for row in twin]
    # A second version of an event under another user: the event counts once, in its first version.
    first = events[0]
    events.append((first[0], first[1], "n3", first[3], "view"))
    _csv(folder / "events.csv", "event_id,account_id,user_id,occurred_at,event", events)

    synced = _iso(LATE_AT)
    late_events = [
        (
            f"LL{i}",
            "A-LATE",
            "t-late",
            _iso(_utc("A-LATE", date(2024, 3, 1) + timedelta(days=i), time(10))),
            synced,
        )
        for i in range(10)
    ]
    # A late re-send of an early event under a new user changes nothing.
    late_events.append(("LATE0", "A-LATE", "t-resent", _iso(datetime(2024, 1, 1, 12)), synced))
    _csv(folder / "late_events.csv", "event_id,account_id,user_id,occurred_at,synced_at", late_events)

    daily = []
    for account in ("A-NY", "A-BER", "A-GAP", "A-LATE", "A-TWIN"):
        for offset in range(0, 110, 1 + len(account) % 3):
            day = date(2024, 1, 1) + timedelta(days=offset)
            active = None if offset % 7 == 3 else float(offset % 5 + 1)
            daily.append((account, day.isoformat(), active, float(offset % 11 * 3)))
    _csv(folder / "daily.csv", "account_id,day,active_users,event_count", daily)
    _csv(
        folder / "late_daily.csv",
        "account_id,day,active_users,event_count,synced_at",
        [
            ("A-LATE", "2024-03-02", 9.0, 40.0, synced),  # a day A-TWIN lacks
            ("A-LATE", "2024-03-04", 8.0, 35.0, synced),  # a later correction of a day both have
        ],
    )

    tickets = [
        ("T-NY-1", "A-NY", "2024-02-01T10:00:00Z", None, "urgent", "open"),
        ("T-NY-2", "A-NY", "2024-01-20T10:00:00Z", "2024-02-20T00:00:00Z", "high", "solved"),
        ("T-NY-3", "A-NY", "2024-01-25T23:00:00Z", None, "normal", "closed"),
        ("T-NY-4", "A-NY", "2024-03-01T05:00:00Z", None, "low", "open"),
        ("T-NY-5", "A-NY", "2024-02-10T00:00:00Z", None, None, "open"),
        ("T-NY-6", "A-NY", "2023-11-15T00:00:00Z", None, "urgent", "open"),
        ("T-BER-1", "A-BER", "2024-03-31T00:30:00Z", None, "urgent", "pending"),
        ("T-BER-2", "A-BER", "2024-03-31T01:00:00Z", None, "high", "Deleted"),
        ("T-KTM-1", "A-KTM", "2024-01-05T00:00:00Z", "2024-04-01T00:00:00Z", "low", "solved"),
        ("T-TW-1", "A-TWIN", "2024-02-05T12:00:00Z", None, "high", "open"),
        ("T-LA-1", "A-LATE", "2024-02-05T12:00:00Z", None, "high", "open"),
        # Reopened with the date of an earlier solve kept; solved without a status; solved, then reopened.
        ("T-GAP-1", "A-GAP", "2024-01-10T00:00:00Z", "2024-01-20T00:00:00Z", "normal", "open"),
        ("T-GAP-2", "A-GAP", "2024-01-12T00:00:00Z", "2024-02-01T00:00:00Z", "high", None),
        ("T-GAP-3", "A-GAP", "2024-01-15T00:00:00Z", "2024-02-10T00:00:00Z", "low", "solved"),
    ]
    _csv(folder / "tickets.csv", "ticket_id,account_id,created_at,solved_at,priority,status", tickets)
    _csv(
        folder / "ticket_updates.csv",
        "ticket_id,account_id,created_at,solved_at,priority,status,synced_at",
        [
            (
                "T-NY-1",
                "A-NY",
                "2024-02-01T10:00:00Z",
                "2024-03-14T00:00:00Z",
                "urgent",
                "solved",
                "2024-03-15T00:00:00Z",
            ),
            ("T-NY-5", "A-NY", "2024-02-10T00:00:00Z", None, None, "deleted", "2024-03-15T00:00:00Z"),
            ("T-LA-2", "A-LATE", "2024-03-05T00:00:00Z", None, "urgent", "open", synced),
            (
                "T-GAP-3",
                "A-GAP",
                "2024-01-15T00:00:00Z",
                "2024-02-10T00:00:00Z",
                "low",
                "open",
                "2024-03-15T00:00:00Z",
            ),
        ],
    )

    responses = [
        ("A-NY", "2024-01-15T00:00:00Z", "nps", 9, None, None, None),
        ("A-NY", "2024-03-01T04:59:59.999999Z", "nps", 6, None, None, None),
        ("A-NY", "2024-02-01T00:00:00Z", "survey", 4, None, "1-5", None),
        ("A-NY", "2024-02-02T00:00:00Z", "call", None, "positive", None, None),
        ("A-NY", "2024-02-03T00:00:00Z", "call", None, "neutral", None, None),
        ("A-NY", "2024-02-04T00:00:00Z", "nps", 1, None, None, "true"),
        ("A-NY", "2023-03-12T00:00:00Z", "nps", 2, None, None, None),
        ("A-BER", "2024-03-31T01:00:00Z", "survey", 70, None, "0-100", None),
        # Two NPS responses at the same instant: the latest NPS must not depend on the engine's order.
        ("A-KTM", "2024-02-20T06:00:00Z", "nps", 4, None, None, None),
        ("A-KTM", "2024-02-20T06:00:00Z", "nps", 9, None, None, None),
        ("A-BER", "2024-03-30T23:00:00Z", "call", None, "negative", None, None),
        ("A-TWIN", "2024-02-01T00:00:00Z", "nps", 8, None, "0-10", None),
        ("A-LATE", "2024-02-01T00:00:00Z", "nps", 8, None, None, None),
    ]
    _csv(folder / "responses.csv", "account_id,responded_at,kind,score,tag,scale,dismissed", responses)
    _csv(
        folder / "late_responses.csv",
        "account_id,responded_at,kind,score,synced_at",
        [("A-LATE", "2024-03-06T00:00:00Z", "nps", 3, synced)],
    )

    _csv(
        folder / "contacts.csv",
        "contact_id,account_id,email,is_champion",
        [
            ("C1", "A-NY", "c1@customer.test", "true"),
            ("C2", "A-NY", "c2@customer.test", "true"),
            ("C3", "A-NY", "c3@customer.test", "false"),
            ("C4", "A-BER", "c4@kunde.test", "true"),
            ("C5", "A-KTM", "c5@ktm.test", "true"),
            ("C6", "A-GAP", "c6@gap.test", "false"),
            ("C7", "A-GAP", "c7@gap.test", "true"),
        ],
    )
    # The CRM moves C7 to A-BER before C7 leaves, and C4 to A-KTM after C4 left A-BER: each departure
    # belongs to the account the contact was at when leaving.
    _csv(
        folder / "contact_moves.csv",
        "contact_id,account_id,email,is_champion,synced_at",
        [
            ("C7", "A-BER", "c7@kunde.test", "true", "2024-02-01T00:00:00Z"),
            ("C4", "A-KTM", "c4@ktm.test", "true", "2024-04-05T00:00:00Z"),
        ],
    )
    _csv(
        folder / "changes.csv",
        "contact_id,changed_at,change",
        [
            ("C2", "2024-02-10T03:00:00Z", "left_company"),
            ("C2", "2024-03-10T07:00:00Z", "left_company"),
            ("C4", "2024-01-01T00:00:00Z", "title_change"),
            ("C4", "2024-03-31T01:00:00Z", "left_company"),
            ("C5", "2024-02-01T00:00:00Z", "email_bounced"),
            ("C7", "2024-03-15T00:00:00Z", "left_company"),
        ],
    )
    _csv(
        folder / "integrations.csv",
        "account_id,integration,connected_at,disconnected_at",
        [
            ("A-NY", "slack", "2023-12-01T00:00:00Z", None),
            ("A-NY", "github", "2024-01-10T00:00:00Z", "2024-03-01T05:00:00Z"),
            # A reconnection whose first connection was never closed, in another case: one integration.
            ("A-NY", "Slack", "2024-02-15T00:00:00Z", None),
            ("A-BER", "jira", "2024-02-01T00:00:00Z", "2024-03-10T00:00:00Z"),
            ("A-BER", "jira", "2024-03-01T00:00:00Z", "2024-03-10T07:00:00Z"),
            ("A-KTM", "zapier", "2024-04-01T00:00:00Z", None),
        ],
    )
    return load_workspace(folder)


@dataclass
class Fixture:
    workspace: Workspace
    store: AnalyticalStore
    parquet: Path


@pytest.fixture(scope="module")
def fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fixture]:
    folder = tmp_path_factory.mktemp("conformance")
    workspace = write_fixture(folder)
    with open_analytical_store(workspace.analytical_store_path) as store:
        report = ingest(workspace, store)
        assert sum(counts.quarantined for counts in report.sources) == 0
        export_parquet(store, folder / "parquet")
        yield Fixture(workspace, store, folder / "parquet")


def _variant(workspace: Workspace, **signals: Any) -> Workspace:
    """The same workspace with other [signals] settings, or without some sources."""
    drop = signals.pop("drop_sources", ())
    config = workspace.config.model_copy(
        update={
            "signals": workspace.config.signals.model_copy(update=signals),
            "sources": {
                name: source for name, source in workspace.config.sources.items() if name not in drop
            },
        }
    )
    return Workspace(config, workspace.root)


def _both(
    fixture: Fixture, workspace: Workspace, spark_session: Any, as_of: list[datetime] = AS_OF
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every signal and detail at every instant, from DuckDB and from Spark."""
    duck = compute_signals(workspace, fixture.store, as_of)
    tables = SparkTables(spark_session, str(fixture.parquet))
    try:
        spark = compute_signals(workspace, fixture.store, as_of, tables)
    finally:
        tables.close()
    return duck, spark


def _one_signal_on_both(
    fixture: Fixture,
    workspace: Workspace,
    spark_session: Any,
    build: Callable[[SignalContext], ibis.Table],
    as_of: list[datetime] = AS_OF,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One signal's expression at every instant, from DuckDB and from Spark, numbers as float64."""
    snapshots = ibis.memtable(pd.DataFrame({"as_of": pd.to_datetime(as_of)}))
    tables = SparkTables(spark_session, str(fixture.parquet))
    frames = []
    try:
        for source in (fixture.store, tables):
            expression = build(build_context(workspace, source, snapshots)).order_by(["as_of", "account_id"])
            frame = source.ibis.execute(expression)
            for column in frame.columns:
                if column not in ("account_id", "as_of", "usage_measure"):
                    frame[column] = pd.to_numeric(frame[column]).astype("float64")
            frame["as_of"] = pd.to_datetime(frame["as_of"]).astype("datetime64[us]")
            frames.append(frame)
    finally:
        tables.close()
    return frames[0], frames[1]


def _rows(frame: pd.DataFrame, account: str) -> pd.DataFrame:
    return frame[frame["account_id"] == account].set_index("as_of").drop(columns="account_id")


def assert_late_rows_wait(frame: pd.DataFrame, lag: timedelta = timedelta(0)) -> None:
    """A-LATE equals its twin at every instant up to LATE_AT - lag, and differs once its late rows are
    visible (once the knowledge cut-off, as_of + lag, lies after LATE_AT)."""
    late, twin = _rows(frame, "A-LATE"), _rows(frame, "A-TWIN")
    before = late.index <= pd.Timestamp(LATE_AT - lag)
    pd.testing.assert_frame_equal(late[before], twin[before])
    after = pd.Timestamp(LATE_AT - lag + MICROSECOND)
    assert not late.loc[after].equals(twin.loc[after])


@pytest.mark.slow
def test_every_signal_agrees(fixture: Fixture, spark_session: Any) -> None:
    duck, spark = _both(fixture, fixture.workspace, spark_session)

    assert list(duck.columns) == ["account_id", "as_of", *FEATURES, *DETAILS]
    assert_same(duck, spark)
    for frame in (duck, spark):
        assert_late_rows_wait(frame)
    # Where an account's window has no active user, the daily feed's usage replaces the events'.
    assert "dau_mau" in set(duck["usage_measure"])
    assert set(duck["usage_measure"]) <= {"dau_mau", "active_users", "event_count"}
    # Every feature has non-zero values somewhere, so the comparison covers them all.
    for column in FEATURES:
        assert (duck[column].fillna(0) != 0).any(), column
    empty = _rows(duck, "A-EMPTY")
    assert (empty["usage_trend"] == 0).all()
    assert empty["sentiment_score"].isna().all()
    assert_departures_stay(duck)
    assert_reopened_tickets_open(duck)


def assert_departures_stay(frame: pd.DataFrame) -> None:
    """C4 left A-BER on 03-31 and then moved to A-KTM; C7 moved from A-GAP to A-BER and then left."""
    last = pd.Timestamp(AS_OF[-1])
    berlin, kathmandu, gap = (_rows(frame, account).loc[last] for account in ("A-BER", "A-KTM", "A-GAP"))
    assert berlin["champion_in_seat"] == 0
    assert berlin["days_since_champion_departure"] == pytest.approx(
        (last - pd.Timestamp(2024, 3, 31, 1)) / pd.Timedelta(days=1)
    )
    assert kathmandu["champions_in_seat"] == 2
    assert kathmandu["champion_in_seat"] == 1
    # A-GAP lost its only champion to the move, which is not a departure from A-GAP.
    assert (gap["champion_in_seat"], gap["champions_in_seat"]) == (0, 0)
    assert gap["days_since_champion_departure"] == 365
    assert _rows(frame, "A-GAP").loc[pd.Timestamp(AS_OF[0]), "champions_in_seat"] == 1


def assert_reopened_tickets_open(frame: pd.DataFrame) -> None:
    """T-GAP-1 keeps an old solved_at while open; T-GAP-2 has no status; T-GAP-3 reopens on 03-15."""
    backlog = _rows(frame, "A-GAP")["support_open_backlog"]
    assert backlog.loc[pd.Timestamp(2024, 2, 15)] == 1
    assert backlog.loc[pd.Timestamp(AS_OF[-1])] == 2


@pytest.mark.slow
def test_knowledge_lag_agrees(fixture: Fixture, spark_session: Any) -> None:
    """With a 6-hour knowledge lag both engines, and the backfill, see the late rows 6 hours earlier."""
    workspace = _variant(fixture.workspace, knowledge_lag_hours=6.0)
    duck, spark = _both(fixture, workspace, spark_session, LAG_AS_OF)

    assert_same(duck, spark)
    for frame in (duck, spark):
        assert_late_rows_wait(frame, LAG)
    strict = compute_signals(fixture.workspace, fixture.store, LAG_AS_OF)
    # The updates synced on 03-15 00:00, T-NY-1 solved on 03-14 and T-NY-5 deleted, take both tickets
    # out of the open backlog 6 hours earlier.
    backlog = {
        name: _rows(frame, "A-NY")["support_open_backlog"]
        for name, frame in (("lag", duck), ("strict", strict))
    }
    solved_seen = pd.Timestamp(datetime(2024, 3, 14, 18) + MICROSECOND)
    assert backlog["lag"].loc[solved_seen] == backlog["strict"].loc[solved_seen] - 2
    assert (
        backlog["lag"].loc[pd.Timestamp(2024, 3, 14, 18)]
        == backlog["strict"].loc[pd.Timestamp(2024, 3, 14, 18)]
    )

    report = backfill_signals(workspace, fixture.store, LAG_AS_OF, table="lag_backfill", block_instants=5)
    backfilled = fixture.store.connection.execute("SELECT * FROM lag_backfill").df()
    fixture.store.connection.execute("DROP TABLE lag_backfill")
    assert report.dirty_pairs > 0
    backfilled = backfilled.sort_values(["as_of", "account_id"]).reset_index(drop=True)
    backfilled["as_of"] = pd.to_datetime(backfilled["as_of"]).astype("datetime64[us]")
    assert_same(duck, backfilled[list(duck.columns)])


@pytest.mark.slow
def test_backfill_agrees_with_compute_signals(fixture: Fixture) -> None:
    """The backfill's own paths (usage series, interval sums, blocks of instants) give compute_signals' values."""
    report = backfill_signals(
        fixture.workspace, fixture.store, AS_OF, table="conformance_backfill", block_instants=5
    )
    backfilled = fixture.store.connection.execute("SELECT * FROM conformance_backfill").df()
    fixture.store.connection.execute("DROP TABLE conformance_backfill")
    expected = compute_signals(fixture.workspace, fixture.store, AS_OF)

    assert report.instants == len(AS_OF)
    backfilled = backfilled.sort_values(["as_of", "account_id"]).reset_index(drop=True)
    backfilled["as_of"] = pd.to_datetime(backfilled["as_of"]).astype("datetime64[us]")
    assert_same(expected, backfilled[list(expected.columns)])


@pytest.mark.parametrize(
    ("series", "signal"),
    [
        (support_series, lambda context: support_signal(context, None)),
        (integrations_series, integrations_signal),
    ],
    ids=["support", "integrations"],
)
@pytest.mark.parametrize("lag_hours", [0.0, 6.0])
def test_interval_sums_agree(
    fixture: Fixture,
    spark_session: Any,
    series: Callable[[SignalContext], ibis.Table | None],
    signal: Callable[[SignalContext], ibis.Table | None],
    lag_hours: float,
) -> None:
    """The backfill's running sums over intervals of as_of give the per-instant signal, on both engines,
    with and without a knowledge lag."""
    workspace = _variant(fixture.workspace, knowledge_lag_hours=lag_hours)

    def build(
        function: Callable[[SignalContext], ibis.Table | None],
    ) -> Callable[[SignalContext], ibis.Table]:
        def expression(context: SignalContext) -> ibis.Table:
            table = function(context)
            assert table is not None
            return table

        return expression

    duck, spark = _one_signal_on_both(fixture, workspace, spark_session, build(series), LAG_AS_OF)
    per_instant, _ = _one_signal_on_both(fixture, workspace, spark_session, build(signal), LAG_AS_OF)
    assert_same(duck, spark)
    assert_same(per_instant, duck[list(per_instant.columns)])
    assert (per_instant.drop(columns=["account_id", "as_of"]).fillna(0) != 0).any().all()


def test_support_per_active_user_agrees(fixture: Fixture, spark_session: Any) -> None:
    workspace = _variant(fixture.workspace, support_normalisation="per_active_user")

    def support(context: SignalContext) -> ibis.Table:
        table = support_signal(context, active_users_in_window(context))
        assert table is not None
        return table

    duck, spark = _one_signal_on_both(fixture, workspace, spark_session, support)

    assert_same(duck, spark)
    assert_late_rows_wait(spark)
    # Divided by active users, so not the absolute load.
    assert (duck["support_load"] < duck["support_load"].where(duck["support_tickets"] > 0).max()).any()


def test_daily_usage_feed_agrees(fixture: Fixture, spark_session: Any) -> None:
    workspace = _variant(fixture.workspace, drop_sources=("events", "late_events"))

    def usage(context: SignalContext) -> ibis.Table:
        table = usage_signal(context)
        assert table is not None
        return table

    duck, spark = _one_signal_on_both(fixture, workspace, spark_session, usage)

    assert_same(duck, spark)
    assert_late_rows_wait(spark)
    assert set(duck.loc[duck["usage_level"] > 0, "usage_measure"]) == {"active_users"}


@pytest.mark.slow
def test_long_usage_window_agrees(fixture: Fixture, spark_session: Any) -> None:
    """A 45-day window's lookback (72 days) does not fit the bit masks, so the islands compute it."""
    workspace = _variant(fixture.workspace, usage_window_days=45)

    def usage(context: SignalContext) -> ibis.Table:
        table = usage_signal(context)
        assert table is not None
        return table

    duck, spark = _one_signal_on_both(fixture, workspace, spark_session, usage)
    report = backfill_signals(workspace, fixture.store, AS_OF, table="long_window_backfill", block_instants=5)
    backfilled = fixture.store.connection.execute("SELECT * FROM long_window_backfill").df()
    fixture.store.connection.execute("DROP TABLE long_window_backfill")

    assert report.instants == len(AS_OF)
    assert_same(duck, spark)
    assert_late_rows_wait(spark)
    assert (duck["usage_trend"] != 0).any()
    backfilled = backfilled.sort_values(["as_of", "account_id"]).reset_index(drop=True)
    backfilled["as_of"] = pd.to_datetime(backfilled["as_of"]).astype("datetime64[us]")
    assert_same(duck, backfilled[list(duck.columns)])


def test_internal_users_match_globs_on_both_engines(fixture: Fixture, spark_session: Any) -> None:
    """svc_* excludes svc_sync only; svcXsync and bot-12 stay active users (no LIKE wildcards)."""
    snapshots = ibis.memtable(pd.DataFrame({"as_of": pd.to_datetime([datetime(2024, 5, 1)])}))
    tables = SparkTables(spark_session, str(fixture.parquet))
    try:
        found = []
        for source in (fixture.store, tables):
            context = build_context(fixture.workspace, source, snapshots)
            users = active_user_days(context).filter(ibis._.account_id == "A-NY").select("user_id").distinct()
            found.append(set(source.ibis.execute(users)["user_id"]))
    finally:
        tables.close()
    assert found[0] == found[1] == {"n1", "n2", "n3", "svcXsync", "bot-12"}


def test_local_day_matches_zoneinfo_on_both_engines(spark_session: Any) -> None:
    """Local days around midnights and daylight-saving switches, against Python's zoneinfo."""
    zones = ["America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "Asia/Kathmandu", "Pacific/Apia"]
    switches = [
        datetime(2024, 3, 10, 7),
        datetime(2024, 3, 31, 1),
        datetime(2024, 4, 6, 15),
        datetime(2024, 11, 3, 6),
    ]
    instants = {switch + timedelta(minutes=15 * step) for switch in switches for step in range(-100, 101)}
    rows = []
    for zone in zones:
        for instant in sorted(instants):
            for moment in (instant, instant - MICROSECOND):
                local = moment.replace(tzinfo=UTC).astimezone(ZoneInfo(zone))
                rows.append((zone, moment, local.date()))
    frame = pd.DataFrame(rows, columns=["zone", "instant", "expected"])
    frame["instant"] = pd.to_datetime(frame["instant"]).astype("datetime64[us]")
    table = ibis.memtable(frame[["zone", "instant"]])
    expected = frame["expected"].tolist()
    for backend in (ibis.duckdb.connect(), ibis.pyspark.connect(spark_session)):
        days = table.select("zone", "instant", day=local_day(table.instant, table.zone, backend.name))
        result = backend.execute(days.order_by(["zone", "instant"]))
        merged = frame.sort_values(["zone", "instant"]).reset_index(drop=True)
        got = [
            value.date() if isinstance(value, (datetime, pd.Timestamp)) else value for value in result["day"]
        ]
        mismatches = [
            (zone, instant, want, have)
            for zone, instant, want, have in zip(
                merged["zone"], merged["instant"], merged["expected"], got, strict=True
            )
            if want != have
        ]
        assert not mismatches, f"{backend.name}: {mismatches[:5]}"
    assert len(expected) == len(rows)
