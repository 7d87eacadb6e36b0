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
        return _allowed(await _grant(request.app.state.tokens, credentials.credentials), scope)

    return check


class TokenBeforeBody:
    """ASGI middleware that rejects a request with a body to /v1/ before reading the body, unless the
    request carries a known bearer token.

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
            error = await self._token_error(dict(scope["headers"]).get(b"authorization", b""))
            if error is not None:
                await problem(error.status, error.code, error.message, error.headers)(scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _token_error(self, header: bytes) -> ApiError | None:
        kind, _, token = header.decode("latin-1").partition(" ")
        token = token.strip()
        if kind.lower() != "bearer" or not token:
            return ApiError(401, "missing_token", MISSING_TOKEN)
        if await _grant(self.tokens, token) is None:
            return ApiError(401, "invalid_token", INVALID_TOKEN)
        return None


async def _grant(cache: TokenCache, token: str) -> TokenGrant | None:
    """Look up a token's grant, from the cache or else from the store in a worker thread."""
    grant = cache.get(token)
    if grant is cache.MISS:
        grant = await run_in_threadpool(cache.lookup, token)
    return grant


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
