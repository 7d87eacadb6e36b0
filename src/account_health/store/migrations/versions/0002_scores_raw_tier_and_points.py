"""Add the raw tier and the probability-point contributions to the scores history.

Scores stored before this revision were tiered by the cut-offs alone, so their raw tier is their tier.
Their probability points stay NULL; they can be derived from the stored probability and log-odds
contributions.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("scores") as batch:
        batch.add_column(sa.Column("raw_tier", sa.String(16), nullable=True))
        batch.add_column(sa.Column("probability_points", sa.Text, nullable=True))
    op.execute(sa.text("UPDATE scores SET raw_tier = tier"))
    with op.batch_alter_table("scores") as batch:
        batch.alter_column("raw_tier", existing_type=sa.String(16), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("scores") as batch:
        batch.drop_column("probability_points")
        batch.drop_column("raw_tier")
