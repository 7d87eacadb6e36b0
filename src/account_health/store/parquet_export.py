"""Write the canonical tables of the analytical store as Parquet files, for Spark to read.

The ingest stays on DuckDB. With `[signals] engine = "spark"`, each ingest (and `account-health export`)
writes `<folder>/<table>.parquet` for every canonical table, then `_export.json`, which records the
newest load the files contain. Each file is written under a temporary name and renamed into place, so
a reader never sees half a file. Until `_export.json` is written, the folder may mix tables from two
loads. The freshness check (`check_export_current`) catches that, because the marker still names the
older load.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from account_health.config import Workspace
from account_health.errors import ConfigError
from account_health.sources.canonical import TABLES
from account_health.store.analytical import LOADS_TABLE, AnalyticalStore
from account_health.store.operational import now

log = logging.getLogger(__name__)

EXPORT_MARKER = "_export.json"


@dataclass(frozen=True)
class ExportReport:
    folder: Path
    load_id: int
    rows: dict[str, int]


def latest_load_id(store: AnalyticalStore) -> int:
    """Return the newest load id in the store, 0 when nothing was ever ingested."""
    row = store.connection.execute(f"SELECT coalesce(max(load_id), 0) FROM {LOADS_TABLE}").fetchall()[0]
    return int(row[0])


def export_parquet(store: AnalyticalStore, folder: Path) -> ExportReport:
    """Write every canonical table as `folder/<table>.parquet` and record the load they contain."""
    folder.mkdir(parents=True, exist_ok=True)
    load_id = latest_load_id(store)
    rows: dict[str, int] = {}
    for name in TABLES:
        target = folder / f"{name}.parquet"
        temporary = folder / f".{name}.parquet.tmp"
        relation = store.connection.table(name)
        relation.write_parquet(str(temporary), compression="zstd")
        os.replace(temporary, target)
        rows[name] = int(store.connection.execute(f'SELECT count(*) FROM "{name}"').fetchall()[0][0])
    marker = {"load_id": load_id, "exported_at": now().isoformat(), "rows": rows}
    temporary_marker = folder / f".{EXPORT_MARKER}.tmp"
    temporary_marker.write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
    os.replace(temporary_marker, folder / EXPORT_MARKER)
    log.info("exported %d canonical tables (load %d) to %s", len(rows), load_id, folder)
    return ExportReport(folder, load_id, rows)


def export_load_id(folder: Path) -> int | None:
    """Return the load id recorded in `folder`'s export marker, or None when there is none."""
    path = folder / EXPORT_MARKER
    if not path.is_file():
        return None
    try:
        return int(json.loads(path.read_text(encoding="utf-8"))["load_id"])
    except (ValueError, KeyError, TypeError):
        return None


def check_export_current(store: AnalyticalStore, folder: Path) -> None:
    """Raise ConfigError when the export in `folder` is missing or older than the analytical store."""
    exported = export_load_id(folder)
    newest = latest_load_id(store)
    if exported is None:
        raise ConfigError(
            f"no Parquet export of the canonical tables in {folder} for [signals] engine = 'spark'; run "
            "`account-health export`, or fix [spark] parquet_dir or ACCOUNT_HEALTH_SPARK_PARQUET_DIR"
        )
    if exported != newest:
        raise ConfigError(
            f"the Parquet export in {folder} contains load {exported}, but the analytical store's newest load is "
            f"{newest}; run `account-health export` so Spark reads the same data"
        )


def spark_export_folder(workspace: Workspace) -> Path | None:
    """Return the local folder the ingest keeps exported for Spark, or None when it keeps none.

    That is `[spark] parquet_dir` when `[signals] engine = "spark"` reads Parquet files from a local
    path. The user fills tables in a Spark catalog (`[spark] database`) or at a URI.
    """
    if workspace.config.signals.engine != "spark" or workspace.config.spark.database is not None:
        return None
    folder = workspace.spark_parquet_dir
    return None if "://" in folder else Path(folder)
