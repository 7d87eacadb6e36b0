"""The /v1 endpoints: thin wrappers that check the token and call `service`.

The status, health and experience endpoints are `async def` and query the store on the event loop.
Each makes a few lookups by key, and skipping the hand-off to the thread pool cut their CPU cost per
request by about a quarter in bench/api.py, measured before the health endpoint also looked up the
account's provisional score. NOTE: a store that stops responding therefore stalls
every request of that server process until the connection fails. The other endpoints scan more rows
and run on the thread pool.
"""

from __future__ import annotations

import logging
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, Path, Query, Request, Response
from sqlalchemy.engine import Engine

from account_health.api import schemas, service
from account_health.api.auth import require
from account_health.api.errors import ApiError
from account_health.api.queries import StoreReader
from account_health.config import Config, NotifySettings
from account_health.errors import AccountHealthError, UnknownAccountError
from account_health.notify import deliver
from account_health.store.tokens import TokenGrant

PROBLEMS: dict[int | str, dict[str, Any]] = {
    401: {"model": schemas.Problem, "description": "Missing or unknown bearer token."},
    403: {"model": schemas.Problem, "description": "The token's scope is too narrow."},
    404: {"model": schemas.Problem, "description": "Unknown account, or no scores or model yet."},
}
WRITE_PROBLEMS: dict[int | str, dict[str, Any]] = {
    **PROBLEMS,
    422: {
        "model": schemas.Problem,
        "description": "An invalid body, reason or date; the message says which.",
    },
}

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1")
Read = Annotated[TokenGrant, Depends(require("read"))]
Write = Annotated[TokenGrant, Depends(require("write"))]
AccountId = Annotated[
    str,
    Path(
        min_length=1,
        max_length=255,
        pattern=schemas.NO_NUL,
        description="The account's id in the accounts table.",
    ),
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
    owner: Annotated[
        str | None, Query(max_length=255, pattern=schemas.NO_NUL, description="Keep accounts of this CSM.")
    ] = None,
    renewal_stage: Annotated[
        str | None,
        Query(
            max_length=64, pattern=schemas.NO_NUL, description="Keep this renewal stage, e.g. Window-Open."
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> schemas.AccountList:
    """Accounts scored on the latest as-of date, riskiest first.

    Name, owner, ARR and renewal stage are those of the latest nightly run's account actions.
    """
    return service.accounts(_reader(request), list(tier), owner, renewal_stage, limit, offset)


@router.get(
    "/accounts/{account_id}/health", response_model=schemas.Health, responses=PROBLEMS, tags=["accounts"]
)
async def account_health(request: Request, _grant: Read, account_id: AccountId) -> schemas.Health:
    """Return the account's tier, churn probability, model, top reasons and watch-list flag."""
    return service.health(_reader(request), account_id)


@router.get(
    "/accounts/{account_id}/experience",
    response_model=schemas.Experience,
    responses=PROBLEMS,
    tags=["accounts"],
)
async def account_experience(request: Request, _grant: Read, account_id: AccountId) -> schemas.Experience:
    """Return the in-app prompt, chat persona and expansion policy to apply to this account."""
    return service.experience(_reader(request), _config(request), account_id)


@router.get(
    "/accounts/{account_id}/history", response_model=schemas.History, responses=PROBLEMS, tags=["accounts"]
)
def account_history(request: Request, _grant: Read, account_id: AccountId) -> schemas.History:
    """Return every stored score of the account, oldest first, with model changes marked."""
    return service.history(_reader(request), account_id)


@router.get("/model", response_model=schemas.Model, responses=PROBLEMS, tags=["model"])
def model(
    request: Request,
    _grant: Read,
    version: Annotated[
        str | None,
        Query(max_length=64, pattern=schemas.NO_NUL, description="A model version; the newest by default."),
    ] = None,
) -> schemas.Model:
    """Return the model's weights with 95 % intervals, hold-out metrics, cut-offs and per-tier calibration."""
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
    """Put the account on the watch-list, as `account-health watch ACCOUNT --reason --until`; the tier does not change."""
    try:
        return service.add_watch(_reader(request), _config(request), account_id, body, _by(grant))
    except UnknownAccountError:
        raise
    except AccountHealthError as exc:
        raise ApiError(422, "invalid_watch", str(exc)) from None


@router.post(
    "/job-changes",
    response_model=schemas.JobChangeAccepted,
    status_code=202,
    responses={
        **WRITE_PROBLEMS,
        200: {
            "model": schemas.JobChangeAccepted,
            "description": "The same change was received before: nothing new is stored or sent, and the "
            "body repeats what the first one did (`duplicate` is true).",
        },
    },
    tags=["watch-list"],
)
def job_change(
    request: Request, response: Response, grant: Write, body: schemas.JobChange, background: BackgroundTasks
) -> schemas.JobChangeAccepted:
    """Keep a contact's job change, flag the account and, when a champion in seat left, re-score it at once.

    The re-score starts from the account's latest stored score and changes only the champion signal,
    with the same model, cut-offs and hysteresis as the nightly run. Its result is a provisional score,
    which the health and history endpoints show until a nightly run scores the account on or after
    its as-of date. A move into Red or Orange queues a tier-change alert; any other departure of a
    champion queues a "champion left" message. Messages go through the outbox and are sent after the
    response. A change identical to one already received (account, contact, change, changed_at)
    stores and sends nothing and gets 200 with the first response's content.
    """
    config = _config(request)
    received_at = request.app.state.clock()
    try:
        accepted = service.job_change(
            _reader(request), config, body, f"job-change webhook, {_by(grant)}", received_at
        )
    except UnknownAccountError:
        raise
    except AccountHealthError as exc:
        raise ApiError(422, "invalid_job_change", str(exc)) from None
    if accepted.duplicate:
        response.status_code = 200
    elif accepted.slack_message_id is not None:
        background.add_task(_deliver_slack, request.app.state.engine, config)
    return accepted


def _by(grant: TokenGrant) -> str:
    return f"api token {grant.token_id}" + (f" ({grant.name})" if grant.name else "")


def _deliver_slack(engine: Engine, config: Config) -> None:
    """Send the outbox's pending Slack messages; what fails stays in the outbox for `account-health outbox --retry`."""
    report = deliver(engine, NotifySettings(slack=config.notify.slack))
    if not report.ok:
        log.warning("job-change alert: %d Slack messages left in the outbox", report.unsent)
