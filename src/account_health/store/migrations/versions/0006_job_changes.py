"""Add the job_changes table: contact job changes received by the API's job-change webhook.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "job_changes",
        sa.Column("job_change_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("account_id", sa.String(255), nullable=False),
        sa.Column("contact_id", sa.String(255), nullable=False),
        sa.Column("change", sa.String(32), nullable=False),
        sa.Column("changed_at", sa.DateTime),
        sa.Column("note", sa.Text),
        sa.Column("received_at", sa.DateTime, nullable=False),
        sa.Column("received_by", sa.String(255)),
        sa.Column("watch_id", sa.Integer, sa.ForeignKey("watch_list.watch_id")),
        sa.Column("message_id", sa.Integer),
    )
    op.create_index("ix_job_changes_account_id", "job_changes", ["account_id"])


def downgrade() -> None:
    op.drop_index("ix_job_changes_account_id", "job_changes")
    op.drop_table("job_changes")
