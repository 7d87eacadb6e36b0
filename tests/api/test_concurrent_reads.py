"""Reads keep succeeding while another process rewrites the scores, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from account_health.api.app import create_app
from account_health.store import operational
from account_health.store.tokens import create_token
from postgres import fresh_database
from scored import bearer, latest_scores

WRITE_SECONDS = 6.0
TESTS = Path(__file__).resolve().parents[1]


@pytest.fixture
def postgresql_url(engine: sa.Engine) -> Iterator[str]:
    """A fresh PostgreSQL database holding a copy of the scored workspace's operational store."""
    with fresh_database() as database_url:
        copy = operational.open_operational_store(database_url)
        with engine.connect() as source, copy.begin() as target:
            for table in (operational.runs, operational.models, operational.scores):
                rows = [dict(row._mapping) for row in source.execute(sa.select(table))]
                target.execute(table.insert(), rows)
            # Serial keys were written explicitly, so move the runs sequence past them.
            target.execute(sa.text("SELECT setval('runs_run_id_seq', (SELECT max(run_id) FROM runs))"))
        copy.dispose()
        yield database_url


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, workspace) -> str:
    if request.param == "sqlite":
        return workspace.operational_store_url
    return request.getfixturevalue("postgresql_url")


def test_reads_never_fail_while_scores_are_rewritten(store_url, workspace, tmp_path):
    engine = operational.open_operational_store(store_url)
    token = create_token(engine, "read")[1]
    accounts = [row["account_id"] for row in latest_scores(engine)[:5]]
    ready = tmp_path / "writer-ready"
    writer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from scored import rewrite_scores; "
            f"print(rewrite_scores({store_url!r}, {WRITE_SECONDS}, {str(ready)!r}))",
        ],
        env={**os.environ, "PYTHONPATH": str(TESTS)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    statuses: Counter[int] = Counter()
    failures: list[str] = []
    try:
        with TestClient(create_app(engine, workspace.config)) as client:
            deadline = time.monotonic() + 60
            while not ready.exists() and writer.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            while writer.poll() is None:
                for account in accounts:
                    response = client.get(f"/v1/accounts/{account}/health", headers=bearer(token))
                    statuses[response.status_code] += 1
                    if response.status_code != 200:
                        failures.append(response.text)
                listing = client.get("/v1/accounts", params={"tier": "Red"}, headers=bearer(token))
                statuses[listing.status_code] += 1
                if listing.status_code != 200 or listing.json()["total"] == 0:
                    failures.append(listing.text)
        stdout, stderr = writer.communicate(timeout=60)
    finally:
        if writer.poll() is None:
            writer.kill()
        engine.dispose()
    assert writer.returncode == 0, stderr
    passes = int(stdout.strip())
    assert passes >= 5, f"the writer rewrote the scores only {passes} times"
    assert statuses[200] >= 50, f"only {statuses[200]} reads overlapped the writes"
    assert failures == [], failures[:3]
