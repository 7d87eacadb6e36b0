"""Add provisional scores, champions in seat per account action, and job-change deduplication keys.

- `provisional_scores`: an account re-scored by the API at once after a job change, kept apart from
  the scores history until a nightly run scores the account on or after its as-of date.
- `account_actions.champions`: the contact ids of the champions in seat on the run's as-of date.
- `job_changes.dedupe_key` (unique) and `job_changes.rescore_note`. Of the changes received twice
  before this revision, the first keeps the key and later copies keep NULL, so the unique index
  can be built over the rows already stored.

Revision ID: 0007
Revises: 0006
"""

import hashlib

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_job_changes = sa.table(
    "job_changes",
    sa.column("job_change_id", sa.Integer),
    sa.column("account_id", sa.String),
    sa.column("contact_id", sa.String),
    sa.column("change", sa.String),
    sa.column("changed_at", sa.DateTime),
    sa.column("dedupe_key", sa.String),
)


def upgrade() -> None:
    op.create_table(
        "provisional_scores",
        sa.Column("provisional_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("job_change_id", sa.Integer, sa.ForeignKey("job_changes.job_change_id"), nullable=False),
        sa.Column("account_id", sa.String(255), nullable=False),
        sa.Column("as_of", sa.DateTime, nullable=False),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("probability", sa.Float, nullable=False),
        sa.Column("tier", sa.String(16), nullable=False),
        sa.Column("raw_tier", sa.String(16), nullable=False),
        sa.Column("contributions", sa.Text, nullable=False),
        sa.Column("probability_points", sa.Text, nullable=False),
        sa.Column("signals", sa.Text, nullable=False),
        sa.Column("validated", sa.Boolean, nullable=False),
        sa.Column("based_on_as_of", sa.DateTime, nullable=False),
        sa.Column("based_on_run_id", sa.Integer, sa.ForeignKey("runs.run_id"), nullable=False),
        sa.Column("previous_tier", sa.String(16), nullable=False),
        sa.Column("previous_probability", sa.Float, nullable=False),
        sa.Column("alert_message_id", sa.Integer),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("job_change_id", name="uq_provisional_scores_job_change_id"),
    )
    op.create_index("ix_provisional_scores_account_id", "provisional_scores", ["account_id"])
    op.add_column("account_actions", sa.Column("champions", sa.Text))
    op.add_column("job_changes", sa.Column("dedupe_key", sa.String(64)))
    op.add_column("job_changes", sa.Column("rescore_note", sa.Text))
    _fill_dedupe_keys()
    op.create_index("uq_job_changes_dedupe_key", "job_changes", ["dedupe_key"], unique=True)


def _fill_dedupe_keys() -> None:
    """Give each change received so far its key; a repeat of an earlier change keeps NULL."""
    connection = op.get_bind()
    rows = connection.execute(sa.select(_job_changes).order_by(_job_changes.c.job_change_id)).all()
    seen: set[str] = set()
    for row in rows:
        # The same identity as store.job_changes.dedupe_key: account, contact, change and change instant.
        changed = row.changed_at.isoformat() if row.changed_at is not None else "undated"
        identity = "\x1f".join((row.account_id, row.contact_id, row.change, changed))
        key = hashlib.sha256(identity.encode()).hexdigest()
        if key in seen:
            continue
        seen.add(key)
        connection.execute(
            _job_changes.update()
            .where(_job_changes.c.job_change_id == row.job_change_id)
            .values(dedupe_key=key)
        )


def downgrade() -> None:
    op.drop_index("ix_provisional_scores_account_id", "provisional_scores")
    op.drop_table("provisional_scores")
    op.drop_index("uq_job_changes_dedupe_key", "job_changes")
    with op.batch_alter_table("job_changes") as batch:
        batch.drop_column("rescore_note")
        batch.drop_column("dedupe_key")
    with op.batch_alter_table("account_actions") as batch:
        batch.drop_column("champions")
