"""Zendesk: incremental export pages and single API objects, and the tables Fivetran syncs from Zendesk.

Incremental export pages are read in stream order and checked against the export's own pagination
contract. Time-based pages (with `end_time`) are ordered by it, because each page's `end_time` is the
next request's `start_time`. Cursor-based pages (with `after_cursor`) carry no position of their own,
so they are ordered by file name, compared with numbers as numbers (page-2 before page-10), which is
how a dump that saves each page in turn names them. The last page must say `end_of_stream: true`; a
stream cut short is an error that names the page to fetch next. A ticket on two pages (time-based
exports repeat items across page boundaries) is stored once, in the version with the latest
`updated_at`. Its sideloaded metric set comes from the same page as that version, so every field of
the stored ticket belongs to one version. Deleted tickets keep their status `deleted`, which the
support signal does not count.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa

from account_health.config import SourceConfig
from account_health.errors import SourceError
from account_health.sources.vendors.base import (
    Adapter,
    BatchBuilder,
    FileBatch,
    TableDefaults,
    TabularAdapter,
    flatten,
    mark_deleted,
    open_binary,
)

# The array each canonical table reads from a page, and the key of a single-object response.
RESOURCES = {
    "tickets": ("tickets", "ticket"),
    "contacts": ("users", "user"),
    "accounts": ("organizations", "organization"),
}
TICKET_COLUMNS = {
    "ticket_id": "id",
    "account_id": "organization_id",
    "created_at": "created_at",
    "updated_at": "updated_at",
    "priority": "priority",
    "status": "status",
}


@dataclass
class _Page:
    path: Path
    items: list[Any]
    is_page: bool
    end_of_stream: bool | None
    end_time: float | None
    after: str | None
    # Ticket metric sets sideloaded on this page (`include=metric_sets`), by ticket id.
    metric_sets: dict[str, Any] = field(default_factory=dict)


class ZendeskAdapter(Adapter):
    name = "zendesk"
    tables: ClassVar[dict[str, TableDefaults]] = {
        "tickets": TableDefaults(
            columns={**TICKET_COLUMNS, "solved_at": "metric_set.solved_at"},
            duplicate_keys="latest",
            latest_by="updated_at",
        ),
        "contacts": TableDefaults(
            columns={"contact_id": "id", "account_id": "organization_id", "email": "email"},
            duplicate_keys="latest",
            latest_by="updated_at",
        ),
        "accounts": TableDefaults(
            columns={"account_id": "id", "name": "name", "crm_id": "external_id"},
            duplicate_keys="latest",
            latest_by="updated_at",
        ),
    }

    def read(self, paths: list[Path], config: SourceConfig, table: str) -> Iterator[FileBatch]:
        array_key, object_key = RESOURCES[table]
        pages = [_read_page(path, array_key, object_key) for path in paths]
        order = _stream_order(pages)
        _check_end_of_stream([pages[index] for index in order])
        for index in order:
            page = pages[index]
            builder = BatchBuilder(index, page.path.stat().st_size)
            for number, item in enumerate(page.items, start=1):
                if not isinstance(item, dict):
                    builder.reject(
                        number, json.dumps(item, default=str)[:1000], f"expected a {object_key} object"
                    )
                    continue
                row = flatten(item)
                # The page's own metric set, never one from another page, which may carry another
                # version of the ticket.
                metrics = page.metric_sets.get(str(item.get("id")))
                if metrics is not None:
                    row.update(flatten(metrics, "metric_set"))
                builder.add(number, row)
                if builder.full:
                    yield from builder.emit()
            yield from builder.emit(final=True)


def _read_page(path: Path, array_key: str, object_key: str) -> _Page:
    with open_binary(path) as handle:
        data = handle.read()
    try:
        document = json.loads(data.decode("utf-8-sig"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise SourceError(
            f"{path}: is not valid JSON ({exc}); save each Zendesk response body as one file"
        ) from None
    if isinstance(document, list):
        return _Page(path, document, False, None, None, None)
    if not isinstance(document, dict):
        raise SourceError(f"{path}: expected a Zendesk response object, found {type(document).__name__}")
    if isinstance(document.get(array_key), list):
        end_time = document.get("end_time")
        return _Page(
            path,
            document[array_key],
            "end_of_stream" in document,
            bool(document["end_of_stream"]) if "end_of_stream" in document else None,
            float(end_time) if isinstance(end_time, (int, float)) else None,
            document.get("after_url") or document.get("next_page") or document.get("after_cursor"),
            _metric_sets(document) if array_key == "tickets" else {},
        )
    if isinstance(document.get(object_key), dict):
        return _Page(path, [document[object_key]], False, None, None, None)
    if "id" in document:
        return _Page(path, [document], False, None, None, None)
    raise SourceError(
        f"{path}: holds no {array_key!r} array and no {object_key!r} object; check that this source's table "
        f"matches the export (tickets, users or organizations)"
    )


def _natural_key(path: Path) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def _stream_order(pages: list[_Page]) -> list[int]:
    """Indexes of the pages in stream order: time-based pages by end_time, the rest by file name."""

    def key(index: int) -> tuple[Any, ...]:
        page = pages[index]
        timed = page.end_time is not None
        return (0 if timed else 1, page.end_time or 0.0, _natural_key(page.path))

    return sorted(range(len(pages)), key=key)


def _check_end_of_stream(pages: list[_Page]) -> None:
    streamed = [page for page in pages if page.is_page]
    if streamed and not streamed[-1].end_of_stream:
        last = streamed[-1]
        raise SourceError(
            f"{last.path}: the incremental export stops before the end of its stream (the last page says "
            f"end_of_stream: false); fetch the next page from {last.after!r}, save it beside the others, "
            "and ingest again"
        )


def _metric_sets(document: dict[str, Any]) -> dict[str, Any]:
    """Return the ticket metric sets sideloaded on one page with `include=metric_sets`, by ticket id."""
    found: dict[str, Any] = {}
    for metrics in document.get("metric_sets") or []:
        if isinstance(metrics, dict) and metrics.get("ticket_id") is not None:
            found[str(metrics["ticket_id"])] = metrics
    return found


class FivetranZendeskAdapter(TabularAdapter):
    """The ticket, user and organization tables Fivetran writes to a warehouse, exported as CSV or Parquet."""

    name = "fivetran_zendesk"
    tables: ClassVar[dict[str, TableDefaults]] = {
        "tickets": TableDefaults(columns=TICKET_COLUMNS),
        "contacts": TableDefaults(
            columns={"contact_id": "id", "account_id": "organization_id", "email": "email"}
        ),
        "accounts": TableDefaults(columns={"account_id": "id", "name": "name", "crm_id": "external_id"}),
    }

    def transform(self, rows: pa.Table, table: str, path: Path) -> pa.Table:
        if table == "tickets":
            # A ticket Fivetran marks deleted in the source counts as deleted, whatever its last status.
            return mark_deleted(rows, ("_fivetran_deleted",))
        return rows
