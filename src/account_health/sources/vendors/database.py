"""A table in the company's own PostgreSQL database, read through Ibis in batches of text columns.

Rows are read in the order of all their columns, so the row numbers that the ingest records as
provenance are the same in every load of unchanged data. The URL comes from an environment
variable, and the provenance names the host, database and table, never the password.

PostgreSQL stores dates and timestamps that Python's datetime cannot hold: 'infinity', '-infinity',
years before 1 (BC) and after 9999. The driver raises on such a value, so the query reads each of
them as PostgreSQL's text instead, and the ingest quarantines that text like any invalid timestamp.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar
from urllib.parse import urlsplit

import numpy as np
import pyarrow as pa

from account_health.config import DatabaseSource, SourceConfig
from account_health.errors import SourceError, first_line
from account_health.sources.files import Batch, _as_strings
from account_health.sources.vendors.base import Adapter, FileBatch, TableDefaults

if TYPE_CHECKING:
    import ibis.expr.types as ir

log = logging.getLogger(__name__)
BATCH_ROWS = 100_000
# Prefix of the query's extra text column for a date or timestamp column, which contains the values
# that Python's datetime cannot represent, such as 'infinity'.
_OUT_OF_RANGE_PREFIX = "__out_of_range__"


def database_label(database: DatabaseSource, source: str) -> str:
    """Return the provenance of a database source: scheme, host, database and table, without credentials."""
    url = _url(database, source)
    parts = urlsplit(url)
    schema = f"{database.schema_name}." if database.schema_name else ""
    return f"{parts.scheme.split('+')[0]}://{parts.hostname or ''}{parts.path}#{schema}{database.table}"


def _url(database: DatabaseSource, source: str) -> str:
    url = os.environ.get(database.url_env)
    if not url:
        raise SourceError(
            f"[sources.{source}.database] url_env names {database.url_env!r}, which is not set; export it as "
            "postgresql://user:password@host:5432/database"
        )
    return url


class DatabaseAdapter(Adapter):
    """Any canonical table, from a PostgreSQL table whose columns the source maps like a CSV's."""

    name = "database"
    tables: ClassVar[dict[str, TableDefaults]] = {}

    def check_table(self, table: str, source: str) -> TableDefaults:
        return TableDefaults(columns={})

    def read(self, paths: list[Path], config: SourceConfig, table: str) -> Iterator[FileBatch]:
        import ibis

        database = config.database
        assert database is not None
        url = _url(database, "database")
        scheme, _, rest = url.partition("://")
        try:
            connection = ibis.connect(f"{scheme.split('+')[0]}://{rest}")
            rows = connection.table(database.table, database=database.schema_name)
        except Exception as exc:  # Ibis and the driver raise many types; the message names the cause.
            raise SourceError(
                f"cannot read table {database.table!r} from the database in {database.url_env}: {first_line(exc)}; "
                "check the URL, the table name and its schema"
            ) from None
        log.info("reading %s from %s", database.table, database_label(database, "database"))
        ordered = _readable(rows.order_by(list(rows.columns)))
        number = 1
        try:
            for record_batch in ordered.to_pyarrow_batches(chunk_size=BATCH_ROWS):
                strings = _text_columns(pa.Table.from_batches([record_batch]), Path(database.table))
                numbers = np.arange(number, number + strings.num_rows, dtype="int64")
                number += strings.num_rows
                yield FileBatch(0, Batch(strings, numbers, 0, 0))
        finally:
            connection.disconnect()


def _readable(ordered: ir.Table) -> ir.Table:
    """Select every column, with dates and timestamps the driver cannot convert moved to a text column.

    Each date or timestamp column gets a companion text column. Where the value is infinite, before
    the year 1 or after the year 9999, the companion contains its text and the column itself is NULL.
    NOTE: years after 9999 are recognised by their five digits, which holds for PostgreSQL's default
    DateStyle (ISO). Under another DateStyle such a value still stops the read with the driver's error.
    """
    import ibis

    columns: list[ir.Value] = []
    for name, dtype in ordered.schema().items():
        column = ordered[name]
        if not (dtype.is_timestamp() or dtype.is_date()):
            columns.append(column)
            continue
        text = column.cast("string")
        out_of_range = (
            text.isin(["infinity", "-infinity"]) | text.endswith(" BC") | text.re_search("^[0-9]{5}")
        )
        columns.append(ibis.ifelse(out_of_range, ibis.null(dtype), column).name(name))
        columns.append(ibis.ifelse(out_of_range, text, ibis.null("string")).name(_OUT_OF_RANGE_PREFIX + name))
    return ordered.select(*columns)


def _text_columns(arrow: pa.Table, table: Path) -> pa.Table:
    """Return the batch as text columns, with each out-of-range date or timestamp back in its column."""
    import pyarrow.compute as pc

    names = [name for name in arrow.column_names if not name.startswith(_OUT_OF_RANGE_PREFIX)]
    columns = []
    for name in names:
        text = _as_strings(arrow.column(name), table, name)
        out_of_range = _OUT_OF_RANGE_PREFIX + name
        if out_of_range in arrow.column_names:
            raw = arrow.column(out_of_range)
            text = pc.if_else(pc.is_null(raw), text, raw)
        columns.append(text)
    return pa.table(columns, names=names)
