"""Notifications: tier changes to Slack and health fields to the CRM, through the outbox.

The nightly run calls `enqueue` inside its transaction and `deliver` after it commits.
"""

from account_health.notify.crm_records import crm_csv_path, write_crm_csv
from account_health.notify.delivery import DeliveryReport, DestinationReport, deliver
from account_health.notify.enqueue import enqueue, enqueue_tier_alert
from account_health.notify.notice import TierChangeNotice
from account_health.notify.status import OutboxEntry, outbox_counts, outbox_entries

__all__ = [
    "DeliveryReport",
    "DestinationReport",
    "OutboxEntry",
    "TierChangeNotice",
    "crm_csv_path",
    "deliver",
    "enqueue",
    "enqueue_tier_alert",
    "outbox_counts",
    "outbox_entries",
    "write_crm_csv",
]
