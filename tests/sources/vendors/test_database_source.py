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


def invalid_timestamp(value: str) -> str:
    """The quarantine reason of a timestamp outside the accepted forms and years."""
    return (
        f"invalid timestamp '{value}': expected ISO 8601 such as 2024-03-20T19:26:08Z (with an optional "
        "UTC offset), epoch seconds or milliseconds, or YYYYMMDD, in the years 1900 to 2199; for another "
        'format set [sources.integrations.csv] date_formats to a list of strptime formats, such as ["%d.%m.%Y %H:%M"]'
    )


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


def test_infinite_timestamps_quarantined(company_database: sa.Engine, tmp_path: Path) -> None:
    """PostgreSQL's 'infinity' and '-infinity' are quarantined by column, and the other rows load."""
    name = company_database.url.database
    with company_database.begin() as connection:
        # PostgreSQL writes a timestamptz as text in the session's time zone, which the values below assume.
        connection.execute(sa.text(f"ALTER DATABASE \"{name}\" SET timezone TO 'UTC'"))
        connection.execute(
            sa.text(
                "INSERT INTO app.account_integrations VALUES "
                "('initech', 'github', '2024-04-01 00:00:00+00', 'infinity', NULL, 2), "
                "('initech', 'slack', '-infinity', NULL, NULL, 1), "
                "('initech', 'zoom', '2024-05-01 00:00:00+00', '2024-06-01 00:00:00+00', NULL, 1), "
                "('umbrella', 'jira', '10000-01-01 00:00:00+00', NULL, NULL, 1), "
                "('umbrella', 'okta', '2024-01-01 00:00:00+00', '0044-03-15 00:00:00+00 BC', NULL, 1)"
            )
        )
    accounts = "account_id\nacme\nglobex\ninitech\numbrella\n"
    workspace = make_workspace(tmp_path, CONFIG, {"accounts.csv": accounts})

    report, store = run_ingest(workspace)
    with store:
        stored = rows(store, "SELECT account_id, integration FROM integrations ORDER BY 1, 2")
        quarantined = rows(
            store,
            'SELECT file, row_number, "column", value, reason FROM quarantine '
            "WHERE value IS NOT NULL ORDER BY row_number",
        )

    label = f"postgresql://127.0.0.1/{name}#app.account_integrations"
    assert stored == [
        ("acme", "salesforce"),
        ("acme", "slack"),
        ("initech", "zoom"),
    ]
    # Rows are numbered in the order of all columns: acme's two, globex, initech's three, umbrella's two.
    assert quarantined == [
        (
            label,
            4,
            "disconnected_at",
            "infinity",
            "infinite timestamp: expected an instant between the years 1900 and 2199; "
            "leave disconnected_at empty (NULL) for an integration that is still connected",
        ),
        (
            label,
            5,
            "connected_at",
            "-infinity",
            "infinite timestamp: expected an instant between the years 1900 and 2199",
        ),
        (label, 7, "connected_at", "10000-01-01 00:00:00+00", invalid_timestamp("10000-01-01 00:00:00+00")),
        (
            label,
            8,
            "disconnected_at",
            "0044-03-15 00:00:00+00 BC",
            invalid_timestamp("0044-03-15 00:00:00+00 BC"),
        ),
    ]
    integrations = counts(report, "integrations")
    assert (integrations.read, integrations.inserted, integrations.quarantined) == (8, 3, 5)
    assert_balanced(report)
