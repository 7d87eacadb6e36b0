"""The `account-health` command line: option parsing and output only; the work is in the library."""

from __future__ import annotations

import logging
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
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn

from account_health.asof import default_as_of, newest_data, parse_as_of, start_of_day
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
    """Load the configured exports into the canonical tables, in one transaction."""
    from account_health.cli.render import ingest_table
    from account_health.cli.render_sources import source_notes
    from account_health.sources.ingest import ingest as run_ingest

    workspace = _workspace()
    with open_stores(workspace) as (store, _engine), _progress() as progress:
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
            console.print(
                f"[red]{quarantined:,} rows quarantined[/red]; see them with "
                f'`duckdb {escape(str(workspace.analytical_store_path))} "SELECT * FROM quarantine WHERE load_id = {report.load_id}"`'
            )
        if report.attributed:
            console.print(
                f"{report.attributed:,} rows stored unattributed earlier now belong to a known account"
            )
        if unattributed:
            console.print(
                f"[yellow]{unattributed:,} rows stored unattributed[/yellow] (their account is not in the accounts table)"
            )
        for line in source_notes(report):
            console.print(line, markup=False)


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
def signals(
    as_of: AsOfOption = None,
    account: Annotated[str | None, typer.Option("--account", help="Show only this account.")] = None,
    output_format: Annotated[
        str, typer.Option("--format", help="Output format: table, csv or json.", case_sensitive=False)
    ] = "table",
) -> None:
    """Print each account's signal values and their details as of a date."""
    from rich.table import Table

    from account_health.signals import FEATURES, compute_signals

    if output_format not in ("table", "csv", "json"):
        raise typer.BadParameter(f"--format {output_format!r} is not one of table, csv, json")
    requested = _as_of_option(as_of)
    workspace = _workspace()
    with open_stores(workspace, create=False) as (store, _engine):
        instant = _resolve_as_of(store, requested, quiet=output_format != "table")
        frame = compute_signals(workspace, store, [instant])
    if account is not None:
        frame = frame[frame["account_id"] == account]
        if frame.empty:
            raise AccountHealthError(
                f"account {account!r} is not known before {instant:%Y-%m-%d}; check the id"
            )
    if output_format == "csv":
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
            help="End of the training window (YYYY-MM-DD). Default: [training] end, or the default as-of date."
        ),
    ] = None,
    min_churn_events: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Train even with fewer churn events than [training] min_churn_events, down to this many.",
        ),
    ] = None,
    fit_cutoffs: Annotated[
        bool,
        typer.Option(
            "--fit-cutoffs",
            help="Fit the four tier cut-offs so each tier's observed hold-out churn falls in its "
            "[tiers.bands] band, instead of using the configured cut-offs.",
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
    from account_health.cli.render import riskiest_table, tier_table
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
        f"scored {len(result.scores):,} accounts as of {result.as_of:%Y-%m-%d} with model {result.model_version}"
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
    from account_health.cli.render import explanation, score_change
    from account_health.scoring.explain import explain as run_explain
    from account_health.scoring.explain import explain_change

    as_of_instant = _as_of_option(as_of)
    workspace = _workspace()
    horizon_days = workspace.config.training.horizon_days
    since_instant = _as_of_option(since, "--since")
    with open_stores(workspace, create=False) as (_store, engine):
        if since_instant is None:
            explanation(console, run_explain(engine, account_id, as_of_instant), horizon_days)
        else:
            change = explain_change(engine, account_id, since_instant, as_of_instant)
            score_change(console, change, horizon_days)


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

    run_quickstart(console, directory, accounts, seed, _progress)


def _resolve_as_of(store: Any, requested: datetime | None, quiet: bool = False) -> datetime:
    if requested is not None:
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


def main() -> None:
    """Run the CLI, turning library errors into one-line messages and exit code 1."""
    warnings.showwarning = _show_warning
    try:
        app()
    except AccountHealthError as exc:
        errors.print(f"[bold red]error:[/bold red] {escape(str(exc))}", highlight=False)
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        errors.print("interrupted; nothing half-written was kept")
        raise SystemExit(130) from None
    except (OSError, duckdb.Error, sqlalchemy.exc.SQLAlchemyError, pyarrow.ArrowException) as exc:
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
