"""Create the notification outbox.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column("message_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("dedupe_key", sa.String(512), nullable=False, unique=True),
        sa.Column("destination", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("run_id", sa.Integer),
        sa.Column("as_of", sa.DateTime),
        sa.Column("account_id", sa.String(255)),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("in_doubt", sa.Boolean, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("last_attempt_at", sa.DateTime),
        sa.Column("sent_at", sa.DateTime),
        sa.Column("remote_ref", sa.String(255)),
        sa.Column("lease_owner", sa.String(128)),
        sa.Column("lease_until", sa.DateTime),
    )
    op.create_index("ix_outbox_destination_status", "outbox", ["destination", "status"])


def downgrade() -> None:
    op.drop_index("ix_outbox_destination_status", "outbox")
    op.drop_table("outbox")
