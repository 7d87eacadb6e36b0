"""Task exports that are safe to open in a spreadsheet."""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any, TextIO

# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection). Tab and
# carriage return are included because some spreadsheets strip them and then read what follows.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

TASK_COLUMNS = [
    "task_id",
    "as_of",
    "account_id",
    "owner",
    "tier",
    "motion",
    "description",
    "due_date",
    "probability",
    "arr",
    "arr_at_risk",
    "rank",
    "status",
    "watch_reason",
    "validated",
    "completed_at",
]


def spreadsheet_safe(value: Any) -> Any:
    """Return text that starts like a formula with a leading apostrophe, so it shows as text; other values as they are."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def write_tasks_csv(rows: Sequence[Mapping[str, Any]], stream: TextIO) -> None:
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(TASK_COLUMNS)
    for row in rows:
        writer.writerow([spreadsheet_safe(_text(row.get(column))) for column in TASK_COLUMNS])


def tasks_json(rows: Sequence[Mapping[str, Any]]) -> str:
    records = [{column: _plain(row.get(column)) for column in TASK_COLUMNS} for row in rows]
    return json.dumps(records, indent=2) + "\n"


def _text(value: Any) -> Any:
    if isinstance(value, datetime):
        return f"{value:%Y-%m-%dT%H:%M:%S}"
    if isinstance(value, date):
        return f"{value:%Y-%m-%d}"
    return "" if value is None else value


def _plain(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return _text(value)
    return value


__all__ = ["FORMULA_PREFIXES", "TASK_COLUMNS", "spreadsheet_safe", "tasks_json", "write_tasks_csv"]
