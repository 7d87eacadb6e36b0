"""Plain functions that build the API's responses from the operational store.

The routes and the dashboard call these and only translate errors to HTTP at the edge.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

from account_health.actions.job_changes import CHANGE_WORDS, record_job_change
from account_health.actions.watch import add_watch_with
from account_health.api import schemas
from account_health.api.experience import EXPANSION_ALLOWED, TIER_EXPERIENCE
from account_health.api.queries import StoreReader
from account_health.asof import start_of_day
from account_health.config import Config
from account_health.errors import AccountHealthError, NoDataError, UnknownAccountError
from account_health.scoring.explain import reasons_for
from account_health.scoring.points import log_odds_of, probability_points
from account_health.store.operational import now
from account_health.training.evaluate import TIER_NAMES

TOP_REASONS = 3
# Years a job change's changed_at may fall in, as for every timestamp the ingest accepts.
FIRST_YEAR, LAST_YEAR = 1900, 2199
CUTOFF_KEYS = {"Red": "red", "Orange": "orange", "Yellow": "yellow", "Green": "green"}
BAND_KEYS = {
    "Red": "red",
    "Orange": "orange",
    "Yellow": "yellow",
    "Green": "green",
    "Dark-Green": "dark_green",
}


def finite(value: Any) -> float | None:
    """Return the value as a finite float, or None when it is missing, NaN or infinite."""
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def utc(value: datetime | None) -> datetime | None:
    """Mark a naive UTC datetime from the store as UTC, so it serialises with a Z."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def current_score(reader: StoreReader, account_id: str) -> dict[str, Any]:
    """Return the account's newest score, or raise UnknownAccountError."""
    row = reader.latest_score(account_id)
    if row is None:
        raise UnknownAccountError(account_id)
    return row


def health_score(reader: StoreReader, account_id: str) -> dict[str, Any]:
    """Return the account's current score: its provisional score while one is in force, else its newest stored score.

    A provisional score (from a job change) has the scores-history columns plus `provisional_id`,
    the job change's columns and the stored score it started from.
    """
    provisional = reader.provisional_score(account_id)
    return provisional if provisional is not None else current_score(reader, account_id)


def provisional_cause(row: dict[str, Any]) -> schemas.ProvisionalCause | None:
    """Return why a score from `health_score` is provisional, or None for a stored score."""
    if "provisional_id" not in row:
        return None
    when = f" on {row['changed_at']:%Y-%m-%d}" if row["changed_at"] else ""
    text = (
        f"re-scored at once after contact {row['contact_id']} {CHANGE_WORDS[row['change']]}{when} "
        f"(job change {row['job_change_id']}, received {row['received_at']:%Y-%m-%d %H:%M} UTC), from the "
        f"score as of {row['based_on_as_of']:%Y-%m-%d} ({row['previous_tier']}, "
        f"{float(row['previous_probability']) * 100:.1f} %); a nightly run as of {row['as_of']:%Y-%m-%d} "
        "or later replaces it"
    )
    return schemas.ProvisionalCause(
        job_change_id=row["job_change_id"],
        contact_id=row["contact_id"],
        change=row["change"],
        changed_at=utc(row["changed_at"]),
        received_at=utc(row["received_at"]),
        based_on_as_of=utc(row["based_on_as_of"]),
        previous_tier=row["previous_tier"],
        previous_probability=float(row["previous_probability"]),
        text=text,
    )


def reasons(reader: StoreReader, row: dict[str, Any]) -> list[schemas.Reason]:
    """Return every signal's reason for a stored score, largest contribution first."""
    contributions = json.loads(row["contributions"])
    probability = float(row["probability"])
    if row.get("probability_points"):
        points = json.loads(row["probability_points"])
    else:
        points = probability_points(log_odds_of(probability), contributions)
    model = reader.model(row["model_version"])
    settings = model.artifact.get("signal_settings", {}) if model is not None else {}
    found = reasons_for(json.loads(row["signals"]), contributions, settings, points)
    return [
        schemas.Reason(
            signal=reason.signal,
            text=reason.text,
            log_odds=finite(reason.log_odds),
            points=finite(reason.points),
        )
        for reason in found
    ]


def health(reader: StoreReader, account_id: str) -> schemas.Health:
    row = health_score(reader, account_id)
    cause = provisional_cause(row)
    model = reader.model(row["model_version"])
    explained = reader.reasons_of(row, lambda stored: reasons(reader, stored))
    used = [reason for reason in explained if reason.log_odds is not None]
    entry = reader.watch_in_force(account_id, row["as_of"])
    return schemas.Health(
        account_id=account_id,
        as_of=utc(row["as_of"]),
        tier=row["tier"],
        raw_tier=row.get("raw_tier"),
        probability=float(row["probability"]),
        horizon_days=model.artifact.get("horizon_days") if model is not None else None,
        model_version=row["model_version"],
        validated=bool(row["validated"]),
        top_reasons=used[:TOP_REASONS],
        watched=entry is not None,
        watch=[watch_entry(entry)] if entry is not None else [],
        provisional=cause is not None,
        provisional_cause=cause,
    )


def experience(reader: StoreReader, config: Config, account_id: str) -> schemas.Experience:
    """Return the account's prompt, persona and expansion policy, preferring its stored actions.

    While a provisional score is in force (a champion left since the nightly run), the experience is
    its tier's playbook from `[actions]`: the stored actions belong to the tier before the change.
    """
    row = health_score(reader, account_id)
    defaults = TIER_EXPERIENCE[row["tier"]]
    provisional = "provisional_id" in row
    action = None if provisional else reader.account_action(account_id, row["as_of"])
    if provisional:
        playbook = config.actions.playbook.for_tier(row["tier"])
        prompt_key, persona_key = playbook.prompt_key, playbook.persona_key
        expansion: str = playbook.expansion
        allowed, source = expansion in EXPANSION_ALLOWED, "provisional tier playbook"
    elif action is None:
        prompt_key, persona_key = defaults.prompt_key, defaults.persona_key
        expansion, allowed, source = defaults.expansion, defaults.expansion_allowed, "tier defaults"
    else:
        prompt_key = action.get("prompt_key") or None
        persona_key = action.get("persona_key") or defaults.persona_key
        expansion = action.get("expansion") or defaults.expansion
        stored_allowed = action.get("expansion_allowed")
        allowed = defaults.expansion_allowed if stored_allowed is None else bool(stored_allowed)
        source = "account_actions"
    prompt = None
    if prompt_key is not None:
        prompt = schemas.Prompt(key=prompt_key, text=config.experience.prompt_text(prompt_key))
    return schemas.Experience(
        account_id=account_id,
        as_of=utc(row["as_of"]),
        tier=row["tier"],
        prompt=prompt,
        persona_key=persona_key,
        expansion=expansion,
        expansion_allowed=allowed,
        source=source,
    )


def accounts(
    reader: StoreReader,
    tiers: list[str],
    owner: str | None,
    renewal_stage: str | None,
    limit: int,
    offset: int,
) -> schemas.AccountList:
    page = reader.list_accounts(tiers, owner, renewal_stage, limit, offset)
    items = [
        schemas.AccountSummary(
            account_id=row["account_id"],
            name=row.get("name"),
            owner=row.get("owner"),
            arr=finite(row.get("arr")),
            renewal_stage=row.get("renewal_stage"),
            tier=row["tier"],
            probability=float(row["probability"]),
            model_version=row["model_version"],
            validated=bool(row["validated"]),
            watched=row["watched"],
        )
        for row in page.rows
    ]
    return schemas.AccountList(
        as_of=utc(page.as_of), total=page.total, limit=limit, offset=offset, items=items
    )


def history(reader: StoreReader, account_id: str) -> schemas.History:
    rows = reader.account_history(account_id)
    if not rows:
        raise UnknownAccountError(account_id)
    provisional = reader.provisional_score(account_id)
    if provisional is not None:
        rows.append(provisional)
    items = []
    previous_model = None
    for row in rows:
        items.append(
            schemas.HistoryPoint(
                as_of=utc(row["as_of"]),
                probability=float(row["probability"]),
                tier=row["tier"],
                raw_tier=row.get("raw_tier"),
                model_version=row["model_version"],
                validated=bool(row["validated"]),
                model_changed=previous_model is not None and row["model_version"] != previous_model,
                provisional="provisional_id" in row,
                job_change_id=row.get("job_change_id"),
            )
        )
        previous_model = row["model_version"]
    return schemas.History(account_id=account_id, items=items)


def model_card(reader: StoreReader, config: Config, model_version: str | None = None) -> schemas.Model:
    """Return a model's weights with intervals, hold-out metrics, cut-offs and tier calibration."""
    model = reader.model(model_version)
    if model is None:
        if model_version is None:
            raise NoDataError("no model is registered in this workspace; run `account-health train` first")
        raise NoDataError(f"model {model_version!r} is not registered; GET /v1/model shows the newest one")
    artifact = model.artifact
    metrics = dict(artifact.get("metrics") or {})
    cutoffs = {key: float(value) for key, value in (artifact.get("tiers") or {}).items()}
    return schemas.Model(
        model_version=model.model_version,
        created_at=utc(model.created_at),
        training_start=artifact.get("training_start"),
        training_end=artifact.get("training_end"),
        horizon_days=artifact.get("horizon_days"),
        validated=model.validated,
        validation_reason=artifact.get("validation_reason"),
        signals_used=list(artifact.get("signals_used") or []),
        weights=_weights(artifact),
        cutoffs=cutoffs,
        metrics=_plain_metrics(metrics),
        tiers=_tier_calibration(metrics.get("tiers") or [], cutoffs, config),
        caveats=[str(caveat) for caveat in artifact.get("caveats") or []],
    )


def distribution(reader: StoreReader, config: Config, as_of: datetime | None = None) -> schemas.Distribution:
    used, counts = reader.tier_counts(as_of)
    return _distribution(used, counts, config)


def distribution_history(reader: StoreReader, config: Config) -> schemas.DistributionHistory:
    items = [_distribution(as_of, counts, config) for as_of, counts in reader.tier_counts_over_time().items()]
    return schemas.DistributionHistory(items=items)


def _distribution(as_of: datetime | None, counts: dict[str, int], config: Config) -> schemas.Distribution:
    total = sum(counts.values())
    tiers = [
        schemas.TierCount(
            tier=tier, accounts=counts.get(tier, 0), share=counts.get(tier, 0) / total if total else 0.0
        )
        for tier in TIER_NAMES
    ]
    red_orange = (counts.get("Red", 0) + counts.get("Orange", 0)) / total if total else None
    return schemas.Distribution(
        as_of=utc(as_of),
        total=total,
        tiers=tiers,
        red_orange_share=red_orange,
        healthy_red_orange_share=config.monitor.distribution_bands.red_orange,
    )


def watch_entry(entry: dict[str, Any]) -> schemas.WatchEntry:
    """Return a watch_list row as the API shows it."""
    return schemas.WatchEntry(
        watch_id=entry["watch_id"],
        reason=entry["reason"],
        until=utc(entry["until"]),
        created_at=utc(entry["created_at"]),
        created_by=entry["created_by"],
        removed_at=utc(entry["removed_at"]),
    )


def add_watch(
    reader: StoreReader, config: Config, account_id: str, body: schemas.WatchRequest, created_by: str
) -> schemas.WatchCreated:
    """Flag the account as `account-health watch ACCOUNT --reason --until` does; return the entry.

    Raises UnknownAccountError for an account without a score and AccountHealthError for a bad entry.
    """
    current_score(reader, account_id)
    until = start_of_day(body.until) if body.until is not None else None
    if until is not None and until < start_of_day(now()):
        raise AccountHealthError(f"until {body.until:%Y-%m-%d} is in the past; give a date from today on")
    entry = add_watch_with(config, reader.engine, account_id, body.reason, until, created_by)
    return schemas.WatchCreated(
        watch_id=entry["watch_id"],
        account_id=account_id,
        reason=entry["reason"],
        until=utc(entry["until"]),
        created_by=created_by,
    )


def job_change(
    reader: StoreReader, config: Config, body: schemas.JobChange, received_by: str, received_at: datetime
) -> schemas.JobChangeAccepted:
    """Keep the job change, flag the account, re-score it when a champion left, and queue one Slack message.

    Raises AccountHealthError for a changed_at outside the years the ingest accepts.
    """
    changed_at = _naive_utc(body.changed_at)
    recorded = record_job_change(
        config,
        reader.engine,
        body.account_id,
        body.contact_id,
        body.change,
        changed_at,
        body.note,
        received_by,
        received_at,
    )
    previous = recorded.previous
    provisional = recorded.provisional
    signals = json.loads(provisional["signals"]) if provisional is not None else {}
    return schemas.JobChangeAccepted(
        job_change_id=recorded.job_change_id,
        duplicate=recorded.duplicate,
        account_id=body.account_id,
        contact_id=body.contact_id,
        change=body.change,
        watch_id=recorded.watch_id,
        watch_reason=recorded.watch_reason,
        watch_until=utc(recorded.watch_until),
        slack_message_id=recorded.message_id,
        slack_message_kind=recorded.message_kind,
        rescored=provisional is not None,
        not_rescored_reason=recorded.rescore_note,
        previous_as_of=utc(previous.get("as_of")),
        previous_tier=previous.get("tier"),
        previous_probability=finite(previous.get("probability")),
        provisional_as_of=utc(provisional["as_of"]) if provisional is not None else None,
        provisional_tier=provisional["tier"] if provisional is not None else None,
        provisional_raw_tier=provisional["raw_tier"] if provisional is not None else None,
        provisional_probability=finite(provisional["probability"]) if provisional is not None else None,
        champions_in_seat=signals.get("champions_in_seat"),
    )


def _naive_utc(changed_at: datetime | None) -> datetime | None:
    """Return a change date as naive UTC, checked against the years any ingested timestamp may fall in."""
    if changed_at is None:
        return None
    instant = changed_at
    if FIRST_YEAR <= changed_at.year <= LAST_YEAR and changed_at.tzinfo is not None:
        instant = changed_at.astimezone(UTC).replace(tzinfo=None)
    if not FIRST_YEAR <= instant.year <= LAST_YEAR:
        raise AccountHealthError(
            f"changed_at {changed_at.isoformat()} is outside the years {FIRST_YEAR} to {LAST_YEAR} (UTC); "
            "send the instant the change happened, or leave changed_at out"
        )
    return instant


def _weights(artifact: dict[str, Any]) -> list[schemas.Weight]:
    intervals = artifact.get("coefficient_intervals") or {}
    weights = []
    for signal, weight in (artifact.get("weights") or {}).items():
        coefficients = []
        for column, value in (weight.get("coefficients") or {}).items():
            interval = intervals.get(column) or {}
            coefficients.append(
                schemas.Coefficient(
                    column=column,
                    value=finite(value),
                    low=finite(interval.get("low")),
                    high=finite(interval.get("high")),
                    spans_zero=interval.get("spans_zero"),
                )
            )
        weights.append(
            schemas.Weight(
                signal=signal,
                share=finite(weight.get("share")),
                flagged=weight.get("flagged"),
                coefficients=coefficients,
            )
        )
    return sorted(weights, key=lambda weight: -(weight.share or 0.0))


def _plain_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    """Keep the scalar metrics and the intervals; curves and per-tier rows have their own fields."""
    plain: dict[str, Any] = {}
    for key, value in metrics.items():
        if isinstance(value, dict) and "value" in value:
            plain[key] = {part: finite(value.get(part)) for part in ("value", "low", "high")}
        elif isinstance(value, (bool, int)) or value is None:
            plain[key] = value
        elif isinstance(value, (int, float)):
            plain[key] = finite(value)
    return plain


def _tier_calibration(
    entries: list[dict[str, Any]], cutoffs: dict[str, float], config: Config
) -> list[schemas.TierCalibration]:
    bands = config.tiers.bands
    result = []
    for entry in entries:
        tier = entry.get("tier")
        if tier not in BAND_KEYS:
            continue
        low, high = getattr(bands, BAND_KEYS[tier])
        result.append(
            schemas.TierCalibration(
                tier=tier,
                cutoff=cutoffs.get(CUTOFF_KEYS.get(tier, "")),
                rows=entry.get("rows"),
                churned=entry.get("churned"),
                mean_predicted=finite(entry.get("mean_predicted")),
                observed=finite(entry.get("observed")),
                observed_low=finite(entry.get("observed_low")),
                observed_high=finite(entry.get("observed_high")),
                consistent=entry.get("consistent"),
                band_low=low,
                band_high=high,
            )
        )
    return result
