"""The provisional_scores table: accounts re-scored by the API at once after a job change.

A provisional score is kept apart from the scores history, so that monitoring, explain, hysteresis
and the nightly run's tier changes only ever read scores computed from the analytical store. It is
the account's current score until a score of the account with an as-of date on or after its own is
stored (the next nightly run), which supersedes it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from account_health.store.job_changes import first_row, job_changes
from account_health.store.operational import metadata, scores

provisional_scores = sa.Table(
    "provisional_scores",
    metadata,
    sa.Column("provisional_id", sa.Integer, primary_key=True, autoincrement=True),
    # The job change that caused the re-score; one re-score per change.
    sa.Column("job_change_id", sa.Integer, sa.ForeignKey("job_changes.job_change_id"), nullable=False),
    sa.Column("account_id", sa.String(255), nullable=False),
    # The first midnight (UTC) after the change was received, or later; see scoring.rescore.
    sa.Column("as_of", sa.DateTime, nullable=False),
    sa.Column("model_version", sa.String(64), nullable=False),
    # The same columns as the scores history.
    sa.Column("probability", sa.Float, nullable=False),
    sa.Column("tier", sa.String(16), nullable=False),
    sa.Column("raw_tier", sa.String(16), nullable=False),
    sa.Column("contributions", sa.Text, nullable=False),
    sa.Column("probability_points", sa.Text, nullable=False),
    sa.Column("signals", sa.Text, nullable=False),
    sa.Column("validated", sa.Boolean, nullable=False),
    # The stored score the re-score started from: its as-of date, run, declared tier and probability.
    sa.Column("based_on_as_of", sa.DateTime, nullable=False),
    sa.Column("based_on_run_id", sa.Integer, sa.ForeignKey("runs.run_id"), nullable=False),
    sa.Column("previous_tier", sa.String(16), nullable=False),
    sa.Column("previous_probability", sa.Float, nullable=False),
    # The outbox row of the tier-change alert, when the re-score moved the account into an
    # immediate tier ([notify.slack] immediate_tiers) and Slack is on.
    sa.Column("alert_message_id", sa.Integer),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.UniqueConstraint("job_change_id", name="uq_provisional_scores_job_change_id"),
)

sa.Index("ix_provisional_scores_account_id", provisional_scores.c.account_id)


def insert_provisional_score(connection: Connection, row: Mapping[str, Any]) -> int:
    """Insert a provisional score inside the caller's transaction; return its id."""
    result = connection.execute(provisional_scores.insert().values(**row))
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def set_alert(connection: Connection, provisional_id: int, message_id: int | None) -> None:
    connection.execute(
        provisional_scores.update()
        .where(provisional_scores.c.provisional_id == provisional_id)
        .values(alert_message_id=message_id)
    )


# Built once, because the health endpoint runs it on every request: building a statement costs
# SQLAlchemy more CPU than SQLite spends running it. A stored score of the account with an as-of
# date on or after the provisional one's supersedes it.
_CURRENT = (
    sa.select(
        provisional_scores,
        job_changes.c.contact_id,
        job_changes.c.change,
        job_changes.c.changed_at,
        job_changes.c.note,
        job_changes.c.received_at,
    )
    .join(job_changes, job_changes.c.job_change_id == provisional_scores.c.job_change_id)
    .where(
        provisional_scores.c.account_id == sa.bindparam("account_id"),
        ~sa.exists().where(
            scores.c.account_id == provisional_scores.c.account_id,
            scores.c.as_of >= provisional_scores.c.as_of,
        ),
    )
    .order_by(provisional_scores.c.provisional_id.desc())
    .limit(1)
)


def current_provisional_score(bind: Engine | Connection, account_id: str) -> dict[str, Any] | None:
    """Return the account's newest provisional score that no stored score supersedes, with its job change.

    The returned dict has the provisional_scores columns plus the job change's contact_id, change,
    changed_at, note and received_at.
    """
    if isinstance(bind, Connection):
        row = bind.execute(_CURRENT, {"account_id": account_id}).first()
    else:
        with bind.connect() as connection:
            row = connection.execute(_CURRENT, {"account_id": account_id}).first()
    return dict(row._mapping) if row is not None else None


def provisional_score_of(bind: Engine | Connection, job_change_id: int) -> dict[str, Any] | None:
    """Return the provisional score a job change caused, or None."""
    query = sa.select(provisional_scores).where(provisional_scores.c.job_change_id == job_change_id)
    return first_row(bind, query)


def alerted_tiers(connection: Connection, account_id: str, based_on_as_of: Any) -> set[str]:
    """Return the tiers that provisional scores of the account from the same stored score already alerted."""
    query = sa.select(provisional_scores.c.tier).where(
        provisional_scores.c.account_id == account_id,
        provisional_scores.c.based_on_as_of == based_on_as_of,
        provisional_scores.c.alert_message_id.is_not(None),
    )
    return set(connection.execute(query).scalars())


def announced_changes(connection: Connection, changes: Sequence[Mapping[str, Any]]) -> set[tuple[str, str]]:
    """Return (account_id, new_tier) of the tier changes that a provisional alert already announced.

    A nightly tier change was announced when a provisional score of the account, started from the
    same previous score (`previous_as_of`) with the same previous tier, alerted the same new tier.
    """
    previous_dates = {change["previous_as_of"] for change in changes if change["previous_as_of"] is not None}
    if not previous_dates:
        return set()
    query = sa.select(
        provisional_scores.c.account_id,
        provisional_scores.c.based_on_as_of,
        provisional_scores.c.previous_tier,
        provisional_scores.c.tier,
    ).where(
        provisional_scores.c.based_on_as_of.in_(sorted(previous_dates)),
        provisional_scores.c.alert_message_id.is_not(None),
    )
    alerted = {tuple(row) for row in connection.execute(query)}
    return {
        (change["account_id"], change["new_tier"])
        for change in changes
        if (change["account_id"], change["previous_as_of"], change["old_tier"], change["new_tier"]) in alerted
    }


__all__ = [
    "alerted_tiers",
    "announced_changes",
    "current_provisional_score",
    "insert_provisional_score",
    "provisional_score_of",
    "provisional_scores",
    "set_alert",
]
