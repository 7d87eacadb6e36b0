"""A contact's job change received one at a time (the API's webhook), handled without the nightly run.

The batch feed of job changes (`[sources.contact_changes]`) is ingested into the analytical store and
read by the nightly run. A change received over HTTP cannot go there: the API never opens the
DuckDB store for writing, since a nightly run may hold it. So `record_job_change`, in one transaction
of the operational store:

- keeps the change in `job_changes`, once: the same change received again (same account, contact,
  kind and change instant) stores nothing and returns what the first one stored;
- puts the account on the watch list with the change as the reason (default expiry, as
  `account-health watch`);
- when a champion in seat left the company, re-scores the account at once from its latest stored
  score (`scoring.rescore`) and keeps the result as a provisional score;
- queues at most one Slack message when Slack is on. A re-score that moved the account into an
  immediate tier from a safer one gets a tier-change alert. Any other departure of a champion gets a
  "champion left" message, and a departure from an account without a stored list of champions a
  "contact left" message.

The nightly run copies the received changes into the analytical store (`sources.received`), so its
champion signal counts them too and the account keeps the re-scored champion features.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from account_health.actions.playbook import AccountAction, champion_strength, resolve_action
from account_health.actions.watch import checked_watch
from account_health.config import Config
from account_health.errors import UnknownAccountError
from account_health.notify import TierChangeNotice, enqueue_tier_alert
from account_health.notify.job_changes import DepartedContact, enqueue_job_change
from account_health.scoring.changes import tier_changes
from account_health.scoring.rescore import Departure, Rescore, provisional_as_of, rescore_departure
from account_health.store import actions as action_store
from account_health.store import job_changes as change_store
from account_health.store import provisional as provisional_store
from account_health.store.operational import latest_score_on_or_before, model_row, now
from account_health.training.artifact import parse_artifact
from account_health.training.evaluate import TIER_NAMES

CHANGE_WORDS = {
    "left_company": "left the company",
    "title_change": "changed title",
    "email_bounced": "email bounced",
}
DEPARTURE = "left_company"
_LAST_DAY = datetime(9999, 12, 31)
_RISK_ORDER = {name: index for index, name in enumerate(TIER_NAMES)}


@dataclass(frozen=True)
class RecordedJobChange:
    """Outcome of a received job change: what it stored and queued, or for a repeat what the first copy did."""

    job_change_id: int
    duplicate: bool
    watch_id: int | None
    watch_reason: str | None
    watch_until: datetime | None
    # The outbox row of the Slack message and its kind ("tier_change" or "job_change"), if any.
    message_id: int | None
    message_kind: str | None
    # The account's latest stored score when the change arrived.
    previous: dict[str, Any]
    # The provisional score, or None with `rescore_note` saying why.
    provisional: dict[str, Any] | None
    rescore_note: str | None


def job_change_reason(contact_id: str, change: str, changed_at: datetime | None, note: str | None) -> str:
    """Return the watch-list reason of a job change, e.g. 'job change: contact C7 left the company on 2025-12-30'."""
    when = f" on {changed_at:%Y-%m-%d}" if changed_at else ""
    extra = f": {note}" if note else ""
    return f"job change: contact {contact_id} {CHANGE_WORDS[change]}{when}{extra}"


def record_job_change(
    config: Config,
    engine: Engine,
    account_id: str,
    contact_id: str,
    change: str,
    changed_at: datetime | None = None,
    note: str | None = None,
    received_by: str | None = None,
    received_at: datetime | None = None,
) -> RecordedJobChange:
    """Keep a job change, flag its account, re-score it for a champion's departure and queue its message.

    `changed_at` and `received_at` (default: now) are naive UTC; an undated departure counts from
    the instant it was received. Nothing is written when an error is raised.

    Raises
    ------
    UnknownAccountError
        When the account has no score.
    AccountHealthError
        When the reason made of the change is too long.
    """
    if change not in CHANGE_WORDS:
        raise ValueError(f"unknown job change {change!r}; expected one of {', '.join(CHANGE_WORDS)}")
    key = change_store.dedupe_key(account_id, contact_id, change, changed_at)
    stored = change_store.find_job_change(engine, key)
    if stored is not None:
        return _repeat(engine, stored)

    score = latest_score_on_or_before(engine, account_id, _LAST_DAY)
    if score is None:
        raise UnknownAccountError(account_id)
    reason, until = checked_watch(
        config, engine, account_id, job_change_reason(contact_id, change, changed_at, note), None
    )
    change_in = _Change(
        account_id, contact_id, change, changed_at, note, received_at or now(), received_by, reason, until
    )
    action = _stored_action(engine, account_id, score["as_of"])
    artifact = model_row(engine, score["model_version"]) if change == DEPARTURE else None

    try:
        with engine.begin() as connection:
            outcome = _store(connection, config, change_in, score, action, artifact)
    except sa.exc.IntegrityError:
        # The same change arrived concurrently and was stored first, so this transaction rolled back.
        stored = change_store.find_job_change(engine, key)
        if stored is None:
            raise
        return _repeat(engine, stored)
    return RecordedJobChange(
        job_change_id=outcome.job_change_id,
        duplicate=False,
        watch_id=outcome.watch_id,
        watch_reason=reason,
        watch_until=until,
        message_id=outcome.message_id,
        message_kind=outcome.message_kind,
        previous=score,
        provisional=outcome.provisional,
        rescore_note=outcome.note,
    )


@dataclass(frozen=True)
class _Change:
    """A received change with its checked watch-list entry."""

    account_id: str
    contact_id: str
    change: str
    changed_at: datetime | None
    note: str | None
    received_at: datetime
    received_by: str | None
    watch_reason: str
    watch_until: datetime

    @property
    def left_at(self) -> datetime:
        """The instant of a departure: its change date, or when it was received when it has none."""
        return self.changed_at or self.received_at


@dataclass
class _Outcome:
    job_change_id: int = 0
    watch_id: int = 0
    message_id: int | None = None
    message_kind: str | None = None
    provisional: dict[str, Any] | None = None
    note: str | None = None


def _store(
    connection: Connection,
    config: Config,
    change: _Change,
    score: Mapping[str, Any],
    action: Mapping[str, Any] | None,
    model: Mapping[str, Any] | None,
) -> _Outcome:
    """Write the change, its watch-list entry, any provisional score and its message in one transaction."""
    outcome = _Outcome()
    outcome.watch_id = action_store.insert_watch(
        connection, change.account_id, change.watch_reason, change.watch_until, change.received_by
    )
    outcome.job_change_id = change_store.insert_job_change(
        connection,
        change.account_id,
        change.contact_id,
        change.change,
        change.changed_at,
        change.note,
        change.received_at,
        change.received_by,
        outcome.watch_id,
    )
    if change.change != DEPARTURE:
        outcome.note = (
            f"a {CHANGE_WORDS[change.change]} change does not move the champion signal, which counts "
            "departures (left_company) only"
        )
    elif model is None:
        outcome.note = (
            f"model {score['model_version']}, which made the account's latest score, is no longer registered; "
            "the next nightly run scores the departure"
        )
    else:
        artifact = parse_artifact(
            model["artifact"], f"model {model['model_version']} in the operational store"
        )
        _departure(connection, config, change, score, action, artifact, outcome)
    change_store.set_outcome(connection, outcome.job_change_id, outcome.message_id, outcome.note)
    return outcome


def _departure(
    connection: Connection,
    config: Config,
    change: _Change,
    score: Mapping[str, Any],
    action: Mapping[str, Any] | None,
    artifact: dict[str, Any],
    outcome: _Outcome,
) -> None:
    """Re-score the account after a departure, store the provisional score and queue one message."""
    champions = action.get("champions") if action is not None else None
    rescore = _rescore(connection, config, change, outcome.job_change_id, score, artifact, champions)
    outcome.note = rescore.reason
    if rescore.row is not None:
        row = {
            **rescore.row,
            "job_change_id": outcome.job_change_id,
            "based_on_as_of": score["as_of"],
            "based_on_run_id": score["run_id"],
            "previous_tier": score["tier"],
            "previous_probability": float(score["probability"]),
            "created_at": now(),
        }
        provisional_id = provisional_store.insert_provisional_score(connection, row)
        outcome.provisional = {**row, "provisional_id": provisional_id, "alert_message_id": None}
        notice = _alert_notice(connection, config, change, score, action, artifact, rescore)
        if notice is not None:
            outcome.message_id = enqueue_tier_alert(connection, notice, config.notify)
            if outcome.message_id is not None:
                outcome.message_kind = "tier_change"
                provisional_store.set_alert(connection, provisional_id, outcome.message_id)
                outcome.provisional["alert_message_id"] = outcome.message_id

    champion = champions is not None and change.contact_id in champions
    # A contact known not to be a champion gets no message: the watch-list entry shows the change.
    if outcome.message_id is None and (champion or champions is None):
        departed = DepartedContact(
            account_id=change.account_id,
            contact_id=change.contact_id,
            changed_at=change.changed_at,
            note=change.note,
            as_of=score["as_of"],
            tier=score["tier"],
            probability=float(score["probability"]),
            name=action["name"] if action is not None else None,
            owner=action["owner"] if action is not None else None,
            champion=champion,
            provisional_as_of=rescore.as_of if rescore.row is not None else None,
            provisional_tier=rescore.row["tier"] if rescore.row is not None else None,
            provisional_probability=rescore.row["probability"] if rescore.row is not None else None,
            rescore_note=rescore.reason,
        )
        outcome.message_id = enqueue_job_change(connection, departed, config.notify)
        outcome.message_kind = "job_change" if outcome.message_id is not None else None


def _rescore(
    connection: Connection,
    config: Config,
    change: _Change,
    job_change_id: int,
    score: Mapping[str, Any],
    artifact: dict[str, Any],
    champions: list[str] | None,
) -> Rescore:
    """Re-score from the stored score, counting every departure of the account received so far."""
    earlier = [
        Departure(row["contact_id"], row["changed_at"] or row["received_at"])
        for row in change_store.received_departures(connection, change.account_id)
        if row["job_change_id"] != job_change_id
    ]
    return rescore_departure(
        score,
        artifact,
        champions,
        Departure(change.contact_id, change.left_at),
        earlier,
        provisional_as_of(change.received_at, score["as_of"]),
        config.tiers.hysteresis_margin,
        config.signals.champion_departure_cap_days,
    )


def _alert_notice(
    connection: Connection,
    config: Config,
    change: _Change,
    score: Mapping[str, Any],
    action: Mapping[str, Any] | None,
    artifact: dict[str, Any],
    rescore: Rescore,
) -> TierChangeNotice | None:
    """Return the tier change to alert, or None when the re-score did not move the account into an immediate tier.

    An immediate tier ([notify.slack] immediate_tiers, Red and Orange by default) reached from a safer
    tier is alerted once per stored score: a second departure that keeps the account there adds none.
    """
    assert rescore.row is not None and rescore.scored is not None
    new_tier, old_tier = rescore.row["tier"], score["tier"]
    if new_tier not in config.notify.slack.immediate_tiers or _RISK_ORDER[new_tier] >= _RISK_ORDER[old_tier]:
        return None
    if new_tier in provisional_store.alerted_tiers(connection, change.account_id, score["as_of"]):
        return None

    found = tier_changes(
        rescore.scored,
        {change.account_id: score},
        rescore.as_of,
        None,
        artifact["model_version"],
        bool(artifact["validated"]),
        artifact.get("signal_settings", {}),
    )
    top_signals = json.loads(found[0]["top_signals"]) if found else []
    resolved = _provisional_action(config, change, action, rescore)
    cause = change.watch_reason.removeprefix("job change: ")
    return TierChangeNotice(
        run_id=None,
        as_of=rescore.as_of,
        account_id=change.account_id,
        account_name=resolved.name if resolved is not None else None,
        old_tier=old_tier,
        new_tier=new_tier,
        probability=float(rescore.row["probability"]),
        top_signals=tuple((item["signal"], float(item["points_move"])) for item in top_signals[:2]),
        action=resolved.description if resolved is not None else None,
        due_date=resolved.due_date if resolved is not None else None,
        owner=resolved.owner if resolved is not None else None,
        renewal_stage=resolved.renewal_stage if resolved is not None else None,
        watch_reason=change.watch_reason,
        arr=resolved.arr if resolved is not None else None,
        horizon_days=config.training.horizon_days,
        validated=bool(artifact["validated"]),
        provisional_cause=(
            f"re-scored at once after a job change: {cause}. A nightly run as of "
            f"{rescore.as_of:%Y-%m-%d} or later replaces this score"
        ),
    )


def _provisional_action(
    config: Config, change: _Change, action: Mapping[str, Any] | None, rescore: Rescore
) -> AccountAction | None:
    """Resolve the new tier's playbook with the facts the nightly run stored (renewal, pLTV, owner).

    Only for the alert's text: the nightly run resolves and stores the account's action.
    """
    if action is None or rescore.row is None:
        return None
    signals = json.loads(rescore.row["signals"])
    account = {
        **action,
        "tier": rescore.row["tier"],
        "probability": rescore.row["probability"],
        "champion_strength": champion_strength(signals),
    }
    watch = {"reason": change.watch_reason, "until": change.watch_until}
    playbook = config.actions.playbook.for_tier(rescore.row["tier"])
    candidates = list(action.get("replacement_candidates") or [])
    return resolve_action(account, rescore.as_of, config.actions, playbook, False, watch, candidates)


def _stored_action(engine: Engine, account_id: str, as_of: datetime) -> dict[str, Any] | None:
    found = action_store.read_account_actions(engine, as_of, account_id)
    return found[0] if found else None


def _repeat(engine: Engine, stored: Mapping[str, Any]) -> RecordedJobChange:
    """Return what the first copy of a repeated change stored."""
    watch = None
    if stored["watch_id"] is not None:
        watch = next(
            (
                entry
                for entry in action_store.list_watches(engine, True, stored["account_id"])
                if entry["watch_id"] == stored["watch_id"]
            ),
            None,
        )
    provisional = provisional_store.provisional_score_of(engine, stored["job_change_id"])
    previous = latest_score_on_or_before(engine, stored["account_id"], _LAST_DAY) or {}
    if provisional is not None:
        previous = {
            "as_of": provisional["based_on_as_of"],
            "tier": provisional["previous_tier"],
            "probability": provisional["previous_probability"],
        }
    kind = None
    if stored["message_id"] is not None:
        kind = "tier_change" if provisional is not None and provisional["alert_message_id"] else "job_change"
    return RecordedJobChange(
        job_change_id=stored["job_change_id"],
        duplicate=True,
        watch_id=stored["watch_id"],
        watch_reason=watch["reason"] if watch else None,
        watch_until=watch["until"] if watch else None,
        message_id=stored["message_id"],
        message_kind=kind,
        previous=previous,
        provisional=provisional,
        rescore_note=stored["rescore_note"],
    )


__all__ = ["CHANGE_WORDS", "RecordedJobChange", "job_change_reason", "record_job_change"]
