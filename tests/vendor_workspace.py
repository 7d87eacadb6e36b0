"""Build a workspace around vendor exports and read back what the ingest stored."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

from account_health.config import CONFIG_FILE, Workspace, load_workspace
from account_health.sources.ingest import IngestReport, SourceCounts, ingest
from account_health.store.analytical import AnalyticalStore, open_analytical_store

STORE_SETTINGS = '[workspace]\nanalytical_store = "analytical.duckdb"\n\n'


def make_workspace(folder: Path, config: str, files: dict[str, str | bytes | Any]) -> Workspace:
    """Write the config and the files (text, bytes, or JSON-serialisable values) and load the workspace."""
    (folder / CONFIG_FILE).write_text(STORE_SETTINGS + textwrap.dedent(config), encoding="utf-8")
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif isinstance(content, str):
            path.write_text(content, encoding="utf-8")
        else:
            path.write_text(json.dumps(content), encoding="utf-8")
    return load_workspace(folder)


def json_lines(records: list[Any]) -> str:
    return "".join(json.dumps(record) + "\n" for record in records)


def run_ingest(workspace: Workspace, **options: Any) -> tuple[IngestReport, AnalyticalStore]:
    """Ingest into the workspace's store and return the report with the still-open store."""
    store = open_analytical_store(workspace.analytical_store_path)
    return ingest(workspace, store, **options), store


def counts(report: IngestReport, source: str) -> SourceCounts:
    return next(entry for entry in report.sources if entry.source == source)


def rows(store: AnalyticalStore, sql: str, parameters: list[object] | None = None) -> list[tuple[Any, ...]]:
    return store.connection.execute(sql, parameters or []).fetchall()


def assert_balanced(report: IngestReport) -> None:
    for entry in report.sources:
        assert entry.read == entry.inserted + entry.new_version + entry.unchanged + entry.quarantined, entry
