"""Server-rendered dashboard pages: tier distribution, accounts, one account, the model.

Pages use Jinja2 templates and a stylesheet shipped in this package, with charts drawn on the
server, so they work with no internet access. Sign-in stores the API token in an HttpOnly,
SameSite=Strict cookie; every page except the sign-in page requires it.
"""

from __future__ import annotations

import json
import math
from importlib import resources
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from account_health.api import charts, schemas, service
from account_health.api.auth import COOKIE_NAME, cookie_grant
from account_health.api.queries import StoreReader
from account_health.config import Config
from account_health.errors import NoDataError, UnknownAccountError
from account_health.monitor.record import latest_report_summary
from account_health.scoring.points import log_odds_of
from account_health.store.tokens import find_token
from account_health.training.evaluate import TIER_NAMES
from account_health.training.plots import CalibrationPoint, WeightBar, calibration_png, weights_png

PAGE_SIZE = 50
COOKIE_MAX_AGE_SECONDS = 8 * 3600

templates = Jinja2Templates(directory=str(resources.files("account_health.api").joinpath("templates")))
templates.env.filters["percent"] = lambda value, digits=1: (
    "—" if value is None else f"{value * 100:.{digits}f} %"
)
templates.env.filters["number"] = lambda value, digits=2: "—" if value is None else f"{value:.{digits}f}"
templates.env.filters["day"] = lambda value: "—" if value is None else f"{value:%Y-%m-%d}"
templates.env.filters["tier_class"] = lambda tier: "tier-" + str(tier).lower()

router = APIRouter(prefix="/dashboard", include_in_schema=False)


@router.get("/sign-in", response_class=HTMLResponse)
def sign_in_page(request: Request, next: str = "/dashboard") -> Response:
    return templates.TemplateResponse(request, "sign_in.html", {"next": _safe_next(next), "error": None})


@router.post("/sign-in", response_class=HTMLResponse)
def sign_in(
    request: Request,
    token: Annotated[str, Form(max_length=200)],
    next: Annotated[str, Form()] = "/dashboard",
) -> Response:
    if find_token(request.app.state.engine, token.strip()) is None:  # uncached, so a new token works at once
        context = {"next": _safe_next(next), "error": "That token is not known or was revoked."}
        return templates.TemplateResponse(request, "sign_in.html", context, status_code=401)
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(
        COOKIE_NAME,
        token.strip(),
        max_age=COOKIE_MAX_AGE_SECONDS,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


@router.post("/sign-out")
def sign_out() -> Response:
    response = RedirectResponse("/dashboard/sign-in", status_code=303)
    response.delete_cookie(COOKIE_NAME, path="/")
    return response


@router.get("", response_class=HTMLResponse)
def overview(request: Request) -> Response:
    if (redirect := _require_sign_in(request)) is not None:
        return redirect
    reader, config = _reader(request), _config(request)
    today = service.distribution(reader, config)
    history = reader.tier_counts_over_time()
    context = {
        "distribution": today,
        "today_chart": charts.distribution_svg({row.tier: row.accounts for row in today.tiers})
        if today.total
        else None,
        "history_chart": (
            charts.distribution_history_svg(history, config.monitor.distribution_bands.red_orange)
            if history
            else None
        ),
        "band": config.monitor.distribution_bands.red_orange,
        "model": reader.model(),
    }
    return templates.TemplateResponse(request, "overview.html", context)


@router.get("/accounts", response_class=HTMLResponse)
def accounts_page(
    request: Request,
    tier: Annotated[str | None, Query(max_length=16)] = None,
    owner: Annotated[str | None, Query(max_length=255, pattern=schemas.NO_NUL)] = None,
    renewal_stage: Annotated[str | None, Query(max_length=64, pattern=schemas.NO_NUL)] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    if (redirect := _require_sign_in(request)) is not None:
        return redirect
    reader = _reader(request)
    tiers = [tier] if tier in TIER_NAMES else []
    owner, renewal_stage = owner or None, renewal_stage or None
    listing = service.accounts(reader, tiers, owner, renewal_stage, PAGE_SIZE, (page - 1) * PAGE_SIZE)
    filters = {"tier": tiers[0] if tiers else "", "owner": owner or "", "renewal_stage": renewal_stage or ""}
    pages = max(1, math.ceil(listing.total / PAGE_SIZE))
    context = {
        "listing": listing,
        "filters": filters,
        "tiers": TIER_NAMES,
        "page": page,
        "pages": pages,
        "query": lambda number: urlencode({**{k: v for k, v in filters.items() if v}, "page": number}),
    }
    return templates.TemplateResponse(request, "accounts.html", context)


@router.get("/accounts/{account_id}", response_class=HTMLResponse)
def account_page(
    request: Request, account_id: Annotated[str, Path(max_length=255, pattern=schemas.NO_NUL)]
) -> Response:
    if (redirect := _require_sign_in(request)) is not None:
        return redirect
    reader = _reader(request)
    try:
        health = service.health(reader, account_id)
    except UnknownAccountError as exc:
        return templates.TemplateResponse(request, "not_found.html", {"message": str(exc)}, status_code=404)
    row = service.health_score(reader, account_id)
    reasons = service.reasons(reader, row)
    # A provisional score has no action of its own: the nightly run's action of the score it revised applies.
    action_as_of = row.get("based_on_as_of") or row["as_of"]
    history = service.history(reader, account_id)
    model = reader.model(row["model_version"])
    cutoffs = {
        key: float(value) for key, value in ((model.artifact.get("tiers") or {}) if model else {}).items()
    }
    context = {
        "health": health,
        "reasons": reasons,
        "experience": service.experience(reader, _config(request), account_id),
        "waterfall": _waterfall(reasons, health.probability),
        "history": history,
        "history_chart": charts.history_svg(
            [charts.HistoryPoint(p.as_of, p.probability, p.tier, p.model_changed) for p in history.items],
            cutoffs,
        ),
        "action": reader.account_action(account_id, action_as_of),
        "tasks": reader.tasks(account_id),
        "watch": [service.watch_entry(entry) for entry in reader.watch_entries(account_id)],
        "watched": health.watched,
    }
    return templates.TemplateResponse(request, "account.html", context)


@router.get("/model", response_class=HTMLResponse)
def model_page(request: Request) -> Response:
    if (redirect := _require_sign_in(request)) is not None:
        return redirect
    reader, config = _reader(request), _config(request)
    try:
        card = service.model_card(reader, config)
    except NoDataError as exc:
        return templates.TemplateResponse(request, "not_found.html", {"message": str(exc)}, status_code=404)
    model = reader.model(card.model_version)
    assert model is not None
    context = {
        "card": card,
        "calibration_png": _calibration_png(model.artifact),
        "weights_png": _weights_png(model.artifact, card),
        "metrics_json": json.dumps(card.metrics, indent=2),
        "monitoring": latest_report_summary(reader.engine),
    }
    return templates.TemplateResponse(request, "model.html", context)


def _waterfall(reasons: list[Any], probability: float) -> str | None:
    used = [reason for reason in reasons if reason.log_odds is not None]
    if not used:
        return None
    steps = [charts.WaterfallStep(reason.signal, reason.log_odds) for reason in used]
    start = log_odds_of(probability) - sum(step.log_odds for step in steps)
    return charts.waterfall_svg(steps, start, probability)


def _calibration_png(artifact: dict[str, Any]) -> str | None:
    metrics = artifact.get("metrics") or {}
    points = [
        CalibrationPoint(float(entry["mean_predicted"]), float(entry["observed"]), int(entry["rows"]))
        for entry in metrics.get("calibration_curve") or []
        if service.finite(entry.get("mean_predicted")) is not None
        and service.finite(entry.get("observed")) is not None
        and entry.get("rows")
    ]
    if not points:
        return None
    with charts.lock():
        png = calibration_png(points, int(artifact.get("horizon_days") or 0), int(metrics.get("rows") or 0))
    return charts.png_data_uri(png)


def _weights_png(artifact: dict[str, Any], card: Any) -> str | None:
    bars = [
        WeightBar(c.column, weight.signal, c.value, c.value, c.low, c.high, bool(weight.flagged))
        for weight in card.weights
        for c in weight.coefficients
        if c.value is not None
    ]
    if not bars:
        return None
    chosen_c = service.finite((artifact.get("regularisation") or {}).get("chosen_c"))
    with charts.lock():
        png = weights_png(bars, [weight.signal for weight in card.weights], chosen_c)
    return charts.png_data_uri(png)


def _require_sign_in(request: Request) -> Response | None:
    if cookie_grant(request) is not None:
        return None
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/dashboard/sign-in?next={quote(target, safe='')}", status_code=303)


def _safe_next(target: str) -> str:
    """Return `target` when it is a path on this site, else the dashboard, so sign-in cannot redirect away."""
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/dashboard"


def _reader(request: Request) -> StoreReader:
    reader: StoreReader = request.app.state.reader
    return reader


def _config(request: Request) -> Config:
    config: Config = request.app.state.config
    return config
