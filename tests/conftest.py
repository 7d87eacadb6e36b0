"""Fixtures shared by the whole test suite."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# Fixtures of the nightly-run tests (a trained company with a run done, copied per test and backend).
pytest_plugins = ["nightly_fixtures"]

# Third-party datasets live outside the checkout, in ../shared/data next to it.
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
REQUIRE_SHARED_DATA = "ACCOUNT_HEALTH_REQUIRE_SHARED_DATA"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Return the shared data folder, skipping the test when it is absent unless the environment requires it."""
    if SHARED_DATA.is_dir():
        return SHARED_DATA
    reason = f"shared data folder {SHARED_DATA} not found"
    if os.environ.get(REQUIRE_SHARED_DATA) == "1":
        pytest.fail(f"{reason}, and {REQUIRE_SHARED_DATA}=1 requires it")
    pytest.skip(f"{reason}; set {REQUIRE_SHARED_DATA}=1 to fail instead")


@pytest.fixture(scope="session")
def spark_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One local Spark session (2 cores) for the whole test run, its files under pytest's tmp folder.

    Skips when pyspark or a Java runtime is missing; with CI=true that skip fails the run.
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        pytest.skip("pyspark is not installed; `pip install -e '.[test]'` installs it")
    java_home = os.environ.get("JAVA_HOME")
    java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
    if java is None or not Path(java).exists():
        pytest.skip("no Java runtime for Spark (set JAVA_HOME or put Java 17 on PATH)")
    root = tmp_path_factory.mktemp("spark")
    # Local mode needs no network; the JVM reads this when it starts, before any configuration.
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    scratch = root / "tmp"
    scratch.mkdir()
    session = (
        SparkSession.builder.master("local[2]")
        .appName("account-health-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.default.parallelism", "2")
        .config("spark.sql.warehouse.dir", str(root / "warehouse"))
        .config("spark.local.dir", str(scratch))
        .config("spark.driver.extraJavaOptions", f"-Djava.io.tmpdir={scratch}")
        .config("spark.driver.memory", "1g")
        # The test tables have a few hundred rows: re-planning between stages and compiling generated code
        # cost more than they save, and took about half of each query's time here.
        .config("spark.sql.adaptive.enabled", "false")
        .config("spark.sql.codegen.wholeStage", "false")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """With CI=true, turn every skip into a failure: CI must run each test against its real component."""
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("CI") == "true" and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.longrepr = f"skipped in CI, where no test may skip: {reason}"
