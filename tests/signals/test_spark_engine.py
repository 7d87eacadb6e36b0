"""`[signals] engine = "spark"` through the commands: ingest exports, signals, train and score read Spark."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from account_health.cli.app import app
from account_health.config import Workspace, load_workspace
from account_health.errors import ConfigError
from account_health.signals import compute_signals
from account_health.sources.ingest import ingest
from account_health.store.analytical import open_analytical_store
from account_health.store.parquet_export import export_parquet
from account_health.training.train import train
from account_health.workspace import open_stores
from company import write_company
from engines import assert_same

runner = CliRunner()
AS_OF = "2025-06-01"
SPARK_SETTINGS = '\n[signals]\nengine = "spark"\n\n[spark]\nparquet_dir = "parquet"\nmaster = "local[2]"\n'


def _on_duckdb(workspace: Workspace) -> Workspace:
    signals = workspace.config.signals.model_copy(update={"engine": "duckdb"})
    return Workspace(workspace.config.model_copy(update={"signals": signals}), workspace.root)


def _invoke(*arguments: str) -> Any:
    result = runner.invoke(app, list(arguments))
    assert result.exit_code == 0, f"{arguments}: {result.output}{result.exception!r}"
    return result


def _signals_csv(folder: Path) -> pd.DataFrame:
    result = _invoke("-w", str(folder), "signals", "--as-of", AS_OF, "--format", "csv")
    frame = pd.read_csv(io.StringIO(result.stdout), dtype={"usage_measure": "string"})
    frame["as_of"] = pd.to_datetime(frame["as_of"]).astype("datetime64[us]")
    return frame


@pytest.mark.slow
def test_signals_train_and_score_on_spark(tmp_path: Path, spark_session: Any) -> None:
    folder = write_company(tmp_path / "company", accounts=120, min_churn_events=5)
    config = folder / "account-health.toml"
    config.write_text(config.read_text(encoding="utf-8") + SPARK_SETTINGS, encoding="utf-8")
    workspace = load_workspace(folder)

    ingested = _invoke("-w", str(folder), "ingest")
    assert "exported the canonical tables (load 1) for Spark" in ingested.stdout
    assert (folder / "parquet" / "_export.json").is_file()

    on_spark = _signals_csv(folder)
    with open_analytical_store(workspace.analytical_store_path, read_only=True) as store:
        on_duckdb = compute_signals(_on_duckdb(workspace), store, [pd.Timestamp(AS_OF).to_pydatetime()])
    on_duckdb = on_duckdb.astype({"usage_measure": "string"})
    assert_same(on_duckdb, on_spark)

    with open_stores(_on_duckdb(workspace)) as (store, engine):
        reference = train(_on_duckdb(workspace), store, engine).artifact
    trained = json.loads(_invoke("-w", str(folder), "train", "--json").stdout)
    model = json.loads(Path(trained["files"]["model"]).read_text(encoding="utf-8"))
    # Signals equal to 1e-9 relative give the same model up to the solver's rounding.
    names = ["name", "signal", "kind", "source"]
    assert [[f[k] for k in names] for f in model["model"]["features"]] == [
        [f[k] for k in names] for f in reference["model"]["features"]
    ]
    for ours, theirs in zip(model["model"]["features"], reference["model"]["features"], strict=True):
        for key in ("impute", "mean", "scale", "coefficient"):
            assert ours[key] == pytest.approx(theirs[key], rel=1e-6, abs=1e-9), (ours["name"], key)
    assert model["model"]["intercept"] == pytest.approx(reference["model"]["intercept"], rel=1e-6)

    scored = _invoke("-w", str(folder), "score", "--as-of", AS_OF)
    assert "scored" in scored.stdout

    # The same tables from the Spark catalog instead of the Parquet folder.
    spark_session.sql("CREATE DATABASE IF NOT EXISTS account_health_test")
    for table in ("accounts", "tickets", "sentiment_responses"):
        path = folder / "parquet" / f"{table}.parquet"
        spark_session.sql(f"DROP TABLE IF EXISTS account_health_test.{table}")
        spark_session.sql(f"CREATE TABLE account_health_test.{table} USING parquet LOCATION '{path}'")
    config.write_text(
        config.read_text(encoding="utf-8").replace(
            'parquet_dir = "parquet"', 'database = "account_health_test"'
        ),
        encoding="utf-8",
    )
    assert_same(on_duckdb, _signals_csv(folder))


def test_spark_engine_refuses_a_missing_or_stale_export(tmp_path: Path) -> None:
    folder = write_company(tmp_path, accounts=10)
    config = folder / "account-health.toml"
    config.write_text(config.read_text(encoding="utf-8") + SPARK_SETTINGS, encoding="utf-8")
    workspace = load_workspace(folder)
    with open_analytical_store(workspace.analytical_store_path) as store:
        ingest(workspace, store)
        with pytest.raises(ConfigError, match=r"no Parquet export .* run `account-health export`"):
            compute_signals(workspace, store, [pd.Timestamp(AS_OF).to_pydatetime()])
        export_parquet(store, folder / "parquet")
        ingest(workspace, store)
        with pytest.raises(
            ConfigError, match=r"contains load 1, but .* newest load is 2; run `account-health export`"
        ):
            compute_signals(workspace, store, [pd.Timestamp(AS_OF).to_pydatetime()])


@pytest.mark.parametrize("uri", ["s3a://bucket/parquet", "hdfs://cluster/parquet"])
def test_export_command_refuses_a_uri(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, uri: str) -> None:
    folder = write_company(tmp_path, accounts=10)
    monkeypatch.chdir(tmp_path)

    result = runner.invoke(app, ["-w", str(folder), "export", "--dir", uri])

    assert result.exit_code == 1
    assert f"cannot write to {uri}" in str(result.exception)
    assert not (tmp_path / (uri.split(":")[0] + ":")).exists(), "no local folder named after the URI"


def test_export_command_writes_every_canonical_table(tmp_path: Path) -> None:
    folder = write_company(tmp_path, accounts=10)
    _invoke("-w", str(folder), "ingest")
    result = _invoke("-w", str(folder), "export", "--dir", str(tmp_path / "out"))

    assert "exported 12 canonical tables" in result.stdout
    accounts = pd.read_parquet(tmp_path / "out" / "accounts.parquet")
    assert len(accounts) == 10
    assert "_available_at" in accounts.columns
    assert json.loads((tmp_path / "out" / "_export.json").read_text())["load_id"] == 1
