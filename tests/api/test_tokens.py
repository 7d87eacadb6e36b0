from __future__ import annotations

import sqlalchemy as sa

from account_health.store import operational
from account_health.store.tokens import api_tokens, find_token, hash_token
from console import run_cli


def test_token_create_prints_once_and_stores_hash(workspace):
    result = run_cli("-w", str(workspace.root), "token", "create", "--scope", "write", "--name", "ci")
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    assert token.startswith("ah_")
    assert "shown only this once" in result.stderr
    engine = operational.connect(workspace.operational_store_url)
    with engine.connect() as connection:
        rows = connection.execute(sa.select(api_tokens)).all()
    grant = find_token(engine, token)
    engine.dispose()
    assert [(row.token_hash, row.scope, row.name) for row in rows] == [(hash_token(token), "write", "ci")]
    assert token not in str([tuple(row) for row in rows])
    assert grant is not None and grant.allows("write")


def test_token_create_rejects_unknown_scope(workspace):
    result = run_cli("-w", str(workspace.root), "token", "create", "--scope", "admin")
    assert result.returncode != 0
    assert "'admin' is not one of read, write" in result.stderr


def test_read_token_cannot_write(engine):
    from account_health.store.tokens import create_token

    grant = find_token(engine, create_token(engine, "read")[1])
    assert grant is not None
    assert grant.allows("read")
    assert not grant.allows("write")


def test_revoked_token_stops_after_cache_lifetime(engine):
    from account_health.store.operational import now
    from account_health.store.tokens import TokenCache, create_token

    token_id, token = create_token(engine, "read")
    cache = TokenCache(engine, ttl_seconds=0.0)
    assert cache.lookup(token) is not None
    with engine.begin() as connection:
        connection.execute(
            sa.update(api_tokens).where(api_tokens.c.token_id == token_id).values(revoked_at=now())
        )
    assert cache.lookup(token) is None


def test_token_list_and_revoke(workspace):
    token = run_cli("-w", str(workspace.root), "token", "create", "--name", "dashboard").stdout.strip()
    listed = run_cli("-w", str(workspace.root), "token", "list")
    (line,) = [line for line in listed.stdout.splitlines() if line.endswith("dashboard")]
    token_id = line.split("\t")[0]
    assert "\tactive\t" in line
    assert token not in listed.stdout

    assert run_cli("-w", str(workspace.root), "token", "revoke", token_id).returncode == 0
    again = run_cli("-w", str(workspace.root), "token", "revoke", token_id)
    assert again.returncode == 1
    assert "no active token" in again.stderr
    engine = operational.connect(workspace.operational_store_url)
    assert find_token(engine, token) is None
    engine.dispose()
    assert "revoked" in run_cli("-w", str(workspace.root), "token", "list").stdout
