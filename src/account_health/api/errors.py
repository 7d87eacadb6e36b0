"""HTTP errors of the API, each with a short code and a message that names the next step."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from account_health.errors import ModelArtifactError, NoDataError, UnknownAccountError

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error sent as `status` with the JSON body {"error": code, "message": message}."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or ({"WWW-Authenticate": "Bearer"} if status == 401 else None)


def problem(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status, headers=headers)


def install_handlers(app: FastAPI) -> None:
    """Translate the library's errors into JSON problems at the edge."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        # Client errors are routine at request rates, so they are logged at debug level only.
        level = logging.WARNING if exc.status >= 500 else logging.DEBUG
        log.log(level, "%s %s: %d %s", request.method, request.url.path, exc.status, exc.code)
        return problem(exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
        # Starlette raises these for a path or method no route serves.
        if exc.status_code == 404:
            message = (
                f"nothing is served at {request.url.path}; the API's paths are listed in /v1/openapi.json"
            )
            return problem(404, "not_found", message)
        if exc.status_code == 405:
            message = f"{request.url.path} does not take {request.method}; /v1/openapi.json lists its methods"
            return problem(405, "method_not_allowed", message, dict(exc.headers or {}))
        return problem(exc.status_code, "http_error", str(exc.detail), dict(exc.headers or {}))

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's own answer echoes the rejected input, which may be megabytes long or hold a NaN
        # that JSON cannot carry; the location, message and type say what to fix.
        log.debug("%s %s: 422 invalid request", request.method, request.url.path)
        details = [
            {
                "loc": list(error.get("loc", ())),
                "msg": str(error.get("msg", "")),
                "type": str(error.get("type", "")),
            }
            for error in exc.errors()
        ]
        return JSONResponse({"detail": details}, status_code=422)

    @app.exception_handler(UnknownAccountError)
    async def _unknown_account(request: Request, exc: UnknownAccountError) -> JSONResponse:
        log.debug("%s %s: unknown account %r", request.method, request.url.path, exc.account_id)
        return problem(404, "unknown_account", str(exc))

    @app.exception_handler(NoDataError)
    async def _no_data(request: Request, exc: NoDataError) -> JSONResponse:
        log.debug("%s %s: %s", request.method, request.url.path, exc)
        return problem(404, "no_data", str(exc))

    @app.exception_handler(ModelArtifactError)
    async def _bad_model(request: Request, exc: ModelArtifactError) -> JSONResponse:
        log.error("invalid model artifact while serving %s: %s", request.url.path, exc)
        return problem(500, "invalid_model", str(exc))
