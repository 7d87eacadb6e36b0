"""Bearer-token checks for the API and the dashboard's sign-in cookie."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Request, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from account_health.api.errors import ApiError
from account_health.store.tokens import Scope, TokenCache, TokenGrant

COOKIE_NAME = "account_health_token"

bearer = HTTPBearer(
    auto_error=False,
    description="A token from `account-health token create --scope read|write`, sent as `Authorization: Bearer TOKEN`.",
)


def require(scope: Scope) -> Callable[..., Awaitable[TokenGrant]]:
    """Return a dependency that admits a valid bearer token whose scope covers `scope`."""

    async def check(
        request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)]
    ) -> TokenGrant:
        if credentials is None:
            raise ApiError(
                401,
                "missing_token",
                "this endpoint needs a bearer token: send `Authorization: Bearer TOKEN`, with a token from "
                "`account-health token create`",
            )
        cache: TokenCache = request.app.state.tokens
        grant = cache.get(credentials.credentials)
        if grant is cache.MISS:
            grant = await run_in_threadpool(cache.lookup, credentials.credentials)
        return _allowed(grant, scope)

    return check


def _allowed(grant: TokenGrant | None, scope: Scope) -> TokenGrant:
    """Return the grant, or raise 401 for an unknown token and 403 for too narrow a scope."""
    if grant is None:
        raise ApiError(
            401,
            "invalid_token",
            "the bearer token is not known or was revoked; create one with `account-health token create`",
        )
    if not grant.allows(scope):
        raise ApiError(
            403,
            "insufficient_scope",
            f"this endpoint needs a {scope} token and this token has scope {grant.scope}; create one with "
            f"`account-health token create --scope {scope}`",
        )
    return grant


def cookie_grant(request: Request) -> TokenGrant | None:
    """Return the grant of the dashboard's sign-in cookie, or None when it is absent or invalid."""
    token = request.cookies.get(COOKIE_NAME)
    if not token:
        return None
    cache: TokenCache = request.app.state.tokens
    return cache.lookup(token)
