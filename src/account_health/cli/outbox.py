"""Tables of the `account-health outbox` command."""

from __future__ import annotations

from rich.markup import escape
from rich.table import Table

from account_health.notify import DeliveryReport, OutboxEntry
from account_health.store.outbox import STATUSES


def counts_table(counts: dict[tuple[str, str], int]) -> Table:
    table = Table(title="Outbox messages by destination and status", title_justify="left")
    table.add_column("destination")
    for status in STATUSES:
        table.add_column(status, justify="right")
    for destination in sorted({destination for destination, _status in counts}):
        table.add_row(destination, *(f"{counts.get((destination, status), 0):,}" for status in STATUSES))
    return table


def entries_table(entries: list[OutboxEntry], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for column in (
        "id",
        "destination",
        "kind",
        "account",
        "as of",
        "status",
        "attempts",
        "last attempt (UTC)",
    ):
        table.add_column(column, justify="right" if column in ("id", "attempts") else "left")
    table.add_column("last error", overflow="fold")
    for entry in entries:
        status = entry.status + (" (in doubt)" if entry.in_doubt and entry.status != "sent" else "")
        table.add_row(
            str(entry.message_id),
            entry.destination,
            entry.kind,
            escape(entry.account_id or "-"),
            f"{entry.as_of:%Y-%m-%d}" if entry.as_of else "-",
            status,
            str(entry.attempts),
            f"{entry.last_attempt_at:%Y-%m-%d %H:%M:%S}" if entry.last_attempt_at else "-",
            escape(entry.last_error or ""),
        )
    return table


def delivery_lines(report: DeliveryReport) -> list[str]:
    if not report.destinations:
        return ["no destination is enabled in [notify]; nothing was sent"]
    lines = []
    for destination in report.destinations:
        line = (
            f"{destination.destination}: {destination.sent:,} sent ({destination.recovered:,} found already "
            f"delivered), {destination.failed:,} failed, {destination.left_pending:,} left pending; "
            f"{destination.counters.requests:,} requests, {destination.counters.rate_limited:,} rate limited"
        )
        if destination.resent_in_doubt:
            line += (
                f"; {destination.resent_in_doubt:,} sent again after a lost response (webhook: at-least-once)"
            )
        if destination.error:
            line += f"\n  [red]{escape(destination.error)}[/red]"
        lines.append(line)
    return lines
