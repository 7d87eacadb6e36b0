"""The notification outbox table: one row per Slack message or CRM record update still to send or sent.

It shares the operational store's metadata; the Alembic revision 0004 creates it.
"""

from __future__ import annotations

import sqlalchemy as sa

from account_health.store.operational import metadata

PENDING = "pending"
FAILED = "failed"
SENT = "sent"
STATUSES = (PENDING, FAILED, SENT)

outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("message_id", sa.Integer, primary_key=True, autoincrement=True),
    # Enqueueing a message whose key is already present adds nothing.
    sa.Column("dedupe_key", sa.String(512), nullable=False, unique=True),
    # slack, hubspot or salesforce; kind is tier_change, digest or crm_update.
    sa.Column("destination", sa.String(16), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("run_id", sa.Integer),
    sa.Column("as_of", sa.DateTime),
    sa.Column("account_id", sa.String(255)),
    # JSON: the Slack message (text and blocks) or the CRM record (id and fields), rendered at enqueue.
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    # True from the moment a request is about to leave until its answer is recorded: the receiver may
    # have accepted the message although the outbox never learned it.
    sa.Column("in_doubt", sa.Boolean, nullable=False),
    sa.Column("last_error", sa.Text),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("last_attempt_at", sa.DateTime),
    sa.Column("sent_at", sa.DateTime),
    # The receiver's id of what was sent: the Slack message ts, or the CRM record id.
    sa.Column("remote_ref", sa.String(255)),
    # A delivering process holds the rows it is sending until lease_until; see notify.delivery.
    sa.Column("lease_owner", sa.String(128)),
    sa.Column("lease_until", sa.DateTime),
    sa.Index("ix_outbox_destination_status", "destination", "status"),
)
