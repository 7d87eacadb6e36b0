"""Generate a synthetic company: export files, a workspace config and the true churn model behind them."""

from __future__ import annotations

import json
import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from account_health.config import CONFIG_FILE, Workspace, parse_config
from account_health.signals import compute_signals
from account_health.sources.ingest import ingest
from account_health.store.analytical import AnalyticalStore, open_analytical_store
from account_health.synthetic import exports, vendor_exports
from account_health.synthetic.activity import (
    draw_contact_changes,
    draw_integrations,
    draw_responses,
    draw_tickets,
    draw_usage,
)
from account_health.synthetic.calendar import (
    HORIZON_DAYS,
    NS_PER_DAY,
    SNAPSHOT_EVERY_DAYS,
    Calendar,
    build_calendar,
    to_ns,
)
from account_health.synthetic.customers import (
    CustomerHistory,
    build_contracts,
    churn_frame,
    draw_history,
)
from account_health.synthetic.population import Population, build_population
from account_health.synthetic.truth import FEATURES, TruthModel, WeightChange, calibrate_truth

log = logging.getLogger(__name__)

GENERATOR_VERSION = "1"
# Lower bound of the first period, which also takes the rows dated before the span.
EARLIEST = np.iinfo(np.int64).min + 1
# The usage trend at T is a 28-day slope of DAU/MAU with each MAU over 28 days, so it reads the active
# user-days of the 28 + 27 local days before T. A week more covers timezones. Older usage events cannot
# change it, so the truth ingests only this many days of them before each snapshot.
# NOTE: this must grow if the engine's usage trend starts reading older events. The test that compares
# the truth's features with a one-shot ingest of the exports catches that.
USAGE_LOOKBACK_DAYS = 28 + 27 + 7
MIN_MONTHS = 6
# How the exports are laid out: the product's canonical columns, or the vendors' own formats.
LAYOUTS = ("canonical", "vendor")
# Called as progress(step, done, total) after each step; `step` is a short description.
ProgressCallback = Callable[[str, int, int], None]


@dataclass(frozen=True)
class GeneratedCompany:
    """Paths and summary counts of a generated company."""

    out_dir: Path
    config_path: Path
    exports_dir: Path
    truth_dir: Path
    accounts: int
    usage_event_rows: int
    tickets: int
    churn_events: int
    returning_accounts: int
    snapshots: tuple[datetime, ...]
    labelled_rows: int
    label_rate: float
    mean_true_probability: float
    seconds: float


@dataclass
class _Streams:
    """The activity streams of the whole span; each has a boolean `kept` column set as periods are admitted."""

    usage: pd.DataFrame
    tickets: pd.DataFrame
    responses: pd.DataFrame
    integrations: pd.DataFrame
    contact_changes: pd.DataFrame

    def items(self) -> list[tuple[str, pd.DataFrame]]:
        return [
            ("usage_events", self.usage),
            ("tickets", self.tickets),
            ("sentiment_responses", self.responses),
            ("integrations", self.integrations),
            ("contact_changes", self.contact_changes),
        ]


def generate_company(
    out_dir: Path,
    accounts: int = 2000,
    months: int = 24,
    seed: int = 0,
    progress: ProgressCallback | None = None,
    weight_change: WeightChange | None = None,
    layout: str = "canonical",
    segment_usage: bool = True,
) -> GeneratedCompany:
    """Write a synthetic company whose churn follows a known logistic model of the product's own signals.

    Writes `exports/` (usage events as Parquet, every other table as CSV), `account-health.toml` mapping
    them, and `truth/truth.json` plus `truth/labels.csv`. The span ends on DATA_END whatever today's
    date is, and the same arguments give byte-identical files.

    Churn is drawn at each training snapshot T for every account with a contract active at T. Its
    probability is the true model applied to the features that the signal engine computes at T from
    the activity generated so far. A drawn account churns at a uniform instant in [T, T + 90 days).

    With `weight_change`, snapshots from the change on draw churn with one feature's coefficient
    multiplied, and `truth/truth.json` records the change; without it the output is unchanged.

    With `layout = "vendor"`, every table but churn events is written in a vendor's own format (see
    `vendor_exports`) and read by the matching adapter. The canonical tables they fill hold the same
    rows as with the canonical layout. Usage events are Segment track calls, unless
    `segment_usage = False` keeps them in the canonical Parquet file.
    """
    _check_arguments(accounts, months)
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    started = time.perf_counter()
    out_dir = Path(out_dir)
    rng = np.random.default_rng(seed)
    calendar = build_calendar(months)
    if weight_change is not None:
        weight_change.first_snapshot(len(calendar.snapshots))
    report = _Progress(progress, total=len(calendar.snapshots) + 2)

    population = build_population(rng, accounts, calendar.local_days)
    history = draw_history(rng, accounts, calendar)
    streams = _draw_streams(rng, population, calendar, history)
    report.step("drew accounts and activity")

    truth, labels = _simulate_churn(rng, population, history, streams, calendar, report, weight_change)
    contracts = build_contracts(rng, history, population.accounts, calendar)
    churns = churn_frame(history, population.accounts)

    vendor_sources = _write_exports(out_dir, population, streams, contracts, churns, layout, segment_usage)
    config_path = _write_config(out_dir, calendar, vendor_sources)
    truth_dir = out_dir / "truth"
    _write_truth(truth_dir, truth, labels, calendar, seed, accounts, weight_change)
    report.step("wrote exports, config and truth")

    returning = sum(1 for spans in history.intervals if len(spans) > 1)
    seconds = time.perf_counter() - started
    log.info("generated %d accounts over %d months in %.1f s", accounts, months, seconds)
    return GeneratedCompany(
        out_dir=out_dir,
        config_path=config_path,
        exports_dir=out_dir / "exports",
        truth_dir=truth_dir,
        accounts=accounts,
        usage_event_rows=int(streams.usage["kept"].sum()),
        tickets=int(streams.tickets["kept"].sum()),
        churn_events=len(churns),
        returning_accounts=returning,
        snapshots=calendar.snapshots,
        labelled_rows=len(labels),
        label_rate=float(labels["label"].mean()) if len(labels) else float("nan"),
        mean_true_probability=float(labels["true_probability"].mean()) if len(labels) else float("nan"),
        seconds=seconds,
    )


def _check_arguments(accounts: int, months: int) -> None:
    if accounts < 1:
        raise ValueError(f"accounts must be at least 1, got {accounts}")
    if months < MIN_MONTHS:
        raise ValueError(
            f"months must be at least {MIN_MONTHS}, so the first snapshot has 90 days of signals behind it; "
            f"got {months}"
        )


class _Progress:
    def __init__(self, callback: ProgressCallback | None, total: int) -> None:
        self.callback = callback
        self.total = total
        self.done = 0

    def step(self, description: str) -> None:
        self.done += 1
        log.debug("%s (%d/%d)", description, self.done, self.total)
        if self.callback is not None:
            self.callback(description, self.done, self.total)


def _draw_streams(
    rng: np.random.Generator, population: Population, calendar: Calendar, history: CustomerHistory
) -> _Streams:
    streams = _Streams(
        usage=draw_usage(rng, population, calendar),
        tickets=draw_tickets(rng, population, calendar),
        responses=draw_responses(rng, population, calendar),
        integrations=draw_integrations(rng, population, calendar, history.first_start()),
        contact_changes=draw_contact_changes(rng, population, calendar),
    )
    for _, frame in streams.items():
        frame["kept"] = False
    return streams


def _simulate_churn(
    rng: np.random.Generator,
    population: Population,
    history: CustomerHistory,
    streams: _Streams,
    calendar: Calendar,
    report: _Progress,
    weight_change: WeightChange | None = None,
) -> tuple[TruthModel, pd.DataFrame]:
    """Admit activity period by period, ingest it, compute signals at each snapshot and draw churn there.

    Returns the true model and one row per snapshot and at-risk account with its features, true
    probability and drawn label.
    """
    truth: TruthModel | None = None
    label_frames = []
    usage_ingested_until = EARLIEST
    with tempfile.TemporaryDirectory(prefix="account-health-truth-") as scratch:
        store = open_analytical_store(None)
        # One thread makes DuckDB's floating-point sums add up in the same order on every run, so the
        # features, and hence the drawn churn, are identical for a given seed.
        store.connection.execute("SET threads = 1")
        try:
            for number, (lower, upper) in enumerate(calendar.period_bounds):
                lower_ns = EARLIEST if number == 0 else to_ns(lower)
                _admit_period(streams, history, lower_ns, to_ns(upper))
                if upper == calendar.end:
                    break

                usage_from = max(usage_ingested_until, to_ns(upper) - USAGE_LOOKBACK_DAYS * NS_PER_DAY)
                folder = Path(scratch) / f"period-{number:02d}"
                workspace = _write_period(folder, population, streams, lower_ns, usage_from, upper)
                names = list(exports.SIGNAL_SOURCES) if number == 0 else _activity_sources()
                ingest(workspace, store, sources=names, backfill=True)
                usage_ingested_until = to_ns(upper)

                features = _features_at_risk(workspace, store, history, population, upper)
                if truth is None:
                    truth = calibrate_truth(features)
                drawing = truth
                if weight_change is not None and number >= weight_change.first_snapshot(
                    len(calendar.snapshots)
                ):
                    drawing = truth.scaled(weight_change.feature, weight_change.factor)
                label_frames.append(_draw_churn(rng, drawing, features, history, upper))
                report.step(f"drew churn at snapshot {upper:%Y-%m-%d}")
        finally:
            store.close()
    if truth is None:
        raise AssertionError("the calendar has no snapshot; build_calendar should have rejected the span")
    return truth, pd.concat(label_frames, ignore_index=True)


def _activity_sources() -> list[str]:
    return [name for name in exports.SIGNAL_SOURCES if name not in exports.STATIC_SOURCES]


def _admit_period(streams: _Streams, history: CustomerHistory, lower_ns: int, upper_ns: int) -> None:
    """Keep the period's rows of each stream that happen while the account is a customer.

    Job changes are kept whatever the account's status, because they come from the contact's employer.
    """
    for name, frame in streams.items():
        at = frame["at"].to_numpy()
        in_period = (at >= lower_ns) & (at < upper_ns)
        if name == "contact_changes":
            frame.loc[in_period, "kept"] = True
            continue
        accounts = frame["account_index"].to_numpy()[in_period]
        frame.loc[in_period, "kept"] = history.is_customer(accounts, at[in_period])


def _write_period(
    folder: Path,
    population: Population,
    streams: _Streams,
    lower_ns: int,
    usage_from_ns: int,
    upper: datetime,
) -> Workspace:
    """Write the kept rows of [lower_ns, upper) as a scratch workspace whose sources hold only those rows.

    Usage events start at `usage_from_ns` instead, because older ones cannot change the usage trend
    at `upper` (see USAGE_LOOKBACK_DAYS) and ingesting them would only cost time.
    """
    upper_ns = to_ns(upper)
    selected = {}
    for name, frame in streams.items():
        at = frame["at"].to_numpy()
        start = usage_from_ns if name == "usage_events" else lower_ns
        selected[name] = frame[frame["kept"].to_numpy() & (at >= start) & (at < upper_ns)]
    files = _write_tables(folder, population, selected)
    document = exports.config_document(files, training_end=upper.date(), window_months=1)
    return Workspace(parse_config(document, str(folder / CONFIG_FILE)), folder)


def _write_exports(
    out_dir: Path,
    population: Population,
    streams: _Streams,
    contracts: pd.DataFrame,
    churns: pd.DataFrame,
    layout: str = "canonical",
    segment_usage: bool = True,
) -> dict[str, dict[str, Any]]:
    """Write the kept rows and the CRM tables; return the config entries of sources in a vendor format."""
    kept = {name: frame[frame["kept"].to_numpy()] for name, frame in streams.items()}
    vendor_sources: dict[str, dict[str, Any]] = {}
    if layout == "vendor":
        frames = _frames(population, kept)
        frames["contracts"] = exports.contracts_frame(contracts)
        vendor_sources = vendor_exports.write_vendor_tables(out_dir, frames, segment_usage)
        for name, frame in frames.items():
            if name not in vendor_sources:
                exports.write_table(frame, out_dir / exports.EXPORT_FILES[name][1])
    else:
        _write_tables(out_dir, population, kept)
        exports.write_table(
            exports.contracts_frame(contracts), out_dir / exports.EXPORT_FILES["contracts"][1]
        )
    exports.write_table(exports.churn_events_frame(churns), out_dir / exports.EXPORT_FILES["churn_events"][1])
    return vendor_sources


def _write_tables(
    folder: Path, population: Population, streams: dict[str, pd.DataFrame]
) -> dict[str, list[str]]:
    """Write the static tables and the given stream rows under `folder`; return each source's files."""
    files = {}
    for name, frame in _frames(population, streams).items():
        relative = exports.EXPORT_FILES[name][1]
        exports.write_table(frame, folder / relative)
        files[name] = [relative]
    return files


def _frames(population: Population, streams: dict[str, pd.DataFrame]) -> dict[str, Any]:
    """The canonical frames of the static tables and the given stream rows, by source name."""
    return {
        "accounts": exports.accounts_frame(population),
        "users": exports.users_frame(population),
        "contacts": exports.contacts_frame(population),
        "usage_events": exports.usage_table(streams["usage_events"], population),
        "sentiment_responses": exports.responses_frame(streams["sentiment_responses"], population),
        "tickets": exports.tickets_frame(streams["tickets"], population),
        "contact_changes": exports.contact_changes_frame(streams["contact_changes"], population),
        "integrations": exports.integrations_frame(streams["integrations"], population),
    }


def _features_at_risk(
    workspace: Workspace,
    store: AnalyticalStore,
    history: CustomerHistory,
    population: Population,
    moment: datetime,
) -> pd.DataFrame:
    """Compute the engine's features at `moment` for the accounts with a contract active then, in account order."""
    computed = compute_signals(workspace, store, [moment])
    missing = [name for name in ("account_id", *FEATURES) if name not in computed.columns]
    if missing:
        raise AssertionError(
            f"compute_signals returned no column {missing[0]!r}; it returned {list(computed.columns)}"
        )
    by_account = computed.drop_duplicates("account_id").set_index("account_id")

    at_risk = history.at_risk(to_ns(moment))
    account_ids = population.accounts["account_id"].to_numpy()[at_risk]
    absent = [account_id for account_id in account_ids if account_id not in by_account.index]
    if absent:
        raise AssertionError(
            f"compute_signals returned no row for account {absent[0]!r} at {moment:%Y-%m-%d}"
        )
    features = by_account.loc[account_ids, list(FEATURES)].reset_index()
    features.insert(0, "account_index", at_risk)
    return features


def _draw_churn(
    rng: np.random.Generator,
    truth: TruthModel,
    features: pd.DataFrame,
    history: CustomerHistory,
    moment: datetime,
) -> pd.DataFrame:
    """Draw each at-risk account's label; a churned account churns at a whole second in [T, T + horizon)."""
    probability = truth.probability(features)
    label = rng.random(len(features)) < probability
    offset_seconds = np.floor(rng.random(len(features)) * HORIZON_DAYS * 86_400).astype(np.int64)
    moment_ns = to_ns(moment)
    for row in np.flatnonzero(label):
        account = int(features["account_index"].iat[row])
        history.churn(rng, account, moment_ns + int(offset_seconds[row]) * 10**9)
    drawn = features.drop(columns="account_index")
    drawn.insert(1, "as_of", moment.strftime("%Y-%m-%dT%H:%M:%S"))
    drawn["true_probability"] = probability
    drawn["label"] = label.astype(int)
    return drawn


def _write_config(
    out_dir: Path, calendar: Calendar, vendor_sources: dict[str, dict[str, Any]] | None = None
) -> Path:
    vendor_sources = vendor_sources or {}
    vendor_tables = {source["table"] for source in vendor_sources.values()}
    files = {
        name: [path] for name, (table, path) in exports.EXPORT_FILES.items() if table not in vendor_tables
    }
    document = exports.config_document(
        files, training_end=calendar.end.date(), window_months=calendar.window_months
    )
    document["sources"].update(vendor_sources)
    parse_config(document)
    header = (
        "Workspace of a synthetic company made by account_health.synthetic.generate_company.\n"
        "Its churn follows the true model in truth/truth.json; truth/labels.csv holds the drawn labels."
    )
    path = out_dir / CONFIG_FILE
    path.write_text(exports.render_toml(document, header), encoding="utf-8")
    return path


def _write_truth(
    truth_dir: Path,
    truth: TruthModel,
    labels: pd.DataFrame,
    calendar: Calendar,
    seed: int,
    accounts: int,
    weight_change: WeightChange | None = None,
) -> None:
    truth_dir.mkdir(parents=True, exist_ok=True)
    per_snapshot = [
        {
            "as_of": as_of,
            "at_risk": len(group),
            "churned": int(group["label"].sum()),
            "mean_true_probability": float(group["true_probability"].mean()),
        }
        for as_of, group in labels.groupby("as_of", sort=True)
    ]
    document = {
        "generator_version": GENERATOR_VERSION,
        "instants": "naive ISO 8601 in UTC, as the product's as-of instants",
        "seed": seed,
        "accounts": accounts,
        "months": calendar.months,
        "data_start": calendar.start.strftime("%Y-%m-%dT%H:%M:%S"),
        "data_end_exclusive": calendar.end.strftime("%Y-%m-%dT%H:%M:%S"),
        "training_end": calendar.end.date().isoformat(),
        "window_months": calendar.window_months,
        "snapshot_every_days": SNAPSHOT_EVERY_DAYS,
        "horizon_days": HORIZON_DAYS,
        "snapshots": [moment.strftime("%Y-%m-%dT%H:%M:%S") for moment in calendar.snapshots],
        "features": list(FEATURES),
        **truth.as_dict(),
        "per_snapshot": per_snapshot,
    }
    if weight_change is not None:
        # Only a changed truth carries the key, so files generated without a change stay byte-identical.
        document["weight_change"] = weight_change.as_dict(len(calendar.snapshots))
    (truth_dir / "truth.json").write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    columns = ["account_id", "as_of", "true_probability", "label"]
    labels[columns].to_csv(truth_dir / "labels.csv", index=False, lineterminator="\n")
    features = labels[["account_id", "as_of", *FEATURES]]
    features.to_csv(truth_dir / "features.csv", index=False, lineterminator="\n")
