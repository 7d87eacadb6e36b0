"""Salesforce: sObject JSON (tree imports and REST query results), CSV exports, and Fivetran tables.

Record ids are written in their 18-character form, so the 15-character id of a report export, the
18-character id of the API and an 18-character id whose letters lost their case all name one record,
while ids that differ only in case stay apart. A record whose IsDeleted is true is in the recycle bin:
it is skipped and counted as a deleted record, as the Fivetran tables' deleted flags are. sObject-tree references such as "@AccountRef1" point at
the referenceId of a record in the same import and are kept without the "@".
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa

from account_health.config import SourceConfig
from account_health.sources import files as source_files
from account_health.sources.salesforce_ids import normalise
from account_health.sources.vendors.base import (
    Adapter,
    BatchBuilder,
    FileBatch,
    JsonRecord,
    TableDefaults,
    TabularAdapter,
    flatten,
    is_tabular,
    is_true_text,
    iter_json_records,
    plain_files,
    records_from_tables,
    scalar_text,
    set_column,
)

# The sObject type each canonical table reads.
SOBJECTS = {"accounts": "Account", "contacts": "Contact", "contracts": "Contract"}
# Report exports label columns "Object: Field Label"; these labels fill the API field names.
REPORT_FIELDS: dict[str, dict[str, tuple[str, ...]]] = {
    "Id": {
        "accounts": ("Account: Account ID", "Account: Account Name"),
        "contacts": ("Contact: Contact ID", "Contact: Email"),
        "contracts": ("Contract: Contract ID",),
    },
    "AccountId": {
        "contacts": ("Account: Account ID", "Account: Account Name"),
        "contracts": ("Account: Account ID", "Account: Account Name"),
    },
    "Name": {"accounts": ("Account: Account Name",)},
    "OwnerId": {"accounts": ("Account: Account Owner",)},
    "Email": {"contacts": ("Contact: Email",)},
    "Title": {"contacts": ("Contact: Title",)},
    "StartDate": {"contracts": ("Contract: Contract Start Date",)},
    "EndDate": {"contracts": ("Contract: Contract End Date",)},
    "ContractTerm": {"contracts": ("Contract: Contract Term (months)",)},
}
_ID_NAME = re.compile(r"(^Id$|[a-z]Id$|_id$|^id$)")

API_DEFAULTS = {
    "accounts": TableDefaults(
        columns={"account_id": "Id", "name": "Name", "crm_id": "Id", "owner": "OwnerId"}
    ),
    "contacts": TableDefaults(
        columns={"contact_id": "Id", "account_id": "AccountId", "email": "Email", "title": "Title"}
    ),
    "contracts": TableDefaults(
        columns={
            "contract_id": "Id",
            "account_id": "AccountId",
            "start_at": "StartDate",
            "end_at": "EndDate",
            "term_months": "ContractTerm",
        }
    ),
}


class SalesforceAdapter(Adapter):
    name = "salesforce"
    tables: ClassVar[dict[str, TableDefaults]] = API_DEFAULTS

    def read(self, paths: list[Path], config: SourceConfig, table: str) -> Iterator[FileBatch]:
        wanted = SOBJECTS[table]
        for index, path in enumerate(paths):
            builder = BatchBuilder(index, path.stat().st_size)
            records: Iterator[tuple[JsonRecord, str | None]]
            report = _ReportShape.of(path, config) if is_tabular(path) else None
            if is_tabular(path):
                records = ((record, None) for record in records_from_tables(path, config))
            else:
                records = _tree_records(path)
            for record, parent in records:
                if record.error is not None and report is not None:
                    record = report.account_row(record)
                if record.error is not None:
                    builder.reject(record.row_number, record.text, record.error)
                    continue
                if report is not None and table == "contacts" and report.without_contact(record):
                    builder.skip("account-only report row")
                    continue
                if not isinstance(record.value, dict):
                    builder.reject(record.row_number, record.text, "expected a Salesforce record object")
                    continue
                kind = _record_type(record.value)
                if kind is not None and kind != wanted:
                    builder.skip(f"{kind} record")
                    continue
                if _is_deleted(record.value):
                    builder.skip("deleted record")
                    continue
                builder.add(record.row_number, _flat_record(record.value, table, parent))
                if builder.full:
                    yield from builder.emit()
            yield from builder.emit(final=True)


@dataclass
class _ReportShape:
    """The columns of a report export whose account columns come before its `Contact: ...` columns.

    A report of accounts with or without contacts ends the row of an account without contacts after
    the account's columns, so that row is shorter than the header.
    """

    header: list[str]
    account_columns: int
    delimiter: str

    @classmethod
    def of(cls, path: Path, config: SourceConfig) -> _ReportShape | None:
        plain = plain_files(config)
        header = source_files.read_header(path, plain)
        first = next((index for index, name in enumerate(header) if name.startswith("Contact: ")), 0)
        if first == 0 or not all(name.startswith("Contact: ") for name in header[first:]):
            return None
        return cls(header, first, source_files.csv_delimiter(path, plain))

    def account_row(self, record: JsonRecord) -> JsonRecord:
        """Return a row that contains exactly the account columns as a record, any other row as it is."""
        fields = next(csv.reader([record.text], delimiter=self.delimiter), [])
        if len(fields) != self.account_columns:
            return record
        values: list[str | None] = [value.strip() or None for value in fields]
        values += [None] * (len(self.header) - len(fields))
        return JsonRecord(record.row_number, dict(zip(self.header, values, strict=True)), text=record.text)

    def without_contact(self, record: JsonRecord) -> bool:
        """Return whether the row's contact columns are all empty: an account without contacts."""
        row = record.value if isinstance(record.value, dict) else {}
        return all(not (row.get(name) or "").strip() for name in self.header[self.account_columns :])


def _tree_records(path: Path) -> Iterator[tuple[JsonRecord, str | None]]:
    """Yield the records of an sObject file with the parent reference of nested child records."""
    for record in iter_json_records(path, ("records",)):
        yield record, None
        if record.error is None and isinstance(record.value, dict):
            parent = _record_id(record.value)
            for field_value in record.value.values():
                if isinstance(field_value, dict) and isinstance(field_value.get("records"), list):
                    for child in field_value["records"]:
                        yield JsonRecord(record.row_number, child, text=record.text), parent


def _record_type(record: dict[str, Any]) -> str | None:
    attributes = record.get("attributes")
    return attributes.get("type") if isinstance(attributes, dict) else None


def _is_deleted(record: dict[str, Any]) -> bool:
    """Return whether the record is in the recycle bin: IsDeleted (in any case) is true.

    A Bulk API query with queryAll, a REST queryAll result and a data export all write IsDeleted.
    """
    for name, value in record.items():
        if name.lower() == "isdeleted":
            return is_true_text(scalar_text(value))
    return False


def _record_id(record: dict[str, Any]) -> str | None:
    attributes = record.get("attributes")
    reference = attributes.get("referenceId") if isinstance(attributes, dict) else None
    value = record.get("Id") or reference
    return scalar_text(value)


def _flat_record(record: dict[str, Any], table: str, parent: str | None) -> dict[str, str | None]:
    flat: dict[str, str | None] = {}
    for name, value in record.items():
        if isinstance(value, dict) and isinstance(value.get("records"), list):
            continue
        if isinstance(value, dict):
            flatten(value, name, 1, flat)
        else:
            flat[name] = scalar_text(value)
    for field_name, tables in REPORT_FIELDS.items():
        if flat.get(field_name) is None:
            for label in tables.get(table, ()):
                if flat.get(label) is not None:
                    flat[field_name] = flat[label]
                    break
    if flat.get("Id") is None:
        flat["Id"] = _record_id(record)
    if parent is not None and flat.get("AccountId") is None:
        flat["AccountId"] = parent
    for name, value in flat.items():
        if value is not None and _ID_NAME.search(name):
            flat[name] = normalise(value.removeprefix("@"))
    return flat


class FivetranSalesforceAdapter(TabularAdapter):
    """The account, contact and contract tables Fivetran syncs from Salesforce, as CSV or Parquet."""

    name = "fivetran_salesforce"
    deleted_flags = ("is_deleted", "_fivetran_deleted")
    tables: ClassVar[dict[str, TableDefaults]] = {
        "accounts": TableDefaults(
            columns={"account_id": "id", "name": "name", "crm_id": "id", "owner": "owner_id"}
        ),
        "contacts": TableDefaults(
            columns={"contact_id": "id", "account_id": "account_id", "email": "email", "title": "title"}
        ),
        "contact_activity": TableDefaults(
            columns={
                "contact_id": "who_id",
                "day": "activity_date",
                "emails": "activity_emails",
                "meetings": "activity_meetings",
            },
            duplicate_keys="sum",
        ),
        "contracts": TableDefaults(
            columns={
                "contract_id": "id",
                "account_id": "account_id",
                "start_at": "start_date",
                "end_at": "end_date",
                "term_months": "contract_term",
            }
        ),
    }

    def transform(self, rows: pa.Table, table: str, path: Path) -> pa.Table:
        if table == "contact_activity":
            rows = _activity_counts(rows)
        for name in rows.column_names:
            if name == "id" or name.endswith("_id"):
                values = rows.column(name).cast(pa.string()).to_pylist()
                rows = set_column(rows, name, pa.array([_normalise(value) for value in values], pa.string()))
        return rows


def _activity_counts(rows: pa.Table) -> pa.Table:
    """Count each Event row as a meeting, and each Task row as an email (subtype Email) or a meeting (Call)."""
    count = rows.num_rows
    if "event_subtype" in rows.column_names:
        emails, meetings = [0] * count, [1] * count
    else:
        subtypes = _lower(rows, "task_subtype")
        kinds = _lower(rows, "type")
        emails = [int("email" in (subtype, kind)) for subtype, kind in zip(subtypes, kinds, strict=True)]
        meetings = [int("call" in (subtype, kind)) for subtype, kind in zip(subtypes, kinds, strict=True)]
    rows = set_column(rows, "activity_emails", pa.array([str(value) for value in emails], pa.string()))
    return set_column(rows, "activity_meetings", pa.array([str(value) for value in meetings], pa.string()))


def _lower(rows: pa.Table, name: str) -> list[str]:
    if name not in rows.column_names:
        return [""] * rows.num_rows
    return [(value or "").strip().lower() for value in rows.column(name).cast(pa.string()).to_pylist()]


def _normalise(value: str | None) -> str | None:
    return None if value is None else normalise(value.strip())
