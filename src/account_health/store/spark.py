"""The canonical tables read by Spark, for `[signals] engine = "spark"`.

The signal expressions are Ibis expressions; here they get Ibis's PySpark backend and, for each
canonical table, either the Parquet file the ingest exported (`[spark] parquet_dir`) or a table of the
Spark catalog (`[spark] database`). The ingest itself, the training spine and the labels stay on
DuckDB. pyspark is optional: install the `spark` extra.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ibis

from account_health.config import SparkSettings, Workspace
from account_health.errors import ConfigError, first_line
from account_health.store.analytical import AnalyticalStore
from account_health.store.parquet_export import check_export_current

if TYPE_CHECKING:
    from ibis.backends.pyspark import Backend as PySparkBackend
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

INSTALL_HINT = "install the spark extra (pip install 'account-health[spark]') and Java 17 or newer"


def spark_session(settings: SparkSettings) -> SparkSession:
    """Return the active Spark session, or build one from `[spark] master` and `[spark] conf`.

    An existing session (a notebook's, a test run's, or spark-submit's) is reused as it is; Spark applies
    `conf` entries that can change at run time and ignores the others.
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise ConfigError(f"[signals] engine = 'spark' needs pyspark; {INSTALL_HINT}") from None
    builder: Any = SparkSession.builder.appName("account-health")
    if settings.master:
        builder = builder.master(settings.master)
    # The CLI draws its own progress; Spark's console bars would interleave with it on stderr.
    defaults = {"spark.ui.showConsoleProgress": "false"}
    if _local_mode(settings):
        # Local mode needs no network: keep the driver on the loopback interface, and leave the web UI
        # (which would listen on every interface) off. The JVM reads SPARK_LOCAL_IP when this process
        # starts it, before any configuration.
        defaults |= {
            "spark.driver.host": "127.0.0.1",
            "spark.driver.bindAddress": "127.0.0.1",
            "spark.ui.enabled": "false",
        }
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    conf = defaults | settings.conf
    for key, value in conf.items():
        builder = builder.config(key, value)
    try:
        return builder.getOrCreate()
    except Exception as exc:  # pyspark raises its own error types when the JVM does not start
        raise ConfigError(f"cannot start Spark: {first_line(exc)}; {INSTALL_HINT}") from None


def _local_mode(settings: SparkSettings) -> bool:
    """Return whether the session runs in this process: a local master, or none set outside spark-submit."""
    if settings.master is not None:
        return settings.master.startswith("local")
    # spark-submit starts the Python driver with this variable set, and brings its own master.
    return "PYSPARK_GATEWAY_PORT" not in os.environ


class SparkTables:
    """Canonical tables registered as temporary views of one Spark session, read through Ibis.

    View names carry a random token, so several readers can share a session without one replacing
    another's tables.
    """

    def __init__(self, session: SparkSession, parquet_dir: str | None, database: str | None = None) -> None:
        if (parquet_dir is None) == (database is None):
            raise ValueError("give exactly one of parquet_dir and database")
        # Ibis sets the session time zone to UTC on connect, which the local-day function relies on.
        self.ibis: PySparkBackend = ibis.pyspark.connect(session)
        self.session = session
        self.parquet_dir = parquet_dir
        self.database = database
        self._token = uuid.uuid4().hex[:12]
        self._tables: dict[str, ibis.Table] = {}
        self._has_rows: dict[str, bool] = {}
        self._views: list[str] = []

    def table(self, name: str) -> ibis.Table:
        if name not in self._tables:
            if self.database is not None:
                self._tables[name] = self.ibis.table(name, database=self.database)
            else:
                view = f"account_health_{self._token}_{name}"
                path = f"{str(self.parquet_dir).rstrip('/')}/{name}.parquet"
                self._tables[name] = self.ibis.read_parquet(path, table_name=view)
                self._views.append(view)
        return self._tables[name]

    def has_rows(self, name: str) -> bool:
        if name not in self._has_rows:
            self._has_rows[name] = bool(self.table(name).limit(1).count().execute())
        return self._has_rows[name]

    def close(self) -> None:
        """Drop this reader's temporary views; the session stays up for the next reader."""
        for view in self._views:
            self.session.catalog.dropTempView(view)
        self._views.clear()
        self._tables.clear()


@contextmanager
def open_spark_tables(workspace: Workspace, store: AnalyticalStore) -> Iterator[SparkTables]:
    """Open the workspace's canonical tables on Spark, checking that a local export matches `store`."""
    settings = workspace.config.spark
    if settings.database is None:
        folder = workspace.spark_parquet_dir
        if "://" not in folder:
            check_export_current(store, Path(folder))
        tables = SparkTables(spark_session(settings), folder)
    else:
        tables = SparkTables(spark_session(settings), None, settings.database)
    log.info("signals run on Spark %s", tables.session.version)
    try:
        yield tables
    finally:
        tables.close()
