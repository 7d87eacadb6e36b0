"""The analytical store: a DuckDB file holding the canonical tables, read through Ibis.

One DuckDB connection is opened per process and shared: Ibis gets it through `from_connection`, and
the ingest writes through the same connection inside one transaction.
"""

from __future__ import annotations

import logging
from pathlib import Path

import duckdb
import ibis
from ibis.backends.duckdb import Backend as DuckDBBackend

from account_health.errors import ConfigError, first_line
from account_health.sources.canonical import META_COLUMNS, TABLES, TableSpec

log = logging.getLogger(__name__)

_DUCKDB_TYPES = {
    "string": "VARCHAR",
    "float": "DOUBLE",
    "int": "BIGINT",
    "bool": "BOOLEAN",
    "timestamp": "TIMESTAMP",
    "date": "DATE",
}

QUARANTINE_TABLE = "quarantine"
LOADS_TABLE = "loads"


class AnalyticalStore:
    """An open DuckDB analytical store with its Ibis backend."""

    def __init__(self, connection: duckdb.DuckDBPyConnection, path: Path | None) -> None:
        self.connection = connection
        self.path = path
        self.ibis: DuckDBBackend = ibis.duckdb.from_connection(connection)

    def close(self) -> None:
        self.connection.close()

    def table(self, name: str) -> ibis.Table:
        return self.ibis.table(name)

    def has_rows(self, name: str) -> bool:
        rows = self.connection.execute(f'SELECT count(*) FROM "{name}"').fetchall()
        return bool(rows[0][0])

    def __enter__(self) -> AnalyticalStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_analytical_store(
    path: Path | None,
    read_only: bool = False,
    threads: int | None = None,
    memory_limit: str | None = None,
) -> AnalyticalStore:
    """Open (and on first use create) the DuckDB file at `path`; None opens an in-memory store.

    `threads` and `memory_limit` ("3GB", "75%") set DuckDB's settings of the same names.
    """
    if path is not None and not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    target = str(path) if path is not None else ":memory:"
    if path is not None and path.is_file() and path.stat().st_size > 0 and not _is_duckdb_file(path):
        raise ConfigError(
            f"{target!r} exists and is not a DuckDB database; point [workspace] analytical_store or "
            "ACCOUNT_HEALTH_ANALYTICAL_STORE at a new or existing DuckDB file"
        )
    try:
        connection = duckdb.connect(target, read_only=read_only)
        # Timestamps are stored as naive UTC; casts to TIMESTAMPTZ must read them as UTC.
        connection.execute("SET TimeZone = 'UTC'")
        # DuckDB's own progress bar writes to stdout; the CLI draws its own on stderr.
        connection.execute("SET enable_progress_bar = false")
        if threads is not None:
            connection.execute("SET threads = ?", [threads])
        if memory_limit is not None:
            connection.execute("SET memory_limit = ?", [memory_limit.strip()])
        if not read_only:
            create_tables(connection)
            _check_tables(connection, target)
    except (duckdb.Error, OSError) as exc:
        if "lock" in str(exc).lower():
            # DuckDB lets one process write a file, and its lock error names the process that has it open.
            raise ConfigError(
                f"cannot open the analytical store {target!r} because another process is using it: "
                f"{first_line(exc)}; wait for that process (an ingest or nightly run, say) to finish, then retry"
            ) from None
        raise ConfigError(
            f"cannot open the analytical store {target!r}: {first_line(exc)}; point [workspace] analytical_store "
            "or ACCOUNT_HEALTH_ANALYTICAL_STORE at a DuckDB file (it is created when missing), and make sure no "
            "other account-health process is writing to it"
        ) from None
    log.debug("opened analytical store %s", target)
    return AnalyticalStore(connection, path)


def create_tables(connection: duckdb.DuckDBPyConnection) -> None:
    """Create every canonical table, the quarantine and the load log when they are missing."""
    for spec in TABLES.values():
        connection.execute(_create_statement(spec))
    connection.execute(
        f"""CREATE TABLE IF NOT EXISTS {QUARANTINE_TABLE} (
            load_id BIGINT, source VARCHAR, "table" VARCHAR, file VARCHAR, row_number BIGINT,
            "column" VARCHAR, value VARCHAR, reason VARCHAR, quarantined_at TIMESTAMP)"""
    )
    _add_last_load_id(connection)
    connection.execute(
        f"""CREATE TABLE IF NOT EXISTS {LOADS_TABLE} (
            load_id BIGINT, source VARCHAR, "table" VARCHAR, files VARCHAR, backfill BOOLEAN,
            started_at TIMESTAMP, finished_at TIMESTAMP, read BIGINT, inserted BIGINT, new_version BIGINT,
            unchanged BIGINT, quarantined BIGINT, unattributed BIGINT)"""
    )


def _add_last_load_id(connection: duckdb.DuckDBPyConnection) -> None:
    """Add the quarantine's last_load_id column, the latest load that rejected the value, to older stores.

    A value rejected again by a later load is stored once, under the load that first rejected it
    (load_id), so last_load_id is what finds every value a given load rejected. In stores written
    before the column existed, a value's latest rejecting load is not known, so it starts as load_id.
    """
    columns = {row[0] for row in connection.execute(f"DESCRIBE {QUARANTINE_TABLE}").fetchall()}
    if "last_load_id" in columns:
        return
    connection.execute(f"ALTER TABLE {QUARANTINE_TABLE} ADD COLUMN last_load_id BIGINT")
    connection.execute(f"UPDATE {QUARANTINE_TABLE} SET last_load_id = load_id")


def _is_duckdb_file(path: Path) -> bool:
    # DuckDB's storage format writes the magic bytes "DUCK" at offset 8 of the file.
    with path.open("rb") as handle:
        return handle.read(12)[8:12] == b"DUCK"


def _check_tables(connection: duckdb.DuckDBPyConnection, target: str) -> None:
    """Reject a database whose tables of the same names lack the columns this release writes."""
    for spec in TABLES.values():
        names = {row[0] for row in connection.execute(f'DESCRIBE "{spec.name}"').fetchall()}
        missing = [name for name, _type in column_definitions(spec) if name not in names]
        if missing:
            raise ConfigError(
                f"{target!r} has a table {spec.name!r} without the column {missing[0]!r}, so it is not an "
                "account-health analytical store; choose another file"
            )


def column_definitions(spec: TableSpec) -> list[tuple[str, str]]:
    """Return (name, DuckDB type) for the table's canonical and metadata columns."""
    columns = [(column.name, _DUCKDB_TYPES[column.type]) for column in spec.columns]
    columns += [(name, _DUCKDB_TYPES[type_]) for name, type_ in META_COLUMNS.items()]
    return columns


def _create_statement(spec: TableSpec) -> str:
    body = ", ".join(f'"{name}" {type_}' for name, type_ in column_definitions(spec))
    return f'CREATE TABLE IF NOT EXISTS "{spec.name}" ({body})'
