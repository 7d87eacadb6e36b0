"""The `account-health` command line: option parsing and output only; the work is in the library."""

from __future__ import annotations

import json
import logging
import signal
import sys
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import duckdb
import pyarrow
import sqlalchemy.exc
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from account_health.asof import default_as_of, newest_data, parse_as_of, start_of_day
from account_health.cli import terminal
from account_health.config import Workspace, load_workspace
from account_health.errors import AccountHealthError, AccountHealthWarning, NotValidatedWarning, first_line
from account_health.workspace import init_workspace, open_stores

app = typer.Typer(
    name="account-health",
    help="Churn-risk health scores for B2B SaaS accounts, learned from your own churn history.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# Piped output keeps wide tables readable instead of folding them to 80 columns.
# Emoji codes stay off, so an id such as ":x:" prints as written.
console = Console(emoji=False) if sys.stdout.isatty() else Console(emoji=False, width=160)
errors = (
    Console(stderr=True, emoji=False) if sys.stderr.isatty() else Console(stderr=True, emoji=False, width=160)
)
terminal.guard([console, errors])


class _State:
    workspace_dir: Path = Path(".")


state = _State()


@app.callback()
def main_options(
    workspace: Annotated[
        Path,
        typer.Option(
            "--workspace",
            "-w",
            help="Workspace folder holding account-health.toml (default: the current folder).",
        ),
    ] = Path("."),
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log each step to stderr.")] = False,
) -> None:
    """Select the workspace and the log level for every command."""
    state.workspace_dir = workspace
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _workspace() -> Workspace:
    return load_workspace(state.workspace_dir)


def _as_of_option(value: str | None, option: str = "--as-of") -> datetime | None:
    if value is None:
        return None
    try:
        return parse_as_of(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc).replace("as-of date", f"{option} date")) from None


AsOfOption = Annotated[
    str | None,
    typer.Option(
        "--as-of",
        help="As-of date (YYYY-MM-DD, UTC midnight) or instant. Default: the start of today in UTC, "
        "or the day after the newest ingested data when that is older.",
    ),
]


@app.command()
def init(
    directory: Annotated[
        Path, typer.Argument(metavar="DIR", help="Folder for the new workspace (created if missing).")
    ],
) -> None:
    """Create a workspace: a commented account-health.toml and both stores."""
    workspace = init_workspace(directory)
    console.print(f"created {workspace.config_path}", markup=False)
    console.print(f"analytical store: {workspace.analytical_store_path}", markup=False)
    console.print(f"operational store: {workspace.operational_store_url}", markup=False)
    console.print(
        "next: add a [sources.NAME] section per export, then run `account-health ingest`", markup=False
    )


@app.command()
def ingest(
    source: Annotated[
        list[str] | None,
        typer.Option("--source", "-s", help="Load only this source (repeatable). Default: all."),
    ] = None,
    backfill: Annotated[
        bool,
        typer.Option(help="Treat every row as history: available at its own event time, not at ingest time."),
    ] = False,
) -> None:
    """Load the configured exports into the canonical tables in one transaction, then the job changes the API received."""
    from account_health.cli.render import ingest_table
    from account_health.cli.render_sources import quarantine_command, source_notes
    from account_health.sources.ingest import ingest as run_ingest
    from account_health.sources.received import API_SOURCE, load_received_job_changes

    workspace = _workspace()
    with open_stores(workspace) as (store, engine), _progress() as progress:
        tasks: dict[str, Any] = {}

        def advance(source_name: str, file: str, done: int, total: int) -> None:
            key = f"{source_name}:{file}"
            if key not in tasks:
                tasks[key] = progress.add_task(f"{source_name}: {Path(file).name}", total=total)
            progress.update(tasks[key], completed=done)

        report = run_ingest(workspace, store, source, backfill=backfill, progress=advance)
        progress.stop()
        console.print(ingest_table(report))
        quarantined = sum(counts.quarantined for counts in report.sources)
        unattributed = sum(counts.unattributed for counts in report.sources)
        if quarantined:
            rows = "row" if quarantined == 1 else "rows"
            console.print(
                f"[red]{quarantined:,} {rows} quarantined[/red]; list each rejected value with its file, row, "
                "column and reason:"
            )
            # On a line of its own and never wrapped, so that it can be copied and run as printed.
            # The absolute path, so that the command also runs from another folder.
            command = quarantine_command(report, state.workspace_dir.resolve())
            console.print(f"  {command}", markup=False, highlight=False, soft_wrap=True)
        if report.attributed:
            console.print(
                f"{_rows(report.attributed)} stored unattributed earlier now belong to a known account"
            )
        if unattributed:
            console.print(
                f"[yellow]{_rows(unattributed)} stored unattributed[/yellow] (their account is not in the accounts table)"
            )
        for line in source_notes(report):
            console.print(line, markup=False)
        received = load_received_job_changes(store, engine)
        if received.load_id is not None:
            console.print(
                f"job changes received by the API: {received.inserted + received.new_version:,} copied into "
                f"contact_changes as source {API_SOURCE!r} (load {received.load_id})",
                markup=False,
            )
        _export_for_spark(workspace, store)


def _export_for_spark(workspace: Workspace, store: Any) -> None:
    """With the Spark engine, refresh the Parquet copy of the canonical tables that Spark reads."""
    from account_health.store.parquet_export import export_parquet, spark_export_folder

    folder = spark_export_folder(workspace)
    if folder is not None:
        report = export_parquet(store, folder)
        console.print(
            f"exported the canonical tables (load {report.load_id}) for Spark to {folder}", markup=False
        )


@app.command()
def export(
    directory: Annotated[
        str | None,
        typer.Option(
            "--dir", help="Folder for the Parquet files (default: \\[spark] parquet_dir of the workspace)."
        ),
    ] = None,
) -> None:
    """Write every canonical table as <table>.parquet, the files Spark reads with engine = "spark"."""
    from account_health.store.parquet_export import export_parquet

    workspace = _workspace()
    # Checked as text: a Path would collapse s3a://bucket to s3a:/bucket, a local folder.
    target = directory if directory is not None else workspace.spark_parquet_dir
    if "://" in target:
        raise AccountHealthError(
            f"cannot write to {target}; export to a local folder with --dir and copy it there, "
            "or point [spark] parquet_dir at a local folder"
        )
    folder = _output_folder(Path(target), "--dir")
    with open_stores(workspace, create=False) as (store, _engine):
        report = export_parquet(store, folder)
    total = sum(report.rows.values())
    console.print(
        f"exported {len(report.rows)} canonical tables ({total:,} rows, load {report.load_id}) to {report.folder}",
        markup=False,
    )


@app.command()
def sources() -> None:
    """List each configured source: last ingest, its row counts, and its oldest and newest event time."""
    from account_health.cli.render_sources import source_notes, sources_table
    from account_health.sources.status import source_status

    workspace = _workspace()
    with open_stores(workspace, read_only=True, create=False) as (store, _engine):
        statuses = source_status(workspace, store)
    console.print(sources_table(statuses))
    for line in source_notes(statuses):
        console.print(line, markup=False)


@app.command()
def quarantine(
    load: Annotated[
        int | None,
        typer.Option("--load", help="Only the values this load rejected (the number `ingest` prints)."),
    ] = None,
    source: Annotated[str | None, typer.Option("--source", "-s", help="Only this source's values.")] = None,
    output_format: Annotated[
        str, typer.Option("--format", help="Output format: table, csv or json.", case_sensitive=False)
    ] = "table",
) -> None:
    """List the values ingests rejected, each with its source, file, row, column and reason."""
    import csv

    from rich.table import Table

    from account_health.actions.export import spreadsheet_safe
    from account_health.sources.quarantine import COLUMNS, quarantined_values

    output_format = output_format.lower()
    if output_format not in ("table", "csv", "json"):
        raise typer.BadParameter(f"--format {output_format!r} is not one of table, csv, json")
    workspace = _workspace()
    if source is not None and source not in workspace.config.sources:
        known = ", ".join(workspace.config.sources) or "none"
        raise typer.BadParameter(f"--source {source!r} is not a configured source; the sources are: {known}")
    with open_stores(workspace, read_only=True, create=False) as (store, _engine):
        values = quarantined_values(store, load_id=load, source=source)
    if output_format == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(COLUMNS)
        for value in values:
            # A rejected value may contain a NUL, which text tools read as the end of a string, so it is written as \x00.
            cells = [_plain_cell(value[column]).replace("\x00", "\\x00") for column in COLUMNS]
            writer.writerow([spreadsheet_safe(cell) for cell in cells])
        return
    if output_format == "json":
        # Numbers stay numbers, and instants become ISO text.
        records = [{column: value[column] for column in COLUMNS} for value in values]
        sys.stdout.write(json.dumps(records, indent=2, default=_plain_cell) + "\n")
        return
    if not values:
        if load is None:
            console.print("no quarantined values")
        else:
            console.print(
                f"no quarantined values for load {load}; a value that a later load rejected again is "
                "listed under that later load"
            )
        return
    table = Table(title="Quarantined values, newest load first", title_justify="left")
    for column in ("load", "source", "file", "row", "column", "value", "reason"):
        table.add_column(column, justify="right" if column in ("load", "row") else "left")
    for value in values[:_QUARANTINE_ROWS_SHOWN]:
        text = "" if value["value"] is None else str(value["value"])
        shown = text if len(text) <= 60 else text[:57] + "..."
        where = (value["last_load_id"], value["source"], value["file"], value["row_number"], value["column"])
        table.add_row(
            *[escape(_plain_cell(cell)) for cell in where], escape(shown), escape(str(value["reason"]))
        )
    console.print(table)
    if len(values) > _QUARANTINE_ROWS_SHOWN:
        console.print(
            f"showing {_QUARANTINE_ROWS_SHOWN} of {len(values):,} values; use --format csv for all of them"
        )


# The quarantine table prints at most this many values; csv and json print all of them.
_QUARANTINE_ROWS_SHOWN = 200


def _plain_cell(value: Any) -> str:
    """Return a quarantine cell as text: instants in ISO form, a missing value as an empty string."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


@app.command()
def signals(
    as_of: AsOfOption = None,
    account: Annotated[str | None, typer.Option("--account", help="Show only this account.")] = None,
    output_format: Annotated[
        str, typer.Option("--format", help="Output format: table, csv or json.", case_sensitive=False)
    ] = "table",
    rebuild: Annotated[
        bool, typer.Option("--rebuild", help="Recompute the stored usage aggregate from every event.")
    ] = False,
) -> None:
    """Print each account's signal values and their details as of a date."""
    from rich.table import Table

    from account_health.actions.export import spreadsheet_safe
    from account_health.signals import FEATURES, compute_signals
    from account_health.signals.aggregate import refresh_usage_aggregate

    if output_format not in ("table", "csv", "json"):
        raise typer.BadParameter(f"--format {output_format!r} is not one of table, csv, json")
    requested = _as_of_option(as_of)
    workspace = _workspace()
    with open_stores(workspace, create=False) as (store, _engine):
        instant = _resolve_as_of(store, requested, quiet=output_format != "table")
        if store.has_rows("usage_events") or rebuild:
            refresh_usage_aggregate(workspace, store, rebuild=rebuild)
        frame = compute_signals(workspace, store, [instant])
    if account is not None:
        # Ingest trims ids, so a pasted id with spaces around it still finds its account.
        account = account.strip()
        frame = frame[frame["account_id"] == account]
        if frame.empty:
            raise AccountHealthError(
                f"account {account!r} is not known before {instant:%Y-%m-%d}; check the id"
            )
    if output_format == "csv":
        # Account ids come straight from vendor exports, so a formula-like id is escaped as in `tasks`.
        text_columns = frame.select_dtypes(include=["object", "string"]).columns
        frame[text_columns] = frame[text_columns].map(spreadsheet_safe)
        frame.to_csv(sys.stdout, index=False)
        return
    if output_format == "json":
        sys.stdout.write(frame.to_json(orient="records", date_format="iso", indent=2) + "\n")
        return
    title = f"Signals as of {instant:%Y-%m-%d %H:%M} UTC"
    if len(frame) == 1:
        table = Table(title=f"{escape(str(frame.iloc[0]['account_id']))}: {title}", title_justify="left")
        table.add_column("signal value or detail")
        table.add_column("value", justify="right")
        for name, value in frame.iloc[0].items():
            table.add_row(str(name), escape(_cell(value)))
        console.print(table)
        return
    columns = ["account_id", *FEATURES]
    # An aggregated usage feed may fit event counts for some accounts and active users for others, so
    # the table then names each account's measure beside its trend.
    if set(frame["usage_measure"].dropna()) - {"dau_mau"}:
        columns.insert(columns.index("usage_trend") + 1, "usage_measure")
    table = Table(
        title=f"{title} (features only; --account ID or --format csv shows the details)", title_justify="left"
    )
    for column in columns:
        table.add_column(column, justify="left" if column == "account_id" else "right")
    for record in frame[columns].head(200).to_dict("records"):
        table.add_row(*[escape(_cell(value)) for value in record.values()])
    console.print(table)
    if len(frame) > 200:
        console.print(f"showing 200 of {len(frame):,} accounts; use --format csv for all of them")


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "missing" if value != value else f"{value:.4g}"
    if isinstance(value, datetime):
        return f"{value:%Y-%m-%d %H:%M}"
    return "missing" if value is None else str(value)


@app.command()
def train(
    end: Annotated[
        str | None,
        typer.Option(
            help="End of the training window (YYYY-MM-DD). Default: \\[training] end, or the default as-of date."
        ),
    ] = None,
    min_churn_events: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Train even with fewer churn events than \\[training] min_churn_events, down to this many.",
        ),
    ] = None,
    fit_cutoffs: Annotated[
        bool,
        typer.Option(
            "--fit-cutoffs",
            help="Fit the four tier cut-offs so each tier's observed hold-out churn falls in its "
            "\\[tiers.bands] band, instead of using the configured cut-offs.",
        ),
    ] = False,
    json_output: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print a JSON summary (model version, verdict, file paths, metrics, weights) to stdout "
            "instead of the report.",
        ),
    ] = False,
) -> None:
    """Learn churn weights from the ingested history, evaluate them out of time, save the model."""
    from account_health.cli.render import training_report
    from account_health.training.artifact import dumps
    from account_health.training.report import training_summary
    from account_health.training.train import train as run_train

    end_instant = _as_of_option(end, "--end")
    workspace = _workspace()
    with open_stores(workspace, create=False) as (store, engine), warnings.catch_warnings():
        # The report's first line carries the verdict, so the warning would only repeat it.
        warnings.simplefilter("ignore", NotValidatedWarning)
        result = run_train(
            workspace,
            store,
            engine,
            end=end_instant,
            min_churn_events=min_churn_events,
            step=_step,
            fit_cutoffs=fit_cutoffs,
        )
    if json_output:
        sys.stdout.write(dumps(training_summary(result.artifact, result.path, result.report)))
        return
    training_report(console, result.artifact)
    console.print(f"saved {result.path}", markup=False)
    if result.report is not None:
        for path in result.report.paths():
            console.print(f"saved {path}", markup=False)


@app.command()
def score(as_of: AsOfOption = None) -> None:
    """Score every account at risk with the latest model and store probability, tier and contributions."""
    from account_health.cli.render import as_of_text, riskiest_table, tier_table
    from account_health.scoring.score import latest_artifact
    from account_health.scoring.score import score as run_score

    requested = _as_of_option(as_of)
    workspace = _workspace()
    with open_stores(workspace, create=False) as (store, engine):
        instant = _resolve_as_of(store, requested)
        result = run_score(workspace, store, engine, instant)
        settings = latest_artifact(engine).get("signal_settings", {})
    if not result.validated:
        console.print(
            "[bold red]NOT VALIDATED: this model could not be shown to beat the base rate; treat these scores as unproven.[/bold red]"
        )
    console.print(
        f"scored {len(result.scores):,} accounts as of {as_of_text(result.as_of)} with model {result.model_version}"
    )
    console.print(tier_table(result.scores, result.validated))
    console.print(riskiest_table(result.scores, settings, result.validated))


@app.command()
def explain(
    account_id: Annotated[str, typer.Argument(help="The account to explain.")],
    as_of: AsOfOption = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            help="Explain the move since the account's latest score on or before this date (YYYY-MM-DD).",
        ),
    ] = None,
) -> None:
    """Explain an account's score: tier, probability, and each signal's value and push, largest first."""
    from account_health.cli.nightly import watch_line
    from account_health.cli.render import explanation, score_change
    from account_health.scoring.explain import explain as run_explain
    from account_health.scoring.explain import explain_change

    account_id = account_id.strip()  # stored ids are trimmed at ingest
    as_of_instant = _as_of_option(as_of)
    workspace = _workspace()
    horizon_days = workspace.config.training.horizon_days
    since_instant = _as_of_option(since, "--since")
    with open_stores(workspace, create=False) as (_store, engine):
        if since_instant is None:
            result = run_explain(engine, account_id, as_of_instant)
            explanation(console, result, horizon_days)
        else:
            change = explain_change(engine, account_id, since_instant, as_of_instant)
            score_change(console, change, horizon_days)
            result = change.after
        watch_line(console, engine, account_id, result.as_of)


@app.command()
def report(
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Folder for the report files. Default: the workspace's reports/ folder."),
    ] = None,
    json_output: Annotated[
        bool,
        typer.Option("--json", help="Print the report as JSON to stdout instead of the summary."),
    ] = False,
    as_of: AsOfOption = None,
    notify: Annotated[
        bool,
        typer.Option(
            "--notify",
            help="Post the report's alerts to Slack through the outbox (\\[notify.slack] must be enabled).",
        ),
    ] = False,
) -> None:
    """Check the model against what happened since: tiers, calibration, ARR, drift, retrain advice."""
    from account_health.cli.render import monitor_summary
    from account_health.monitor import build_report
    from account_health.monitor.files import write_report_files

    requested = _as_of_option(as_of)
    workspace = _workspace()
    if notify and not workspace.config.notify.slack.enabled:
        raise typer.BadParameter("--notify needs [notify.slack] enabled = true in the config")
    folder = _output_folder(out if out is not None else workspace.root / "reports", "--out")
    with open_stores(workspace, create=False) as (store, engine):
        instant = _resolve_as_of(store, requested, quiet=json_output)
        result = build_report(workspace, store, engine, instant, step=_step)
        if notify:
            _post_alerts(workspace, engine, result, quiet=json_output)
    files = write_report_files(result, folder)
    from account_health.monitor.record import record_report
    from account_health.store.operational import open_operational_store

    engine = open_operational_store(workspace.operational_store_url)
    try:
        record_report(engine, result, list(files.paths()))
    finally:
        engine.dispose()
    if json_output:
        from account_health.training.artifact import dumps

        sys.stdout.write(dumps({"files": [str(path) for path in files.paths()], **result.to_dict()}))
        return
    monitor_summary(console, result)
    for path in files.paths():
        console.print(f"saved {path}", markup=False)


def _post_alerts(workspace: Workspace, engine: Any, result: Any, quiet: bool) -> None:
    """Queue the monitoring report's alerts as one Slack message and deliver the outbox."""
    from account_health.notify import deliver
    from account_health.notify.alerts import enqueue_alerts

    with engine.begin() as connection:
        added = enqueue_alerts(
            connection, result.as_of, result.model_version, result.alerts, workspace.config.notify
        )
    delivery = deliver(engine, workspace.config.notify)
    if not quiet:
        queued = "queued" if added else "already queued or nothing to say"
        errors.print(
            f"alerts: {len(result.alerts)} ({queued}); outbox: {delivery.sent} sent, {delivery.unsent} left",
            markup=False,
        )


@app.command()
def quickstart(
    directory: Annotated[
        Path, typer.Option("--dir", help="Folder for the generated company and its workspace.")
    ] = Path("quickstart"),
    accounts: Annotated[
        int,
        typer.Option(
            min=500, help="Number of accounts to generate (at least 500, so training finds 100 churn events)."
        ),
    ] = 2000,
    seed: Annotated[
        int, typer.Option(help="Seed of the generator; the same seed gives the same company.")
    ] = 0,
) -> None:
    """Generate a synthetic company, then run init, ingest, train and score on it and print the results."""
    from account_health.cli.quickstart import run_quickstart

    # A folder of anything but an earlier quickstart would have its config and exports overwritten.
    marker = directory / QUICKSTART_MARKER
    if directory.exists() and not directory.is_dir():
        raise AccountHealthError(
            f"{directory} is a file, not a folder; pass --dir with a new or empty folder"
        )
    if directory.exists() and any(directory.iterdir()) and not marker.exists():
        raise AccountHealthError(
            f"{directory} is not empty and was not made by quickstart; its config and exports would be "
            "overwritten. Pass --dir with a new or empty folder"
        )
    directory.mkdir(parents=True, exist_ok=True)
    marker.write_text("Made by account-health quickstart, which may overwrite this folder.\n")
    run_quickstart(console, directory, accounts, seed, _progress)


@app.command()
def outbox(
    status: Annotated[
        str | None,
        typer.Option(
            "--status",
            help="List the messages with this status: pending, failed or sent. Default: every unsent message.",
            case_sensitive=False,
        ),
    ] = None,
    retry: Annotated[
        bool,
        typer.Option("--retry", help="Deliver every pending and failed message now, then list what is left."),
    ] = False,
    limit: Annotated[int, typer.Option("--limit", min=1, help="List at most this many messages.")] = 50,
) -> None:
    """Show the notification outbox (Slack messages, CRM updates); with --retry, deliver what is unsent."""
    from account_health.cli.outbox import counts_table, delivery_lines, entries_table
    from account_health.notify import deliver, outbox_counts, outbox_entries
    from account_health.store.operational import open_operational_store
    from account_health.store.outbox import STATUSES

    if status is not None and status.lower() not in STATUSES:
        raise typer.BadParameter(f"--status {status!r} is not one of {', '.join(STATUSES)}")
    workspace = _workspace()
    engine = open_operational_store(workspace.operational_store_url)
    try:
        report = None
        if retry:
            with _progress() as progress:
                tasks: dict[str, Any] = {}

                def advance(destination: str, done: int, total: int) -> None:
                    if destination not in tasks:
                        tasks[destination] = progress.add_task(f"{destination}: delivering", total=total)
                    progress.update(tasks[destination], completed=done)

                report = deliver(engine, workspace.config.notify, progress=advance)
            for line in delivery_lines(report):
                console.print(line)
        console.print(counts_table(outbox_counts(engine)))
        entries = outbox_entries(engine, status.lower() if status else None, limit)
        title = f"{status.lower()} messages" if status else "unsent messages (pending and failed)"
        console.print(entries_table(entries, f"{title}, at most {limit}" if entries else f"no {title}"))
    finally:
        engine.dispose()
    if report is not None and not report.ok:
        raise typer.Exit(1)


from account_health.cli.api_commands import serve, token_app  # noqa: E402

app.command()(serve)
app.add_typer(token_app, name="token")


@app.command("run")
def run_command(
    as_of: AsOfOption = None,
    ingest_sources: Annotated[
        bool,
        typer.Option(
            "--ingest/--no-ingest",
            help="Load the configured exports first (default), or score the data already ingested.",
        ),
    ] = True,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the run's summary as JSON to stdout instead of text.")
    ] = False,
) -> None:
    """Run the nightly job: ingest, signals, score, tier changes, actions and tasks, as one run."""
    from account_health.cli.nightly import ProgressObserver, run_report
    from account_health.nightly import run_nightly
    from account_health.training.artifact import dumps

    requested = _as_of_option(as_of)
    workspace = _workspace()
    with open_stores(workspace, create=False) as (store, engine), _step_progress() as progress:
        result = run_nightly(workspace, store, engine, requested, ingest_sources, ProgressObserver(progress))
        progress.stop()
    summary = result.summary()
    if json_output:
        sys.stdout.write(dumps(summary))
        return
    run_report(console, summary)


@app.command()
def watch(
    account_id: Annotated[
        str | None,
        typer.Argument(metavar="ACCOUNT", help="The account to flag, or to un-flag with --remove."),
    ] = None,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why the account is watched; shown in explain and tasks.")
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(
            "--until",
            help="Last as-of date (YYYY-MM-DD) the flag applies to. Default: \\[actions] watch_default_days from today.",
        ),
    ] = None,
    remove: Annotated[bool, typer.Option("--remove", help="Remove the account's current flags.")] = False,
    list_entries: Annotated[bool, typer.Option("--list", help="List the flags in force.")] = False,
    include_all: Annotated[
        bool, typer.Option("--all", help="With --list, include expired and removed flags.")
    ] = False,
) -> None:
    """Flag an account for CSM attention with a reason and an expiry; the flag never changes its tier."""
    from account_health.actions.watch import add_watch_entry, remove_watch_entries
    from account_health.cli.nightly import watch_table
    from account_health.store.actions import list_watches

    workspace = _workspace()
    until_instant = _as_of_option(until, "--until")
    with open_stores(workspace, create=False) as (_store, engine):
        if list_entries:
            # With an ACCOUNT, only that account's flags.
            account = account_id.strip() if account_id is not None else None
            console.print(watch_table(list_watches(engine, include_inactive=include_all, account_id=account)))
            return
        if account_id is None:
            raise typer.BadParameter("give an ACCOUNT to flag or remove, or --list")
        if remove:
            removed = remove_watch_entries(engine, account_id)
            console.print(f"removed {removed} watch-list entries of {account_id}", markup=False)
            return
        if not reason:
            raise typer.BadParameter("--reason TEXT is required to flag an account")
        entry = add_watch_entry(workspace, engine, account_id, reason, until_instant)
        console.print(
            f"watching {account_id} until {entry['until']:%Y-%m-%d}: {reason} (entry {entry['watch_id']})",
            markup=False,
        )


@app.command()
def tasks(
    owner: Annotated[str | None, typer.Option("--owner", help="Only this owner's tasks.")] = None,
    tier: Annotated[
        list[str] | None, typer.Option("--tier", help="Only tasks of this tier (repeatable), e.g. Red.")
    ] = None,
    as_of: AsOfOption = None,
    output_format: Annotated[
        str, typer.Option("--format", help="Output format: table, csv or json.", case_sensitive=False)
    ] = "table",
) -> None:
    """List the tasks in force on the latest nightly run's date (or --as-of), riskiest first."""
    from account_health.actions.export import tasks_json, write_tasks_csv
    from account_health.cli.nightly import tasks_table
    from account_health.store.actions import latest_nightly_run, read_tasks
    from account_health.training.evaluate import TIER_NAMES

    if output_format not in ("table", "csv", "json"):
        raise typer.BadParameter(f"--format {output_format!r} is not one of table, csv, json")
    # Tier names are matched ignoring case, so --tier red and --tier dark-green work.
    by_lower = {name.lower(): name for name in TIER_NAMES}
    tier = [by_lower.get(name.strip().lower(), name) for name in tier or []] or None
    for name in tier or []:
        if name not in TIER_NAMES:
            raise typer.BadParameter(f"--tier {name!r} is not one of {', '.join(TIER_NAMES)}")
    requested = _as_of_option(as_of)
    workspace = _workspace()
    with open_stores(workspace, create=False) as (_store, engine):
        rows = read_tasks(engine, requested, owner, tier)
        never_run = requested is None and latest_nightly_run(engine) is None
    if output_format == "csv":
        write_tasks_csv(rows, sys.stdout)
    elif output_format == "json":
        sys.stdout.write(tasks_json(rows))
    elif never_run:
        console.print("no tasks: no nightly run has succeeded yet; run `account-health run`", markup=False)
    else:
        console.print(tasks_table(rows))


@app.command("task-done")
def task_done(
    task_id: Annotated[
        int, typer.Argument(metavar="TASK_ID", help="The task's id, as `account-health tasks` lists it.")
    ],
    on: Annotated[
        str | None, typer.Option("--on", help="When it was done (YYYY-MM-DD or an instant). Default: now.")
    ] = None,
) -> None:
    """Mark a task completed; a completed workshop task lets a Yellow account's expansion resume."""
    from account_health.store.actions import complete_task

    completed_at = _as_of_option(on, "--on")
    workspace = _workspace()
    with open_stores(workspace, create=False) as (_store, engine):
        row = complete_task(engine, task_id, completed_at)
    if row is None:
        raise AccountHealthError(f"no task with id {task_id}; list the ids with `account-health tasks`")
    earlier = row["previously_completed_at"]
    note = f" (was completed on {earlier:%Y-%m-%d}; now {row['completed_at']:%Y-%m-%d})" if earlier else ""
    console.print(f"task {task_id} ({row['account_id']}, {row['motion']}) completed{note}", markup=False)


def _step_progress() -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=errors,
        transient=True,
    )


QUICKSTART_MARKER = ".account-health-quickstart"


def _resolve_as_of(store: Any, requested: datetime | None, quiet: bool = False) -> datetime:
    if requested is not None:
        _warn_past_data(store, requested)
        return requested
    chosen = default_as_of(store)
    if not quiet:
        newest = newest_data(store)
        if newest is not None and chosen < start_of_day(datetime.now(UTC)):
            reason = f"the day after the newest ingested data, {newest:%Y-%m-%d %H:%M}"
        else:
            reason = "the start of today in UTC"
        console.print(f"as of {chosen:%Y-%m-%d} ({reason})")
    return chosen


def _warn_past_data(store: Any, as_of: datetime) -> None:
    from account_health.asof import days_past_data, oldest_data

    oldest = oldest_data(store)
    if oldest is not None and as_of <= oldest:
        errors.print(
            f"[yellow]warning:[/yellow] as of {as_of:%Y-%m-%d} is before the oldest ingested data "
            f"({oldest:%Y-%m-%d}), so no activity is known yet and every account reads as idle. "
            "Pass a later --as-of."
        )
        return
    gap = days_past_data(store, as_of)
    if gap:
        newest = newest_data(store)
        errors.print(
            f"[yellow]warning:[/yellow] as of {as_of:%Y-%m-%d} is {gap} days after the newest ingested data "
            f"({newest:%Y-%m-%d}); usage will look as if activity stopped and later churn is not known. "
            "Ingest newer exports, or leave out --as-of to use the day after the newest data."
        )


def _rows(count: int) -> str:
    return f"{count:,} row" if count == 1 else f"{count:,} rows"


def _output_folder(folder: Path, option: str) -> Path:
    """Create `folder` for a command's output files before the command does its work, or raise naming the fix."""
    if folder.exists() and not folder.is_dir():
        raise AccountHealthError(f"{folder} is a file, not a folder; pass {option} with a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise AccountHealthError(
            f"cannot create the folder {folder}: {exc.strerror or exc}; pass {option} with a folder you can write to"
        ) from None
    return folder


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeElapsedColumn(),
        console=errors,
        transient=True,
    )


def _step(message: str) -> None:
    errors.print(f"[dim]{message}...[/dim]")


def _show_warning(
    message: Any, category: type[Warning], filename: str, lineno: int, file: Any = None, line: Any = None
) -> None:
    if issubclass(category, AccountHealthWarning):
        errors.print(f"[yellow]warning:[/yellow] {escape(str(message))}")
    else:
        logging.getLogger("py.warnings").debug("%s: %s", category.__name__, message)


_interrupts: list[int] = []
_GLOBAL_OPTIONS = ("-w", "--workspace", "-v", "--verbose")


def _global_option_after_command(arguments: list[str]) -> bool:
    """Return whether a global option follows the command name, where Click reads it as the command's."""
    command_seen = False
    expects_value = False
    for argument in arguments:
        if expects_value:
            expects_value = False
        elif not command_seen:
            if argument in ("-w", "--workspace"):
                expects_value = True
            elif not argument.startswith("-"):
                command_seen = True
        elif argument in _GLOBAL_OPTIONS or argument.startswith("--workspace="):
            return True
    return False


def _note_interrupt(signum: int, frame: Any) -> None:
    """Record a Ctrl-C, then raise KeyboardInterrupt as Python's own handler does."""
    _interrupts.append(signum)
    signal.default_int_handler(signum, frame)


def _interrupted() -> SystemExit:
    errors.print("interrupted; nothing half-written was kept")
    return SystemExit(130)


def main() -> None:
    """Run the CLI, turning library errors into one-line messages and exit code 1, and Ctrl-C into 130."""
    warnings.showwarning = _show_warning
    # Typer turns a KeyboardInterrupt into a bare exit 130, and DuckDB turns one during a query into its
    # own error, so the handler records the Ctrl-C to tell an interrupt from a failure.
    signal.signal(signal.SIGINT, _note_interrupt)
    try:
        app()
    except SystemExit as exc:
        if _interrupts and exc.code not in (0, None):
            raise _interrupted() from None
        if exc.code == 2 and _global_option_after_command(sys.argv[1:]):
            errors.print(
                "hint: -w/--workspace and -v/--verbose go before the command: account-health -w DIR ingest"
            )
        raise
    except KeyboardInterrupt:
        raise _interrupted() from None
    except AccountHealthError as exc:
        if _interrupts:
            raise _interrupted() from None
        errors.print(f"[bold red]error:[/bold red] {escape(str(exc))}", highlight=False)
        raise SystemExit(1) from None
    except (
        OSError,
        RuntimeError,
        duckdb.Error,
        sqlalchemy.exc.SQLAlchemyError,
        pyarrow.ArrowException,
    ) as exc:
        if _interrupts:
            raise _interrupted() from None
        if isinstance(exc, RuntimeError):
            raise
        # Failures of the file system or a store that no library check anticipated: one line, and the
        # traceback only with --verbose.
        logging.getLogger(__name__).info("unexpected failure", exc_info=True)
        errors.print(
            f"[bold red]error:[/bold red] {escape(type(exc).__name__)}: {escape(first_line(exc))} "
            "(run with --verbose for details)",
            highlight=False,
        )
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
