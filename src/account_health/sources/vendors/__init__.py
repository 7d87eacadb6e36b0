"""Vendor adapters: each reads one vendor's exports or warehouse tables as flat batches for the ingest."""

from __future__ import annotations

from account_health.sources.vendors.base import Adapter, FileBatch, TableDefaults
from account_health.sources.vendors.hubspot import FivetranHubspotAdapter, HubspotAdapter
from account_health.sources.vendors.jobchanges import JobChangesAdapter
from account_health.sources.vendors.product import AmplitudeAdapter, IntercomAdapter, MixpanelAdapter
from account_health.sources.vendors.salesforce import FivetranSalesforceAdapter, SalesforceAdapter
from account_health.sources.vendors.segment import SegmentAdapter
from account_health.sources.vendors.sentiment import CallsAdapter, NpsAdapter
from account_health.sources.vendors.zendesk import FivetranZendeskAdapter, ZendeskAdapter

__all__ = ["ADAPTERS", "Adapter", "FileBatch", "TableDefaults", "adapter_for"]

ADAPTERS: dict[str, Adapter] = {
    adapter.name: adapter
    for adapter in (
        SegmentAdapter(),
        ZendeskAdapter(),
        FivetranZendeskAdapter(),
        SalesforceAdapter(),
        FivetranSalesforceAdapter(),
        HubspotAdapter(),
        FivetranHubspotAdapter(),
        NpsAdapter(),
        CallsAdapter(),
        JobChangesAdapter(),
        AmplitudeAdapter(),
        MixpanelAdapter(),
        IntercomAdapter(),
    )
}


def adapter_for(format_name: str) -> Adapter | None:
    """Return the adapter of a vendor format, or None for plain CSV and Parquet."""
    return ADAPTERS.get(format_name)
