"""Fresh PostgreSQL databases for tests that run against the server in ACCOUNT_HEALTH_TEST_POSTGRES_URL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa

POSTGRES_URL = "ACCOUNT_HEALTH_TEST_POSTGRES_URL"


@contextmanager
def fresh_database() -> Iterator[str]:
    """Create an empty database with a unique name, yield its URL, and drop it afterwards.

    Skips the test when the environment names no server; tests/conftest.py turns that skip into a
    failure in CI.
    """
    url = os.environ.get(POSTGRES_URL)
    if not url:
        pytest.skip(f"set {POSTGRES_URL} to run against PostgreSQL")
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    name = f"account_health_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin.url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()
