"""Create runs, models and scores.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("run_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", sa.DateTime, nullable=False),
        sa.Column("finished_at", sa.DateTime),
        sa.Column("as_of", sa.DateTime),
        sa.Column("details", sa.Text),
    )
    op.create_table(
        "models",
        sa.Column("model_version", sa.String(64), primary_key=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("training_end", sa.DateTime, nullable=False),
        sa.Column("validated", sa.Boolean, nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("artifact", sa.Text, nullable=False),
    )
    op.create_table(
        "scores",
        sa.Column("account_id", sa.String(255), primary_key=True),
        sa.Column("as_of", sa.DateTime, primary_key=True),
        sa.Column("model_version", sa.String(64), primary_key=True),
        sa.Column("probability", sa.Float, nullable=False),
        sa.Column("tier", sa.String(16), nullable=False),
        sa.Column("contributions", sa.Text, nullable=False),
        sa.Column("signals", sa.Text, nullable=False),
        sa.Column("validated", sa.Boolean, nullable=False),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.run_id"), nullable=False),
    )
    op.create_index("ix_scores_as_of", "scores", ["as_of"])


def downgrade() -> None:
    op.drop_index("ix_scores_as_of", "scores")
    op.drop_table("scores")
    op.drop_table("models")
    op.drop_table("runs")
