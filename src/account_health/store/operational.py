"""The operational store: runs, the model registry and the scores history, via SQLAlchemy Core.

A SQLite file by default (in WAL mode, so readers keep working while a run writes), PostgreSQL by
URL. The schema is created and upgraded by the Alembic migrations beside this module.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy.engine import Engine

from account_health.errors import ConfigError, first_line

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 10

metadata = sa.MetaData()

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("run_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("started_at", sa.DateTime, nullable=False),
    sa.Column("finished_at", sa.DateTime),
    sa.Column("as_of", sa.DateTime),
    sa.Column("details", sa.Text),
)

models = sa.Table(
    "models",
    metadata,
    sa.Column("model_version", sa.String(64), primary_key=True),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("training_end", sa.DateTime, nullable=False),
    sa.Column("validated", sa.Boolean, nullable=False),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("artifact", sa.Text, nullable=False),
)

scores = sa.Table(
    "scores",
    metadata,
    sa.Column("account_id", sa.String(255), primary_key=True),
    sa.Column("as_of", sa.DateTime, primary_key=True),
    sa.Column("model_version", sa.String(64), primary_key=True),
    sa.Column("probability", sa.Float, nullable=False),
    # The declared tier (after hysteresis) and the tier from the cut-offs alone.
    sa.Column("tier", sa.String(16), nullable=False),
    sa.Column("raw_tier", sa.String(16), nullable=False),
    # JSON objects keyed by signal: log-odds, and percentage points of churn probability.
    sa.Column("contributions", sa.Text, nullable=False),
    sa.Column("probability_points", sa.Text),
    sa.Column("signals", sa.Text, nullable=False),
    sa.Column("validated", sa.Boolean, nullable=False),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.run_id"), nullable=False),
)

_MIGRATIONS = Path(__file__).parent / "migrations"


def connect(url: str) -> Engine:
    """Create an engine for `url`; SQLite files get WAL mode and a busy timeout."""
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        Path(url[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
    # A server that accepts the TCP connection but never responds would otherwise hang every command.
    options: dict[str, Any] = {}
    if sa.engine.make_url(url).get_backend_name() == "postgresql":
        options["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT_SECONDS}
    # Errors and logs name the statement but never its values: they hold customer data.
    engine = sa.create_engine(url, future=True, hide_parameters=True, **options)
    if engine.dialect.name == "sqlite":

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

    return engine


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to an Alembic revision, the newest by default."""
    config = AlembicConfig()
    config.set_main_option("script_location", str(_MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def open_operational_store(url: str) -> Engine:
    """Connect to the operational store and migrate it to the current schema."""
    try:
        engine = connect(url)
        upgrade(engine)
    except ModuleNotFoundError as exc:
        raise ConfigError(
            f"cannot open the operational store {_safe_url(url)}: the driver {exc.name!r} is not installed; "
            "for PostgreSQL install it with `pip install 'account-health[postgres]'` (or `pip install -e "
            "'.[postgres]'` in a checkout)"
        ) from None
    except (sa.exc.SQLAlchemyError, OSError) as exc:
        raise ConfigError(
            f"cannot open the operational store {_safe_url(url)}: {first_line(exc)}; set [workspace] operational_store "
            "or ACCOUNT_HEALTH_OPERATIONAL_STORE to a SQLAlchemy URL such as sqlite:///data/operational.sqlite "
            "or postgresql+psycopg://user@host:5432/database"
        ) from None
    log.debug("opened operational store %s", engine.url.render_as_string(hide_password=True))
    return engine


def _safe_url(url: str) -> str:
    """Return the URL with any password masked, for messages."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "(an invalid URL)"


def now() -> datetime:
    """Return the current instant as a naive UTC datetime, the form every store column uses."""
    return datetime.now(UTC).replace(tzinfo=None)


def start_run(engine: Engine, kind: str, as_of: datetime | None = None) -> int:
    with engine.begin() as connection:
        result = connection.execute(
            runs.insert().values(kind=kind, status="running", started_at=now(), as_of=as_of)
        )
        key = result.inserted_primary_key
        assert key is not None
        return int(key[0])


def finish_run(engine: Engine, run_id: int, status: str, details: Mapping[str, Any] | None = None) -> None:
    with engine.begin() as connection:
        connection.execute(
            runs.update()
            .where(runs.c.run_id == run_id)
            .values(status=status, finished_at=now(), details=json.dumps(details or {}, default=str))
        )


def register_model(
    engine: Engine,
    model_version: str,
    training_end: datetime,
    validated: bool,
    path: Path,
    sha256: str,
    artifact: str,
) -> None:
    with engine.begin() as connection:
        connection.execute(sa.delete(models).where(models.c.model_version == model_version))
        connection.execute(
            models.insert().values(
                model_version=model_version,
                created_at=now(),
                training_end=training_end,
                validated=validated,
                path=str(path),
                sha256=sha256,
                artifact=artifact,
            )
        )


def latest_model_row(engine: Engine) -> Mapping[str, Any] | None:
    with engine.connect() as connection:
        row = connection.execute(
            sa.select(models).order_by(models.c.created_at.desc(), models.c.model_version.desc()).limit(1)
        ).first()
    return dict(row._mapping) if row is not None else None


def model_row(engine: Engine, model_version: str) -> Mapping[str, Any] | None:
    """Return the registered model with this version, or None."""
    with engine.connect() as connection:
        row = connection.execute(sa.select(models).where(models.c.model_version == model_version)).first()
    return dict(row._mapping) if row is not None else None


def replace_scores(
    engine: Engine, as_of: datetime, model_version: str, rows: Iterable[Mapping[str, Any]]
) -> int:
    """Replace every score of (as_of, model_version) with `rows`, in one transaction."""
    with engine.begin() as connection:
        return replace_scores_in(connection, as_of, model_version, rows)


def replace_scores_in(
    connection: sa.Connection, as_of: datetime, model_version: str, rows: Iterable[Mapping[str, Any]]
) -> int:
    """Replace every score of (as_of, model_version) with `rows` inside the caller's transaction."""
    rows = list(rows)
    connection.execute(
        sa.delete(scores).where(scores.c.as_of == as_of, scores.c.model_version == model_version)
    )
    if rows:
        connection.execute(scores.insert(), rows)
    return len(rows)


def latest_score_date(engine: Engine) -> datetime | None:
    """Return the newest as-of date in the scores history, or None when it is empty."""
    with engine.connect() as connection:
        return connection.execute(sa.select(sa.func.max(scores.c.as_of))).scalar()


def read_scores(
    engine: Engine, as_of: datetime | None = None, account_id: str | None = None
) -> list[dict[str, Any]]:
    """Return scores of one as-of date (the latest when None), optionally of one account."""
    with engine.connect() as connection:
        if as_of is None:
            as_of = connection.execute(sa.select(sa.func.max(scores.c.as_of))).scalar()
            if as_of is None:
                return []
        query = sa.select(scores).where(scores.c.as_of == as_of)
        if account_id is not None:
            query = query.where(scores.c.account_id == account_id)
        query = query.order_by(scores.c.probability.desc(), scores.c.account_id)
        return [dict(row._mapping) for row in connection.execute(query)]


def previous_tiers(engine: Engine, as_of: datetime) -> dict[str, str]:
    """Return each account's declared tier in its latest score strictly before `as_of`.

    When one date contains scores of several models, the score written by the latest run counts.
    """
    return {row["account_id"]: row["tier"] for row in _latest_scores(engine, scores.c.as_of < as_of)}


def previous_scores(engine: Engine, as_of: datetime) -> dict[str, dict[str, Any]]:
    """Return each account's latest score strictly before `as_of`, the one `previous_tiers` reads."""
    return {row["account_id"]: row for row in _latest_scores(engine, scores.c.as_of < as_of)}


def latest_score_on_or_before(engine: Engine, account_id: str, when: datetime) -> dict[str, Any] | None:
    """Return the account's latest score with an as-of date on or before `when`, or None."""
    rows = _latest_scores(engine, scores.c.as_of <= when, scores.c.account_id == account_id)
    return rows[0] if rows else None


def account_score_dates(engine: Engine, account_id: str) -> list[datetime]:
    """Return the as-of dates of the account's stored scores, oldest first."""
    query = (
        sa.select(scores.c.as_of).where(scores.c.account_id == account_id).distinct().order_by(scores.c.as_of)
    )
    with engine.connect() as connection:
        return list(connection.execute(query).scalars())


def _latest_scores(engine: Engine, *conditions: sa.ColumnElement[bool]) -> list[dict[str, Any]]:
    rank = (
        sa.func.row_number()
        .over(partition_by=scores.c.account_id, order_by=(scores.c.as_of.desc(), scores.c.run_id.desc()))
        .label("rank")
    )
    ranked = sa.select(scores, rank).where(*conditions).subquery()
    query = sa.select(*(ranked.c[column.name] for column in scores.columns)).where(ranked.c.rank == 1)
    with engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(query)]
