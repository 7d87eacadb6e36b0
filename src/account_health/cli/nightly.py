"""Rich output of `account-health run`, `watch` and `tasks`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, TaskID
from rich.table import Table

from account_health.cli.render import NOT_VALIDATED, TIER_STYLES, as_of_text
from account_health.nightly import RunObserver


class ProgressObserver(RunObserver):
    """Shows each step of the nightly run as a line of a Rich progress display."""

    def __init__(self, progress: Progress) -> None:
        self.progress_bar = progress
        self.tasks: dict[str, TaskID] = {}

    def step_started(self, step: str) -> None:
        self.tasks[step] = self.progress_bar.add_task(step, total=None)

    def step_finished(self, step: str, seconds: float) -> None:
        task = self.tasks.get(step)
        if task is not None:
            self.progress_bar.update(task, total=1, completed=1, description=f"{step} ({seconds:.1f} s)")

    def progress(self, step: str, label: str, done: int, total: int) -> None:
        task = self.tasks.get(step)
        if task is not None:
            self.progress_bar.update(task, total=total, completed=done, description=f"{step}: {label}")


def run_report(console: Console, summary: Mapping[str, Any]) -> None:
    """Print a nightly run's summary: tiers, tier changes, tasks with overflow, and step timings."""
    if not summary["validated"]:
        console.print(
            f"[bold red]{NOT_VALIDATED}: model {escape(summary['model_version'])} could not be shown to beat "
            "the base rate; treat these scores and tasks as unproven.[/bold red]"
        )
    console.print(
        f"run {summary['run_id']}: {summary['accounts_scored']:,} accounts as of "
        f"{as_of_text(datetime.fromisoformat(summary['as_of']))} "
        f"with model {escape(summary['model_version'])}"
    )

    if summary.get("days_past_data"):
        console.print(
            f"[yellow]warning:[/yellow] as of {summary['as_of'][:10]} is {summary['days_past_data']} days after "
            "the newest ingested data: usage looks as if activity stopped. Check that the exports are fresh."
        )
    hidden = summary.get("hidden_load")
    if hidden:
        console.print(f"[yellow]warning:[/yellow] {escape(hidden['warning'])}")
    tiers = ", ".join(f"{tier} {count:,}" for tier, count in summary["tiers"].items())
    console.print(f"tiers: {tiers}", markup=False)
    changes = summary["tier_changes"]
    console.print(
        f"tier changes: {changes['total']:,} ({changes['into_red_or_orange']:,} into Red or Orange)",
        markup=False,
    )

    tasks = summary["tasks"]
    console.print(
        f"tasks: {tasks['open']:,} open, {tasks['overflow']:,} overflow (beyond owner capacity), "
        f"{tasks['cooldown']:,} skipped because an earlier task for the same motion is still in force",
        markup=False,
    )
    for owner, count in tasks["overflow_by_owner"].items():
        console.print(f"  [yellow]overflow[/yellow] {escape(owner)}: {count:,} tasks")

    if summary["watched_accounts"]:
        console.print(f"watch list: {summary['watched_accounts']:,} accounts flagged", markup=False)
    if summary["abandoned_runs"]:
        console.print(
            f"marked abandoned (killed before committing): runs {summary['abandoned_runs']}", markup=False
        )
    notifications = summary["notifications"]
    delivery = notifications["delivery"]
    if not notifications.get("destinations", True):
        console.print(
            f"notifications: none sent for {notifications['queued']:,} tier changes, because no notifier is "
            "enabled ([notify.slack], [notify.hubspot], [notify.salesforce], [notify.crm_file])",
            markup=False,
        )
    elif delivery is not None:
        console.print(
            f"notifications: {notifications['queued']:,} tier changes queued, {delivery['sent']:,} messages "
            f"and updates sent, {delivery['unsent']:,} left in the outbox",
            markup=False,
        )
        for destination, error in delivery["errors"].items():
            console.print(
                f"  [yellow]{escape(destination)}[/yellow]: {escape(error)}; see account-health outbox"
            )
    timings = ", ".join(f"{step} {seconds:.1f} s" for step, seconds in summary["timings_seconds"].items())
    console.print(f"[dim]steps: {timings}[/dim]")


def tasks_table(rows: Sequence[Mapping[str, Any]]) -> Table:
    unvalidated = any(not row["validated"] for row in rows)
    title = "Tasks" + (f" [bold red]({NOT_VALIDATED} model)[/bold red]" if unvalidated else "")
    table = Table(title=title, title_justify="left")
    for column in (
        "id",
        "as of",
        "account",
        "owner",
        "tier",
        "motion",
        "due",
        "ARR at risk",
        "status",
        "watch",
    ):
        table.add_column(column, justify="right" if column in ("id", "ARR at risk") else "left")
    for row in rows:
        style = TIER_STYLES.get(row["tier"], "")
        status = row["status"] if row.get("completed_at") is None else "completed"
        table.add_row(
            str(row["task_id"]),
            f"{row['as_of']:%Y-%m-%d}",
            escape(row["account_id"]),
            escape(row["owner"]),
            f"[{style}]{row['tier']}[/{style}]" if style else row["tier"],
            escape(row["motion"]),
            f"{row['due_date']:%Y-%m-%d}",
            f"{row['arr_at_risk']:,.0f}",
            f"[yellow]{status}[/yellow]" if status == "overflow" else status,
            escape(row["watch_reason"] or ""),
        )
    return table


def watch_table(rows: Sequence[Mapping[str, Any]]) -> Table:
    table = Table(title="Watch list", title_justify="left")
    for column in ("id", "account", "reason", "until", "added", "removed"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            str(row["watch_id"]),
            escape(row["account_id"]),
            escape(row["reason"]),
            f"{row['until']:%Y-%m-%d}",
            f"{row['created_at']:%Y-%m-%d %H:%M}",
            f"{row['removed_at']:%Y-%m-%d %H:%M}" if row["removed_at"] else "",
        )
    return table


def watch_line(console: Console, engine: Any, account_id: str, as_of: Any) -> None:
    """Print the account's watch-list flag in force on `as_of`, if any."""
    from account_health.store.actions import active_watches

    entry = active_watches(engine, as_of, account_id).get(account_id)
    if entry is not None:
        console.print(
            f"  [bold]watch list[/bold] until {entry['until']:%Y-%m-%d}: {escape(entry['reason'])} "
            "(a CSM flag; it does not change the tier)"
        )


__all__ = ["ProgressObserver", "run_report", "tasks_table", "watch_line", "watch_table"]
