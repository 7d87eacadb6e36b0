"""Fixtures shared by the whole test suite."""

from __future__ import annotations

import os
from pathlib import Path

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


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """With CI=true, turn every skip into a failure: CI must run each test against its real component."""
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("CI") == "true" and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.longrepr = f"skipped in CI, where no test may skip: {reason}"
