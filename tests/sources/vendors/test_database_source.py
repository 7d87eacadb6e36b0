"""Integrations read from a table in the company's own PostgreSQL database, through Ibis."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from account_health.errors import SourceError
from vendor_workspace import assert_balanced, counts, make_workspace, rows, run_ingest

CONFIG = """\
[sources.accounts]
table = "accounts"
files = ["accounts.csv"]

[sources.integrations]
table = "integrations"
database = { url_env = "INTEGRATIONS_DATABASE_URL", table = "account_integrations", schema = "app" }
columns = { account_id = "tenant", integration = "provider", connected_at = "created_at", disconnected_at = "revoked_at" }
"""


@pytest.fixture
def company_database(monkeypatch: pytest.MonkeyPatch) -> Iterator[sa.Engine]:
    """A fresh PostgreSQL database holding the company's integrations table, dropped afterwards."""
    url = os.environ.get("ACCOUNT_HEALTH_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("set ACCOUNT_HEALTH_TEST_POSTGRES_URL to run against PostgreSQL")
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    name = f"account_health_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    database_url = admin.url.set(database=name)
    engine = sa.create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE SCHEMA app"))
        connection.execute(
            sa.text(
                "CREATE TABLE app.account_integrations (tenant text, provider text, created_at timestamptz, "
                "revoked_at timestamptz, settings jsonb, seats integer)"
            )
        )
        connection.execute(
            sa.text(
                "INSERT INTO app.account_integrations VALUES "
                "('acme', 'slack', '2024-01-01 10:00:00+02', NULL, '{\"a\": 1}', 5), "
                "('acme', 'salesforce', '2024-02-01 00:00:00+00', '2024-03-01 00:00:00+00', NULL, NULL), "
                "('globex', 'slack', NULL, NULL, NULL, 3)"
            )
        )
    monkeypatch.setenv("INTEGRATIONS_DATABASE_URL", database_url.render_as_string(hide_password=False))
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


def test_integrations_from_postgres(company_database: sa.Engine, tmp_path: Path) -> None:
    workspace = make_workspace(tmp_path, CONFIG, {"accounts.csv": "account_id\nacme\nglobex\n"})

    report, store = run_ingest(workspace)
    with store:
        stored = rows(
            store,
            "SELECT account_id, integration, connected_at, disconnected_at, _file FROM integrations ORDER BY 2",
        )
        quarantined = rows(store, 'SELECT "column", reason FROM quarantine')
    again, store = run_ingest(workspace)
    store.close()

    label = "postgresql://127.0.0.1/" + company_database.url.database + "#app.account_integrations"
    assert stored == [
        ("acme", "salesforce", datetime(2024, 2, 1), datetime(2024, 3, 1), label),
        ("acme", "slack", datetime(2024, 1, 1, 8), None, label),
    ]
    assert quarantined == [("connected_at", "missing required value for integrations.connected_at")]
    assert counts(report, "integrations").read == 3
    assert counts(again, "integrations").unchanged == 2
    assert_balanced(report)
    assert_balanced(again)


def test_missing_url_variable_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INTEGRATIONS_DATABASE_URL", raising=False)
    workspace = make_workspace(tmp_path, CONFIG, {"accounts.csv": "account_id\nacme\n"})

    with pytest.raises(SourceError, match="INTEGRATIONS_DATABASE_URL"):
        run_ingest(workspace)
