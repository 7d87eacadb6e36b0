"""API bearer tokens: created once, stored only as a SHA-256 hash with a scope (read or write).

A token is 32 random bytes, so a plain SHA-256 of it cannot be reversed by guessing. A slow password
hash would only add latency to every request.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any, Final, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from account_health.store.operational import metadata, now

Scope = Literal["read", "write"]
SCOPES: tuple[Scope, ...] = ("read", "write")
TOKEN_PREFIX = "ah_"

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("token_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("scope", sa.String(8), nullable=False),
    sa.Column("name", sa.String(255)),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("revoked_at", sa.DateTime),
)


@dataclass(frozen=True)
class TokenGrant:
    """The grant of a valid token: its id, its scope and its name."""

    token_id: int
    scope: Scope
    name: str | None

    def allows(self, scope: Scope) -> bool:
        """Return whether this token may be used where `scope` is required; write includes read."""
        return self.scope == "write" or scope == "read"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_token(engine: Engine, scope: Scope, name: str | None = None) -> tuple[int, str]:
    """Store a new token's hash and scope; return its id and the token, which is not stored anywhere."""
    if scope not in SCOPES:
        raise ValueError(f"scope {scope!r} is not one of {', '.join(SCOPES)}")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with engine.begin() as connection:
        result = connection.execute(
            api_tokens.insert().values(token_hash=hash_token(token), scope=scope, name=name, created_at=now())
        )
        key = result.inserted_primary_key
        assert key is not None
    return int(key[0]), token


def list_tokens(engine: Engine) -> list[dict[str, object]]:
    """Return every token's id, scope, name, creation and revocation time; never a hash."""
    query = sa.select(
        api_tokens.c.token_id,
        api_tokens.c.scope,
        api_tokens.c.name,
        api_tokens.c.created_at,
        api_tokens.c.revoked_at,
    ).order_by(api_tokens.c.token_id)
    with engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(query)]


def revoke_token(engine: Engine, token_id: int) -> bool:
    """Revoke a token by id; return False when no token has that id or it was revoked already."""
    with engine.begin() as connection:
        result = connection.execute(
            api_tokens.update()
            .where(api_tokens.c.token_id == token_id, api_tokens.c.revoked_at.is_(None))
            .values(revoked_at=now())
        )
    return result.rowcount == 1


def find_token(engine: Engine, token: str) -> TokenGrant | None:
    """Return the grant of a token that exists and is not revoked, else None."""
    query = sa.select(api_tokens.c.token_id, api_tokens.c.scope, api_tokens.c.name).where(
        api_tokens.c.token_hash == hash_token(token), api_tokens.c.revoked_at.is_(None)
    )
    with engine.connect() as connection:
        row = connection.execute(query).first()
    if row is None or row.scope not in SCOPES:
        return None
    return TokenGrant(int(row.token_id), row.scope, row.name)


class TokenCache:
    """Token lookups remembered for a few seconds, so a busy API does not query the store per request.

    A token revoked in the store stops working within `ttl_seconds`. Unknown tokens are remembered too,
    so a client retrying with a wrong token cannot make every request reach the store.
    """

    MISS: Final[Any] = object()

    def __init__(self, engine: Engine, ttl_seconds: float = 10.0, max_entries: int = 10_000) -> None:
        self.engine = engine
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self._entries: dict[str, tuple[float, TokenGrant | None]] = {}
        self._lock = threading.Lock()

    def get(self, token: str) -> Any:
        """Return the remembered grant (None for an unknown token), or `MISS` when it must be looked up."""
        entry = self._entries.get(hash_token(token))
        if entry is None or entry[0] < time.monotonic():
            return self.MISS
        return entry[1]

    def lookup(self, token: str) -> TokenGrant | None:
        """Return the token's grant from the cache, else from the store, and cache the result."""
        cached = self.get(token)
        if cached is not self.MISS:
            return cached  # type: ignore[no-any-return]
        grant = find_token(self.engine, token)
        with self._lock:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            self._entries[hash_token(token)] = (time.monotonic() + self.ttl_seconds, grant)
        return grant
