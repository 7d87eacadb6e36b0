"""Copy the job changes received by the API into the analytical store's contact_changes table.

`POST /v1/job-changes` keeps each change in the operational store, because the API never opens the
DuckDB store for writing. The nightly run and `account-health ingest` copy them here, under the
source name `api`, so the champion signal and the replacement candidates see them like the batch
feed. Point-in-time rules as for any row loaded after its event: a received change is available
from max(change instant, instant received), so a snapshot taken before the change arrived never
includes it. An undated change counts as happening when it was received.

A received change is unchanged when its key (contact, change instant, kind) is already stored and
available at or before the same instant, from the batch feed or an earlier copy. Otherwise it is
stored, as a new version when the key is known but becomes available only later.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pyarrow as pa
from sqlalchemy.engine import Engine

from account_health.config import RESERVED_SOURCE
from account_health.sources.canonical import TABLES
from account_health.sources.sql import identifier
from account_health.store.analytical import LOADS_TABLE, AnalyticalStore
from account_health.store.job_changes import read_job_changes
from account_health.store.operational import now

log = logging.getLogger(__name__)

API_SOURCE = RESERVED_SOURCE
TABLE = "contact_changes"
# Stored as the rows' file; `_row_number` is the job change's id in that table.
API_FILE = "operational store: job_changes"


@dataclass(frozen=True)
class ReceivedLoad:
    """The outcome of one copy: read = inserted + new_version + unchanged."""

    load_id: int | None
    read: int
    inserted: int
    new_version: int
    unchanged: int


def load_received_job_changes(store: AnalyticalStore, engine: Engine) -> ReceivedLoad:
    """Copy the received job changes that contact_changes lacks, in one DuckDB transaction.

    Records a load (source `api`) in the loads table only when it stores a row, so a copy with
    nothing new leaves the store, and a Parquet export made from it, as they were.
    """
    received = read_job_changes(engine)
    if not received:
        return ReceivedLoad(None, 0, 0, 0, 0)
    # Arrow's microsecond timestamps hold any year a datetime can; pandas' nanoseconds stop at 2262.
    frame = pa.table(
        {
            "job_change_id": pa.array([row["job_change_id"] for row in received], pa.int64()),
            "contact_id": pa.array([row["contact_id"] for row in received], pa.string()),
            "change": pa.array([row["change"] for row in received], pa.string()),
            "changed_at": pa.array(
                [row["changed_at"] or row["received_at"] for row in received], pa.timestamp("us")
            ),
            "received_at": pa.array([row["received_at"] for row in received], pa.timestamp("us")),
        }
    )
    connection = store.connection
    connection.register("_received_frame", frame)
    connection.execute("BEGIN TRANSACTION")
    try:
        counts = _stage(store)
        load_id = _write(store, len(received), counts) if counts["inserted"] + counts["new_version"] else None
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    finally:
        connection.execute("DROP TABLE IF EXISTS _received")
        connection.unregister("_received_frame")
    result = ReceivedLoad(
        load_id,
        len(received),
        counts["inserted"],
        counts["new_version"],
        len(received) - counts["inserted"] - counts["new_version"],
    )
    log.info(
        "copied job changes received by the API: read %d, inserted %d, new version %d, unchanged %d",
        result.read,
        result.inserted,
        result.new_version,
        result.unchanged,
    )
    return result


def _stage(store: AnalyticalStore) -> dict[str, int]:
    """Stage the received changes not yet stored as available by their instant; return their counts."""
    keys = " AND ".join(f"t.{identifier(key)} = _received.{identifier(key)}" for key in TABLES[TABLE].key)
    store.connection.execute(
        """CREATE OR REPLACE TEMP TABLE _received AS
           SELECT contact_id, changed_at, change, greatest(changed_at, received_at) AS _available_at,
                  job_change_id AS _row_number
           FROM _received_frame
           QUALIFY row_number() OVER (
               PARTITION BY contact_id, changed_at, change ORDER BY greatest(changed_at, received_at), job_change_id
           ) = 1"""
    )
    store.connection.execute(
        f"""DELETE FROM _received WHERE EXISTS (
                SELECT 1 FROM {TABLE} t WHERE {keys} AND t._available_at <= _received._available_at)"""
    )
    row = store.connection.execute(
        f"""SELECT count(*) FILTER (WHERE NOT known), count(*) FILTER (WHERE known)
            FROM (SELECT EXISTS (SELECT 1 FROM {TABLE} t WHERE {keys}) AS known FROM _received)"""
    ).fetchall()[0]
    return {"inserted": int(row[0] or 0), "new_version": int(row[1] or 0)}


def _write(store: AnalyticalStore, read: int, counts: dict[str, int]) -> int:
    """Insert the staged rows as one load of the source `api`; return its load id."""
    connection = store.connection
    load_id = int(
        connection.execute(f"SELECT coalesce(max(load_id), 0) + 1 FROM {LOADS_TABLE}").fetchall()[0][0]
    )
    started_at = now()
    content = ", ".join(
        f"coalesce(CAST({identifier(column)} AS VARCHAR), chr(0))" for column in TABLES[TABLE].column_names
    )
    connection.execute(
        f"""INSERT INTO {TABLE} (contact_id, changed_at, change, _available_at, _ingested_at, _load_id, _source,
                                 _file, _row_number, _row_hash, _unattributed)
            SELECT contact_id, changed_at, change, _available_at, CAST(? AS TIMESTAMP), ?, ?, ?, _row_number,
                   md5(concat_ws(chr(31), {content})), FALSE
            FROM _received ORDER BY _row_number""",
        [started_at, load_id, API_SOURCE, API_FILE],
    )
    unchanged = read - counts["inserted"] - counts["new_version"]
    connection.execute(
        f"INSERT INTO {LOADS_TABLE} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            load_id,
            API_SOURCE,
            TABLE,
            API_FILE,
            False,
            started_at,
            now(),
            read,
            counts["inserted"],
            counts["new_version"],
            unchanged,
            0,
            0,
        ],
    )
    return load_id


__all__ = ["API_SOURCE", "ReceivedLoad", "load_received_job_changes"]
