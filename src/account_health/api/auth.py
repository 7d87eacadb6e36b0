"""Bearer-token checks for the API and the dashboard's sign-in cookie."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Request, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.types import ASGIApp, Receive, Send
from starlette.types import Scope as AsgiScope

from account_health.api.errors import ApiError, problem
from account_health.store.tokens import Scope, TokenCache, TokenGrant

COOKIE_NAME = "account_health_token"
MISSING_TOKEN = (
    "this endpoint needs a bearer token: send `Authorization: Bearer TOKEN`, with a token from "
    "`account-health token create`"
)
INVALID_TOKEN = "the bearer token is not known or was revoked; create one with `account-health token create`"

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
            raise ApiError(401, "missing_token", MISSING_TOKEN)
        cache: TokenCache = request.app.state.tokens
        grant = cache.get(credentials.credentials)
        if grant is cache.MISS:
            grant = await run_in_threadpool(cache.lookup, credentials.credentials)
        return _allowed(grant, scope)

    return check


class TokenBeforeBody:
    """ASGI middleware: a request with a body to /v1/ is turned away before its body is read unless
    it carries a known bearer token.

    FastAPI reads and parses a body before the endpoint's token check runs, so without this anyone
    could make the server read a large upload. The endpoint still checks the token's scope.
    """

    def __init__(self, app: ASGIApp, tokens: TokenCache) -> None:
        self.app = app
        self.tokens = tokens

    async def __call__(self, scope: AsgiScope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] in ("POST", "PUT", "PATCH")
            and scope["path"].startswith("/v1/")
        ):
            error = await self._refusal(dict(scope["headers"]).get(b"authorization", b""))
            if error is not None:
                await problem(error.status, error.code, error.message, error.headers)(scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _refusal(self, header: bytes) -> ApiError | None:
        kind, _, token = header.decode("latin-1").partition(" ")
        if kind.lower() != "bearer" or not token.strip():
            return ApiError(401, "missing_token", MISSING_TOKEN)
        grant = self.tokens.get(token.strip())
        if grant is self.tokens.MISS:
            grant = await run_in_threadpool(self.tokens.lookup, token.strip())
        return ApiError(401, "invalid_token", INVALID_TOKEN) if grant is None else None


def _allowed(grant: TokenGrant | None, scope: Scope) -> TokenGrant:
    """Return the grant, or raise 401 for an unknown token and 403 for too narrow a scope."""
    if grant is None:
        raise ApiError(401, "invalid_token", INVALID_TOKEN)
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
