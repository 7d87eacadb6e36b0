"""The complete example of docs/vendors.md is a valid configuration that names real formats and tables."""

from __future__ import annotations

import tomllib
from pathlib import Path

from account_health.config import parse_config
from account_health.sources.vendors import ADAPTERS

DOC = Path(__file__).resolve().parents[3] / "docs" / "vendors.md"


def test_vendor_docs_example_is_valid() -> None:
    text = DOC.read_text(encoding="utf-8")
    block = text.split("## A complete example", 1)[1].split("```toml", 1)[1].split("```", 1)[0]

    config = parse_config(tomllib.loads(block), str(DOC))

    assert len(config.sources) == 8
    for name, source in config.sources.items():
        adapter = ADAPTERS[source.format]
        assert source.table in adapter.tables, f"{name}: {source.format} cannot fill {source.table}"


def test_vendor_docs_list_every_format() -> None:
    text = DOC.read_text(encoding="utf-8")
    for name in ADAPTERS:
        assert f"| `{name}` |" in text, f"format {name} is not in docs/vendors.md"


def test_job_changes_docs_example_is_valid() -> None:
    text = DOC.read_text(encoding="utf-8")
    block = text.split("## Job changes", 1)[1].split("```toml", 1)[1].split("```", 1)[0]

    config = parse_config(tomllib.loads(block), str(DOC))

    source = config.sources["job_changes"]
    assert source.format == "job_changes"
    assert source.values == {"change": {"quit": "left_company", "Promoted": "title_change"}}
