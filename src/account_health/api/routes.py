"""The /v1 endpoints: thin wrappers that check the token and call `service`.

The status, health and experience endpoints are `async def` and query the store on the event loop:
each makes one or two lookups by key (well under a millisecond on SQLite or a local PostgreSQL), and
skipping the hand-off to the thread pool cut their CPU cost per request by about a quarter in
bench/api.py. NOTE: a store that stops answering therefore stalls every request of that server
process until the store answers or the connection fails. The other endpoints scan more rows and
run on the thread pool.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request

from account_health.api import schemas, service
from account_health.api.auth import require
from account_health.api.errors import ApiError
from account_health.api.queries import StoreReader, TableMissing
from account_health.config import Config
from account_health.store.tokens import TokenGrant

PROBLEMS: dict[int | str, dict[str, Any]] = {
    401: {"model": schemas.Problem, "description": "Missing or unknown bearer token."},
    403: {"model": schemas.Problem, "description": "The token's scope is too narrow."},
    404: {"model": schemas.Problem, "description": "Unknown account, or no scores or model yet."},
}
WRITE_PROBLEMS: dict[int | str, dict[str, Any]] = {
    **PROBLEMS,
    503: {"model": schemas.Problem, "description": "The operational store has no watch-list table yet."},
}

router = APIRouter(prefix="/v1")
Read = Annotated[TokenGrant, Depends(require("read"))]
Write = Annotated[TokenGrant, Depends(require("write"))]
AccountId = Annotated[
    str, Path(min_length=1, max_length=255, description="The account's id in the accounts table.")
]


def _reader(request: Request) -> StoreReader:
    reader: StoreReader = request.app.state.reader
    return reader


def _config(request: Request) -> Config:
    config: Config = request.app.state.config
    return config


@router.get("/status", response_model=schemas.Status, tags=["status"])
async def status(request: Request) -> schemas.Status:
    """Health check of the server and its store; needs no token."""
    return schemas.Status(status="ok", latest_as_of=service.utc(_reader(request).latest_as_of()))


@router.get("/accounts", response_model=schemas.AccountList, responses=PROBLEMS, tags=["accounts"])
def list_accounts(
    request: Request,
    _grant: Read,
    tier: Annotated[list[schemas.Tier], Query(description="Keep these tiers; repeat for several.")] = [],  # noqa: B006
    owner: Annotated[str | None, Query(max_length=255, description="Keep accounts of this CSM.")] = None,
    renewal_stage: Annotated[
        str | None, Query(max_length=64, description="Keep this renewal stage, e.g. Window-Open.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> schemas.AccountList:
    """Accounts scored on the latest as-of date, riskiest first."""
    try:
        return service.accounts(_reader(request), list(tier), owner, renewal_stage, limit, offset)
    except TableMissing as exc:
        raise ApiError(
            400,
            "filter_unavailable",
            f"owner and renewal stage are stored by the nightly run in the {exc.table} table, which this "
            "operational store does not have yet; filter by tier only, or run the nightly run first",
        ) from None


@router.get(
    "/accounts/{account_id}/health", response_model=schemas.Health, responses=PROBLEMS, tags=["accounts"]
)
async def account_health(request: Request, _grant: Read, account_id: AccountId) -> schemas.Health:
    """The account's tier, churn probability, model, top reasons and watch-list flag."""
    return service.health(_reader(request), account_id)


@router.get(
    "/accounts/{account_id}/experience",
    response_model=schemas.Experience,
    responses=PROBLEMS,
    tags=["accounts"],
)
async def account_experience(request: Request, _grant: Read, account_id: AccountId) -> schemas.Experience:
    """The in-app prompt, chat persona and expansion policy to apply to this account."""
    return service.experience(_reader(request), _config(request), account_id)


@router.get(
    "/accounts/{account_id}/history", response_model=schemas.History, responses=PROBLEMS, tags=["accounts"]
)
def account_history(request: Request, _grant: Read, account_id: AccountId) -> schemas.History:
    """Every stored score of the account, oldest first, with model changes marked."""
    return service.history(_reader(request), account_id)


@router.get("/model", response_model=schemas.Model, responses=PROBLEMS, tags=["model"])
def model(
    request: Request,
    _grant: Read,
    version: Annotated[
        str | None, Query(max_length=64, description="A model version; the newest by default.")
    ] = None,
) -> schemas.Model:
    """The model's weights with 95 % intervals, hold-out metrics, cut-offs and per-tier calibration."""
    return service.model_card(_reader(request), _config(request), version)


@router.get("/tiers/distribution", response_model=schemas.Distribution, responses=PROBLEMS, tags=["tiers"])
def tier_distribution(
    request: Request,
    _grant: Read,
    as_of: Annotated[
        date | None, Query(description="A scored as-of date (YYYY-MM-DD); the latest by default.")
    ] = None,
) -> schemas.Distribution:
    """Accounts per tier on one as-of date, with the healthy share of Red plus Orange."""
    when = datetime(as_of.year, as_of.month, as_of.day) if as_of is not None else None
    return service.distribution(_reader(request), _config(request), when)


@router.get("/tiers/history", response_model=schemas.DistributionHistory, responses=PROBLEMS, tags=["tiers"])
def tier_history(request: Request, _grant: Read) -> schemas.DistributionHistory:
    """Accounts per tier on every scored as-of date, oldest first."""
    return service.distribution_history(_reader(request), _config(request))


@router.post(
    "/accounts/{account_id}/watch",
    response_model=schemas.WatchCreated,
    status_code=201,
    responses=WRITE_PROBLEMS,
    tags=["watch-list"],
)
def watch_account(
    request: Request, grant: Write, account_id: AccountId, body: schemas.WatchRequest
) -> schemas.WatchCreated:
    """Put the account on the watch-list with a reason and an optional expiry; the tier does not change."""
    reader = _reader(request)
    service.current_score(reader, account_id)
    created_by = f"api token {grant.token_id}" + (f" ({grant.name})" if grant.name else "")
    _add_watch(reader, account_id, body.reason, body.expires_at, created_by)
    return schemas.WatchCreated(
        account_id=account_id, reason=body.reason, expires_at=body.expires_at, created_by=created_by
    )


@router.post(
    "/job-changes",
    response_model=schemas.JobChangeAccepted,
    status_code=202,
    responses=WRITE_PROBLEMS,
    tags=["watch-list"],
)
def job_change(request: Request, grant: Write, body: schemas.JobChange) -> schemas.JobChangeAccepted:
    """Record a contact's job change by putting the account on the watch-list with the change as reason."""
    reader = _reader(request)
    service.current_score(reader, body.account_id)
    reason = service.watch_reason_for_job_change(body)
    # TODO: once the nightly run and the outbox are merged, re-score the account at once and queue an
    # outbox alert when a champion left. Until then the change only reaches the watch-list.
    _add_watch(reader, body.account_id, reason, None, f"job-change feed, api token {grant.token_id}")
    return schemas.JobChangeAccepted(
        account_id=body.account_id, contact_id=body.contact_id, change=body.change, watch_reason=reason
    )


def _add_watch(
    reader: StoreReader, account_id: str, reason: str, expires_at: datetime | None, created_by: str
) -> None:
    if expires_at is not None and expires_at.tzinfo is not None:
        expires_at = service.utc(expires_at).replace(tzinfo=None)  # type: ignore[union-attr]
    try:
        reader.add_watch(account_id, reason, expires_at, created_by)
    except TableMissing as exc:
        raise ApiError(
            503,
            "watch_list_unavailable",
            f"this operational store has no {exc.table} table yet, so nothing was written; upgrade the store "
            "with a release that includes the nightly run's migrations, then retry",
        ) from None
