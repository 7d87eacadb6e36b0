"""The vendor layout fills the canonical tables with the same rows as the canonical layout."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from account_health.config import load_workspace
from account_health.sources.ingest import ingest
from account_health.synthetic import generate_company
from account_health.workspace import open_stores

TABLES = (
    "accounts", "users", "contacts", "contracts", "churn_events", "usage_events", "sentiment_responses",
    "tickets", "contact_changes", "integrations",
)  # fmt: skip


def _canonical_tables(folder: Path) -> tuple[dict[str, pd.DataFrame], int]:
    workspace = load_workspace(folder)
    with open_stores(workspace) as (store, _):
        report = ingest(workspace, store)
        tables = {}
        for name in TABLES:
            frame = store.table(name).to_pandas()
            columns = [column for column in frame.columns if not column.startswith("_")]
            tables[name] = (
                frame[[*columns, "_unattributed", "_available_at"]]
                .sort_values(columns)
                .reset_index(drop=True)
            )
    quarantined = sum(source.quarantined for source in report.sources)
    return tables, quarantined


@pytest.fixture(scope="module")
def both_layouts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[dict[str, pd.DataFrame], int]]:
    base = tmp_path_factory.mktemp("layouts")
    found = {}
    for layout in ("canonical", "vendor"):
        generate_company(base / layout, accounts=40, months=6, seed=3, layout=layout)
        found[layout] = _canonical_tables(base / layout)
    return found


@pytest.mark.parametrize("table", TABLES)
def test_vendor_files_fill_same_rows(both_layouts, table: str) -> None:
    canonical, _ = both_layouts["canonical"]
    vendor, _ = both_layouts["vendor"]
    assert len(canonical[table]) > 0
    if table == "accounts":
        # The Salesforce adapter fills crm_id with the record id, which the canonical export leaves out.
        assert (vendor[table]["crm_id"] == vendor[table]["account_id"]).all()
        assert canonical[table]["crm_id"].isna().all()
        vendor = {table: vendor[table].drop(columns="crm_id")}
        canonical = {table: canonical[table].drop(columns="crm_id")}
    pd.testing.assert_frame_equal(vendor[table], canonical[table])


def test_nothing_is_quarantined(both_layouts) -> None:
    assert both_layouts["vendor"][1] == 0


def test_config_names_vendor_formats(tmp_path: Path) -> None:
    company = generate_company(tmp_path, accounts=10, months=6, seed=1, layout="vendor")
    workspace = load_workspace(company.out_dir)
    formats = {name: source.format for name, source in workspace.config.sources.items()}
    assert formats["accounts"] == formats["contacts"] == formats["contracts"] == "salesforce"
    assert formats["users"] == formats["usage_events"] == "segment"
    assert formats["tickets"] == "zendesk"
    assert formats["nps"] == "nps"
    assert formats["calls"] == "calls"
    assert formats["contact_changes"] == "job_changes"
    assert list(company.out_dir.glob("exports/zendesk/tickets-page-*.json"))


def test_segment_usage_false_keeps_parquet_usage(tmp_path: Path) -> None:
    company = generate_company(tmp_path, accounts=10, months=6, seed=1, layout="vendor", segment_usage=False)
    sources = load_workspace(company.out_dir).config.sources
    assert sources["usage_events"].format == "parquet"
    assert sources["users"].format == "segment"
    assert not (company.out_dir / "exports/segment/tracks.jsonl").exists()


def test_unknown_layout_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="layout"):
        generate_company(tmp_path, accounts=10, months=6, layout="xml")
