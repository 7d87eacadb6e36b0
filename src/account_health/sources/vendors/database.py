"""A table in the company's own PostgreSQL database, read through Ibis in batches of text columns.

Rows are read in the order of all their columns, so the row numbers that the ingest records as
provenance are the same in every load of unchanged data. The URL comes from an environment
variable, and the provenance names the host, database and table, never the password.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar
from urllib.parse import urlsplit

import numpy as np
import pyarrow as pa

from account_health.config import DatabaseSource, SourceConfig
from account_health.errors import SourceError, first_line
from account_health.sources.files import Batch, _as_strings
from account_health.sources.vendors.base import Adapter, FileBatch, TableDefaults

log = logging.getLogger(__name__)
BATCH_ROWS = 100_000


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
        ordered = rows.order_by(list(rows.columns))
        number = 1
        try:
            for record_batch in ordered.to_pyarrow_batches(chunk_size=BATCH_ROWS):
                arrow = pa.Table.from_batches([record_batch])
                strings = pa.table(
                    [
                        _as_strings(arrow.column(i), Path(database.table), name)
                        for i, name in enumerate(arrow.column_names)
                    ],
                    names=arrow.column_names,
                )
                numbers = np.arange(number, number + strings.num_rows, dtype="int64")
                number += strings.num_rows
                yield FileBatch(0, Batch(strings, numbers, 0, 0))
        finally:
            connection.disconnect()
