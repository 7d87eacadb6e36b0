"""HubSpot: CSV exports of companies, contacts and deals, and the tables Fivetran syncs from HubSpot.

A HubSpot export names a contact's or deal's companies in one column, several ids separated by ";";
the first is taken as the record's company, from the first company column that has an id in that row. Export headers are property labels, whose case HubSpot
has changed over time ("Close Date", "Close date"), and older exports named the record id after the
object ("Company ID"), so headers are matched without regard to case or spacing, with those older
names as aliases. Fivetran's deal table has no company column: the deal_company table links them,
so a contracts source lists both files and the adapter joins them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pyarrow as pa

from account_health.config import SourceConfig
from account_health.sources import files as source_files
from account_health.sources.vendors.base import (
    FileBatch,
    TableDefaults,
    TabularAdapter,
    plain_files,
    set_column,
)

# Export headers that name the associated company, most specific first. "Associated Company" (without
# IDs) contains company names, so it is not among them.
COMPANY_COLUMNS = (
    "Associated Company IDs (Primary)",
    "Associated Company ID",
    "Associated Company IDs",
    "Company ID",
    "property_associatedcompanyid",
    "company_id",
    "associatedcompanyid",
)
# Each header the defaults name (but `company`, added below), per table, with its other headers: older
# exports' id headers and the internal property names that an export with internal names uses.
HEADER_ALIASES: dict[str, dict[str, tuple[str, ...]]] = {
    "accounts": {
        "Record ID": ("Company ID", "hs_object_id"),
        "Company name": ("Name",),
        "Company owner": ("hubspot_owner_id",),
        "Annual Revenue": ("annualrevenue",),
    },
    "contacts": {
        "Record ID": ("Contact ID", "hs_object_id"),
        "Email": ("Email address",),
        "Job Title": ("jobtitle",),
    },
    "contracts": {
        "Record ID": ("Deal ID", "hs_object_id"),
        "Close Date": ("closedate",),
        "Amount": ("amount",),
    },
}


class HubspotAdapter(TabularAdapter):
    name = "hubspot"
    tables: ClassVar[dict[str, TableDefaults]] = {
        "accounts": TableDefaults(
            columns={
                "account_id": "Record ID",
                "name": "Company name",
                "crm_id": "Record ID",
                "owner": "Company owner",
                "arr": "Annual Revenue",
            }
        ),
        "contacts": TableDefaults(
            columns={
                "contact_id": "Record ID",
                "account_id": "company",
                "email": "Email",
                "title": "Job Title",
            }
        ),
        "contracts": TableDefaults(
            columns={
                "contract_id": "Record ID",
                "account_id": "company",
                "start_at": "Close Date",
                "arr": "Amount",
            }
        ),
    }

    def transform(self, rows: pa.Table, table: str, path: Path) -> pa.Table:
        return _with_company(_with_default_headers(rows, table))


def _header_key(name: str) -> str:
    return " ".join(name.split()).casefold()


def _with_default_headers(rows: pa.Table, table: str) -> pa.Table:
    """Add each header the defaults name under that exact name, copied from a column that matches it.

    A column matches when its header equals the default header or one of its aliases, ignoring case
    and runs of spaces. The matching columns stay as they are, so a source may map them by their own
    header too.
    """
    present = {_header_key(name): name for name in reversed(rows.column_names)}
    for header, aliases in HEADER_ALIASES[table].items():
        if header in rows.column_names:
            continue
        for candidate in (header, *aliases):
            found = present.get(_header_key(candidate))
            if found is not None:
                rows = rows.append_column(header, rows.column(found))
                break
    return rows


def _with_company(rows: pa.Table) -> pa.Table:
    """Add `company`: per row, the first id of the first associated-company column (in any case) that has one.

    A contact with no primary company may still list companies in another of those columns, so the
    column is chosen row by row, not once for the file.
    """
    present = {_header_key(name): name for name in reversed(rows.column_names)}
    found = [present[_header_key(name)] for name in COMPANY_COLUMNS if _header_key(name) in present]
    if not found:
        return rows
    columns = [
        [_first_id(value) for value in rows.column(name).cast(pa.string()).to_pylist()] for name in found
    ]
    first = [
        next((value for value in values if value is not None), None) for values in zip(*columns, strict=True)
    ]
    return set_column(rows, "company", pa.array(first, pa.string()))


def _first_id(value: str | None) -> str | None:
    if value is None:
        return None
    for part in value.replace(",", ";").split(";"):
        if part.strip():
            text = part.strip()
            return text[:-2] if text.endswith(".0") and text[:-2].isdigit() else text
    return None


class FivetranHubspotAdapter(TabularAdapter):
    """The company, contact and deal tables Fivetran syncs from HubSpot, as CSV or Parquet."""

    name = "fivetran_hubspot"
    deleted_flags = ("is_deleted", "_fivetran_deleted")
    tables: ClassVar[dict[str, TableDefaults]] = {
        "accounts": TableDefaults(columns={"account_id": "id", "name": "property_name", "crm_id": "id"}),
        "contacts": TableDefaults(
            columns={
                "contact_id": "id",
                "account_id": "company",
                "email": "property_email",
                "title": "property_jobtitle",
            }
        ),
        "contracts": TableDefaults(
            columns={
                "contract_id": "deal_id",
                "account_id": "company",
                "start_at": "property_closedate",
                "arr": "property_amount",
            }
        ),
    }

    def read(self, paths: list[Path], config: SourceConfig, table: str) -> Iterator[FileBatch]:
        links = [path for path in paths if "deal_company" in path.name]
        companies = _deal_companies(links, config)
        for file_batch in super().read(paths, config, table):
            if paths[file_batch.file_index] in links:
                # Link rows feed the join; they are records of another table, so they are skipped here.
                rows = file_batch.batch.table.num_rows
                file_batch.batch.table = file_batch.batch.table.slice(0, 0)
                file_batch.batch.row_numbers = file_batch.batch.row_numbers[:0]
                file_batch.skipped["deal_company link"] += rows
            elif "deal_id" in file_batch.batch.table.column_names and companies:
                deals = file_batch.batch.table.column("deal_id").cast(pa.string()).to_pylist()
                linked = pa.array([companies.get(deal or "") for deal in deals], pa.string())
                file_batch.batch.table = set_column(file_batch.batch.table, "company", linked)
            yield file_batch

    def transform(self, rows: pa.Table, table: str, path: Path) -> pa.Table:
        return _with_company(rows)


def _deal_companies(paths: list[Path], config: SourceConfig) -> dict[str, str]:
    """Return each deal's first linked company, from Fivetran's deal_company tables."""
    companies: dict[str, str] = {}
    for path in paths:
        for batch in source_files.iter_batches(path, plain_files(config)):
            if not {"deal_id", "company_id"} <= set(batch.table.column_names):
                continue
            for deal, company in zip(
                batch.table.column("deal_id").to_pylist(),
                batch.table.column("company_id").to_pylist(),
                strict=True,
            ):
                if deal is not None and company is not None:
                    companies.setdefault(deal, company)
    return companies
