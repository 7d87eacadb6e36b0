"""CRM record updates for tier changes: the health fields per account, and the same updates as a CSV."""

from __future__ import annotations

import csv
import logging
import os
import tempfile
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from account_health.config import CRM_FIELDS, Workspace
from account_health.notify.notice import TierChangeNotice

log = logging.getLogger(__name__)

# Salesforce text fields hold 255 characters unless declared longer; HubSpot's hold far more.
TEXT_LIMIT = 255
# A spreadsheet treats a cell starting with one of these as a formula.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
CSV_COLUMNS = ("account_id", "crm_id", "account_name", *CRM_FIELDS)


def health_values(notice: TierChangeNotice) -> dict[str, Any]:
    """Return the health fields of one change, keyed by the names in config.CRM_FIELDS."""
    signals = "; ".join(f"{signal} {points:+.1f} points" for signal, points in notice.top_signals[:2])
    values: dict[str, Any] = {
        "tier": notice.new_tier,
        "previous_tier": notice.old_tier,
        "probability": round(notice.probability, 4),
        "top_signals": signals or None,
        "action": notice.action,
        "due_date": notice.due_date.isoformat() if notice.due_date is not None else None,
        "owner": notice.owner,
        "renewal_stage": notice.renewal_stage,
        "watch_reason": notice.watch_reason,
        "as_of": notice.as_of.date().isoformat(),
    }
    return {key: _cut(value) for key, value in values.items()}


def crm_record(notice: TierChangeNotice, fields: Mapping[str, str], record_id: str) -> dict[str, Any]:
    """Return the outbox payload of one CRM update: the record id and the CRM field names with values."""
    values = health_values(notice)
    return {"record_id": record_id, "fields": {crm_name: values[key] for key, crm_name in fields.items()}}


def crm_csv_path(workspace: Workspace, as_of: datetime) -> Path:
    """Return where [notify.crm_file] puts the CSV of the run as of `as_of`, relative paths from the config."""
    return workspace.path(workspace.config.notify.crm_file.path.format(as_of=f"{as_of:%Y-%m-%d}"))


def write_crm_csv(path: Path, notices: Sequence[TierChangeNotice]) -> Path:
    """Write the CRM updates of `notices` to a CSV file at `path`, replacing it whole.

    Cells that a spreadsheet would read as a formula get a leading apostrophe. The file is written
    beside its final name and renamed, so a reader never sees half of it.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(CSV_COLUMNS)
            for notice in notices:
                values = health_values(notice)
                row = [notice.account_id, notice.crm_id, notice.account_name]
                row += [values[key] for key in CRM_FIELDS]
                writer.writerow([_csv_cell(value) for value in row])
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    log.info("wrote %d CRM updates to %s", len(notices), path)
    return path


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def _cut(value: Any) -> Any:
    if isinstance(value, str) and len(value) > TEXT_LIMIT:
        return value[: TEXT_LIMIT - 1] + "…"
    return value
