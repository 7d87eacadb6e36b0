from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import matplotlib.image
import pytest

from account_health.training.report import write_report
from company import write_company
from console import run_cli

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
VERDICT = (
    "NOT VALIDATED: the model cannot be shown to beat the base rate on its hold-out (ROC AUC 0.612, "
    "95 % interval 0.488 to 0.731; log-loss improvement 0.0041, interval -0.0030 to 0.0110). "
    "Treat its scores as unproven."
)


def _tier(name: str, rows: int, churned: int, predicted: float | None, consistent: bool) -> dict[str, Any]:
    observed = churned / rows if rows else None
    return {
        "tier": name,
        "rows": rows,
        "churned": churned,
        "mean_predicted": predicted,
        "observed": observed,
        "observed_low": None if observed is None else max(0.0, observed - 0.1),
        "observed_high": None if observed is None else min(1.0, observed + 0.1),
        "consistent": consistent,
    }


def _artifact() -> dict[str, Any]:
    """An artifact as train() writes it, with every field the report reads, some of them None."""
    return {
        "model_version": "20260101T000000Z-abcdef12",
        "created_at": "2026-01-01T00:00:00+00:00",
        "training_start": "2024-07-01T00:00:00+00:00",
        "training_end": "2025-12-31T00:00:00+00:00",
        "horizon_days": 90,
        "snapshot_every_days": 30,
        "snapshots": [f"2024-{month:02d}-01T00:00:00+00:00" for month in range(7, 13)]
        + [f"2025-{month:02d}-01T00:00:00+00:00" for month in range(1, 11)],
        "holdout_snapshots": [f"2025-{month:02d}-01T00:00:00+00:00" for month in range(7, 11)],
        "rows": 4321,
        "churn_events": 137,
        "accounts": 400,
        "base_rate": 0.0734,
        "signals_used": ["sentiment", "support"],
        "signals_missing": ["usage", "champion", "integrations"],
        "weights": {
            "sentiment": {
                "share": 0.7,
                "flagged": False,
                "coefficients": {"sentiment_score": -0.6543, "sentiment_missing": 0.1},
            },
            "support": {"share": 0.3, "flagged": True, "coefficients": {"support_load": 0.0321}},
        },
        "coefficient_intervals": {
            "sentiment_score": {
                "signal": "sentiment",
                "value": -0.7,
                "low": -0.9,
                "high": -0.5,
                "spans_zero": False,
            },
            "sentiment_missing": {
                "signal": "sentiment",
                "value": None,
                "low": None,
                "high": None,
                "spans_zero": None,
            },
            "support_load": {
                "signal": "support",
                "value": 0.04,
                "low": -0.11,
                "high": 0.19,
                "spans_zero": True,
            },
        },
        "regularisation": {
            "chosen_c": 0.1,
            "candidates": [
                {"C": 0.01, "log_loss": 0.2511},
                {"C": 0.1, "log_loss": 0.2409},
                {"C": 1.0, "log_loss": None},
            ],
            "source": "cross-validation",
        },
        "model": {"C": 0.1, "intercept": -2.5, "features": []},
        "tiers": {"red": 0.6, "orange": 0.4, "yellow": 0.2, "green": 0.08},
        "metrics": {
            "rows": 1200,
            "churned": 88,
            "base_rate": 0.0734,
            "roc_auc": {"value": 0.6123, "low": 0.4881, "high": 0.7312},
            "pr_auc": {"value": 0.1502, "low": 0.1011, "high": 0.2103},
            "log_loss": 0.2468,
            "log_loss_base_rate": 0.2509,
            "log_loss_improvement": {"value": 0.0041, "low": -0.003, "high": 0.011},
            "brier": 0.0671,
            "brier_base_rate": 0.0682,
            "top_decile_lift": 1.87,
            "calibration_slope": None,
            "calibration_intercept": 0.12,
            "tiers": [
                _tier("Red", 0, 0, None, True),
                _tier("Orange", 20, 9, 0.45, True),
                _tier("Yellow", 100, 22, 0.25, True),
                _tier("Green", 480, 40, 0.11, False),
                _tier("Dark-Green", 600, 17, 0.04, True),
            ],
            "calibration_curve": [
                {"bin": number, "rows": 120, "mean_predicted": 0.02 * number, "observed": 0.018 * number}
                for number in range(1, 11)
            ]
            + [{"bin": 11, "rows": 0, "mean_predicted": None, "observed": None}],
            "lift_curve": [
                {"fraction": round(0.1 * step, 4), "lift": 1.0 + 1.5 / step} for step in range(1, 11)
            ],
            "observed_rate": 0.0733,
            "baselines": {"sentiment alone": {"roc_auc": {"value": 0.5811, "low": 0.4702, "high": 0.6903}}},
            "beats_base_rate": False,
        },
        "caveats": ["the 95 % interval of every support coefficient spans zero; its weight may be noise"],
        "validated": False,
        "validation_reason": VERDICT,
        "versions": {"python": "3.11.7", "scikit-learn": "1.9.1"},
    }


def _old_artifact() -> dict[str, Any]:
    """The same artifact without the fields that earlier releases did not write."""
    artifact = _artifact()
    for key in ("coefficient_intervals", "regularisation"):
        del artifact[key]
    for key in ("calibration_curve", "lift_curve"):
        del artifact["metrics"][key]
    for entry in artifact["weights"].values():
        del entry["flagged"]
    return artifact


def test_report_files_sit_beside_the_model(tmp_path: Path):
    files = write_report(_artifact(), tmp_path)
    stem = "20260101T000000Z-abcdef12"
    assert files.markdown == tmp_path / f"{stem}.md"
    assert files.html == tmp_path / f"{stem}.html"
    assert set(files.plots) == {"calibration", "weights", "lift"}
    assert files.skipped == {}
    for path in files.paths():
        assert path.is_file(), path
        assert path.name.startswith(stem), path
    assert not list(tmp_path.glob("*.tmp"))


def test_markdown_starts_with_verdict(tmp_path: Path):
    text = write_report(_artifact(), tmp_path).markdown.read_text(encoding="utf-8")
    assert text.splitlines()[0] == f"# {VERDICT}"


def test_markdown_carries_key_numbers(tmp_path: Path):
    text = write_report(_artifact(), tmp_path).markdown.read_text(encoding="utf-8")
    expected = [
        "2024-07-01 to 2025-10-01",  # training window: first and last snapshot
        "4,321 account-snapshots of 400 accounts",
        "churn events in the training window: 137",
        "signals used: sentiment, support",
        "usage, champion, integrations",
        "| ROC AUC | 0.612 | 0.488 to 0.731 |",
        "| log-loss improvement over the base rate | 0.0041 | -0.0030 to 0.0110 |",
        "| top-decile lift | 1.87 |",
        "| calibration slope | n/a |",
        "| sentiment alone | 0.581 | 0.470 to 0.690 |",
        "| Green | at least 8% | 480 | 11.0% | 8.3% (40 churned) |",
        "| Red | at least 60% | 0 | n/a |",
        "| sentiment | 70% | sentiment_score | -0.654 | -0.700 | -0.900 to -0.500 | no |",
        "| support (every interval spans 0) | 30% | support_load | +0.032 | +0.040 | -0.110 to +0.190 | yes |",
        "Flagged signals: support.",
        "C = 0.1 (inverse L2 strength)",
        "| 1 | n/a |  |",
        "its weight may be noise",
        "churned within 90 days",
    ]
    for snippet in expected:
        assert snippet in text, f"{snippet!r} is not in the Markdown report"


def test_markdown_links_each_plot(tmp_path: Path):
    files = write_report(_artifact(), tmp_path)
    text = files.markdown.read_text(encoding="utf-8")
    for path in files.plots.values():
        assert f"]({path.name})" in text, path.name


def test_html_starts_with_verdict(tmp_path: Path):
    text = write_report(_artifact(), tmp_path).html.read_text(encoding="utf-8")
    title = re.search(r"<title>(.*?)</title>", text, re.DOTALL)
    heading = re.search(r"<h1[^>]*>(.*?)</h1>", text, re.DOTALL)
    assert title is not None and heading is not None
    assert title.group(1) == VERDICT
    assert heading.group(1) == VERDICT
    assert text.index("<h1") < text.index("<h2")
    assert 'class="not-validated"' in text


def test_html_has_no_external_references(tmp_path: Path):
    files = write_report(_artifact(), tmp_path)
    text = files.html.read_text(encoding="utf-8").lower()
    for forbidden in ("http://", "https://", "<script", "<link", "@import", "url("):
        assert forbidden not in text, forbidden
    sources = re.findall(r'src="([^"]+)"', text)
    assert sorted(sources) == sorted(path.name.lower() for path in files.plots.values())
    assert "<style>" in text


def test_html_carries_key_numbers(tmp_path: Path):
    text = write_report(_artifact(), tmp_path).html.read_text(encoding="utf-8")
    for snippet in ("0.612", "0.488 to 0.731", "-0.900 to -0.500", "Flagged signals: support.", "4,321"):
        assert snippet in text, f"{snippet!r} is not in the HTML report"


def test_plots_are_png_files(tmp_path: Path):
    files = write_report(_artifact(), tmp_path)
    for name, path in files.plots.items():
        data = path.read_bytes()
        assert data[:8] == PNG_SIGNATURE, name
        assert len(data) > 10_000, f"{name}: only {len(data)} bytes"
        height, width = matplotlib.image.imread(path).shape[:2]
        assert width >= 500, f"{name}: {width} pixels wide"
        assert height >= 300, f"{name}: {height} pixels high"


def test_old_artifact_skips_new_plots(tmp_path: Path):
    files = write_report(_old_artifact(), tmp_path)
    assert set(files.plots) == {"weights"}
    assert set(files.skipped) == {"calibration", "lift"}
    text = files.markdown.read_text(encoding="utf-8")
    assert text.splitlines()[0] == f"# {VERDICT}"
    assert "No calibration curve: this model file does not record one" in text
    assert "No lift curve: this model file does not record one" in text
    assert "This model file has no coefficient intervals." in text
    assert "records no choice of C; the model was fitted with C = 0.1000" in text
    assert "Flagged signals" not in text


def test_unevaluated_holdout_notes_why(tmp_path: Path):
    artifact = _old_artifact()
    artifact["metrics"] = {
        "rows": 300,
        "churned": 0,
        "base_rate": 0.05,
        "error": "the hold-out has only one class, so discrimination cannot be measured",
    }
    artifact["validation_reason"] = "NOT VALIDATED: the hold-out has only one class"
    files = write_report(artifact, tmp_path)
    text = files.markdown.read_text(encoding="utf-8")
    assert text.splitlines()[0] == "# NOT VALIDATED: the hold-out has only one class"
    assert "No hold-out metrics: the hold-out has only one class" in text
    assert "No calibration curve: the hold-out was not evaluated." in text
    assert set(files.plots) == {"weights"}


def test_nan_values_show_as_not_available(tmp_path: Path):
    artifact = _artifact()
    artifact["metrics"]["brier"] = float("nan")
    artifact["metrics"]["lift_curve"] = [{"fraction": 0.5, "lift": float("nan")}]
    files = write_report(artifact, tmp_path)
    text = files.markdown.read_text(encoding="utf-8")
    assert "| Brier score | n/a |" in text
    assert "nan" not in text.lower().replace("nats", "")
    assert "lift" in files.skipped


@pytest.mark.slow
def test_train_json_summary(tmp_path: Path):
    folder = write_company(tmp_path, accounts=400)
    ingested = run_cli("-w", str(folder), "ingest")
    assert ingested.returncode == 0, ingested.stderr

    result = run_cli("-w", str(folder), "train", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    for key in ("model_version", "validated", "validation_reason", "files", "metrics", "weights"):
        assert key in summary, key
    assert isinstance(summary["validated"], bool)
    assert summary["validation_reason"].startswith(("validated", "NOT VALIDATED"))
    assert "roc_auc" in summary["metrics"]
    assert set(summary["weights"]) == {"sentiment", "support"}

    files = summary["files"]
    model = Path(files["model"])
    assert model.name == f"{summary['model_version']}.json"
    for key in ("markdown", "html"):
        path = Path(files[key])
        assert path.is_file(), path
        assert path.parent == model.parent
    for path in files["plots"].values():
        assert Path(path).read_bytes()[:8] == PNG_SIGNATURE, path
    markdown = Path(files["markdown"]).read_text(encoding="utf-8")
    assert markdown.splitlines()[0] == f"# {summary['validation_reason']}"
