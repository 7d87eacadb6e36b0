"""Create tier_changes, tasks, watch_list and account_actions, written by the nightly run.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tier_changes",
        sa.Column("account_id", sa.String(255), primary_key=True),
        sa.Column("as_of", sa.DateTime, primary_key=True),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.run_id"), nullable=False),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("old_tier", sa.String(16)),
        sa.Column("new_tier", sa.String(16), nullable=False),
        sa.Column("probability", sa.Float, nullable=False),
        sa.Column("previous_probability", sa.Float),
        sa.Column("previous_as_of", sa.DateTime),
        sa.Column("top_signal_1", sa.String(64)),
        sa.Column("top_signal_1_points", sa.Float),
        sa.Column("top_signal_2", sa.String(64)),
        sa.Column("top_signal_2_points", sa.Float),
        sa.Column("top_signals", sa.Text, nullable=False),
        sa.Column("validated", sa.Boolean, nullable=False),
    )
    op.create_index("ix_tier_changes_run_id", "tier_changes", ["run_id"])
    op.create_table(
        "tasks",
        sa.Column("task_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("account_id", sa.String(255), nullable=False),
        sa.Column("as_of", sa.DateTime, nullable=False),
        sa.Column("motion", sa.String(64), nullable=False),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.run_id"), nullable=False),
        sa.Column("owner", sa.String(255), nullable=False),
        sa.Column("tier", sa.String(16), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("due_date", sa.Date, nullable=False),
        sa.Column("probability", sa.Float, nullable=False),
        sa.Column("arr", sa.Float),
        sa.Column("arr_at_risk", sa.Float, nullable=False),
        sa.Column("rank", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("expires_at", sa.DateTime, nullable=False),
        sa.Column("workshop", sa.Boolean, nullable=False),
        sa.Column("watch_reason", sa.Text),
        sa.Column("validated", sa.Boolean, nullable=False),
        sa.Column("completed_at", sa.DateTime),
        sa.UniqueConstraint("account_id", "as_of", "motion", name="uq_tasks_account_as_of_motion"),
    )
    op.create_index("ix_tasks_as_of", "tasks", ["as_of"])
    op.create_index("ix_tasks_owner", "tasks", ["owner"])
    op.create_table(
        "watch_list",
        sa.Column("watch_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("account_id", sa.String(255), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("until", sa.DateTime, nullable=False),
        sa.Column("created_by", sa.String(255)),
        sa.Column("removed_at", sa.DateTime),
    )
    op.create_index("ix_watch_list_account_id", "watch_list", ["account_id"])
    op.create_table(
        "account_actions",
        sa.Column("account_id", sa.String(255), primary_key=True),
        sa.Column("as_of", sa.DateTime, primary_key=True),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.run_id"), nullable=False),
        sa.Column("name", sa.Text),
        sa.Column("owner", sa.String(255), nullable=False),
        sa.Column("arr", sa.Float),
        sa.Column("tier", sa.String(16), nullable=False),
        sa.Column("probability", sa.Float, nullable=False),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("validated", sa.Boolean, nullable=False),
        sa.Column("renewal_stage", sa.String(16)),
        sa.Column("renewal_date", sa.DateTime),
        sa.Column("locked_multi_year", sa.Boolean, nullable=False),
        sa.Column("pltv", sa.Float),
        sa.Column("pltv_decile", sa.Integer),
        sa.Column("champion_strength", sa.String(16), nullable=False),
        sa.Column("motion", sa.String(64), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("steps", sa.Text, nullable=False),
        sa.Column("due_date", sa.Date, nullable=False),
        sa.Column("task_status", sa.String(16), nullable=False),
        sa.Column("expansion", sa.String(16), nullable=False),
        sa.Column("expansion_allowed", sa.Boolean, nullable=False),
        sa.Column("prompt_key", sa.String(64)),
        sa.Column("persona_key", sa.String(64), nullable=False),
        sa.Column("watch_reason", sa.Text),
        sa.Column("watch_until", sa.DateTime),
        sa.Column("replacement_candidates", sa.Text, nullable=False),
    )
    op.create_index("ix_account_actions_as_of", "account_actions", ["as_of"])


def downgrade() -> None:
    op.drop_index("ix_account_actions_as_of", "account_actions")
    op.drop_table("account_actions")
    op.drop_index("ix_watch_list_account_id", "watch_list")
    op.drop_table("watch_list")
    op.drop_index("ix_tasks_owner", "tasks")
    op.drop_index("ix_tasks_as_of", "tasks")
    op.drop_table("tasks")
    op.drop_index("ix_tier_changes_run_id", "tier_changes")
    op.drop_table("tier_changes")
