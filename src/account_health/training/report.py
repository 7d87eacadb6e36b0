"""The training report as Markdown and HTML beside the model file, with PNG plots.

Its first line is the verdict. A plot whose data the artifact lacks is left out, with a note in the
report where it would have been.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from account_health.training.plots import (
    CalibrationPoint,
    WeightBar,
    calibration_png,
    lift_png,
    weights_png,
)
from account_health.training.report_document import render_html, render_markdown
from account_health.training.report_sections import finite_number, report_blocks

__all__ = ["ReportFiles", "training_summary", "write_report"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReportFiles:
    """Paths of one model's report files, and the plots left out with the reason for each."""

    markdown: Path
    html: Path
    plots: dict[str, Path]
    skipped: dict[str, str] = field(default_factory=dict)

    def paths(self) -> list[Path]:
        return [self.markdown, self.html, *self.plots.values()]


def write_report(artifact: dict[str, Any], folder: Path) -> ReportFiles:
    """Write `<model_version>.md`, `<model_version>.html` and the PNG plots into `folder`.

    The HTML is self-contained apart from the PNGs, which it names by relative file name, so the
    folder can be moved or archived as a whole.
    """
    stem = artifact["model_version"]
    folder.mkdir(parents=True, exist_ok=True)

    plots, skipped = _write_plots(artifact, folder, stem)
    blocks = report_blocks(artifact, {name: path.name for name, path in plots.items()}, skipped)
    markdown_path = folder / f"{stem}.md"
    html_path = folder / f"{stem}.html"
    _write_atomic(markdown_path, render_markdown(blocks).encode("utf-8"))
    _write_atomic(html_path, render_html(blocks).encode("utf-8"))

    log.info("wrote the training report of model %s to %s", stem, folder)
    return ReportFiles(markdown_path, html_path, plots, skipped)


def training_summary(
    artifact: dict[str, Any], model_path: Path, report: ReportFiles | None
) -> dict[str, Any]:
    """Return the machine-readable summary that `account-health train --json` prints."""
    files: dict[str, Any] = {"model": str(model_path)}
    if report is not None:
        files.update(
            markdown=str(report.markdown),
            html=str(report.html),
            plots={name: str(path) for name, path in report.plots.items()},
        )
    return {
        "model_version": artifact["model_version"],
        "validated": artifact["validated"],
        "validation_reason": artifact["validation_reason"],
        "training_start": artifact.get("training_start"),
        "training_end": artifact.get("training_end"),
        "horizon_days": artifact.get("horizon_days"),
        "files": files,
        "metrics": artifact.get("metrics", {}),
        "weights": artifact.get("weights", {}),
        "coefficient_intervals": artifact.get("coefficient_intervals"),
        "regularisation": artifact.get("regularisation"),
        "tiers": artifact.get("tiers"),
        "tiers_fitted": artifact.get("tiers_fitted"),
        "caveats": artifact.get("caveats", []),
    }


def _write_plots(artifact: dict[str, Any], folder: Path, stem: str) -> tuple[dict[str, Path], dict[str, str]]:
    """Write each plot whose data the artifact holds; return the files and, per plot left out, why."""
    metrics = artifact["metrics"]
    horizon = artifact["horizon_days"]
    rows = int(metrics.get("rows") or 0)
    plots: dict[str, Path] = {}
    skipped: dict[str, str] = {}
    warning = None if artifact.get("validated") else "NOT VALIDATED: not shown to beat the base rate"

    calibration = _calibration_points(metrics.get("calibration_curve"))
    if calibration:
        plots["calibration"] = _save(
            folder / f"{stem}-calibration.png", calibration_png(calibration, horizon, rows, warning)
        )
    else:
        skipped["calibration"] = _missing_note("calibration curve", metrics, "calibration_curve")

    lift = _lift_points(metrics.get("lift_curve"))
    if lift:
        plots["lift"] = _save(folder / f"{stem}-lift.png", lift_png(lift, horizon, rows, warning))
    else:
        skipped["lift"] = _missing_note("lift curve", metrics, "lift_curve")

    bars = _weight_bars(artifact)
    if bars:
        chosen_c = finite_number((artifact.get("regularisation") or {}).get("chosen_c"))
        signals = list(dict.fromkeys(bar.signal for bar in bars))
        plots["weights"] = _save(
            folder / f"{stem}-weights.png", weights_png(bars, signals, chosen_c, warning)
        )
    else:
        skipped["weights"] = "No weight plot: the model has no coefficients."
    return plots, skipped


def _calibration_points(curve: list[dict[str, Any]] | None) -> list[CalibrationPoint]:
    points = []
    for entry in curve or []:
        predicted, observed = finite_number(entry.get("mean_predicted")), finite_number(entry.get("observed"))
        if predicted is not None and observed is not None and entry.get("rows"):
            points.append(CalibrationPoint(predicted, observed, int(entry["rows"])))
    return points


def _lift_points(curve: list[dict[str, Any]] | None) -> list[tuple[float, float]]:
    points = []
    for entry in curve or []:
        fraction, lift = finite_number(entry.get("fraction")), finite_number(entry.get("lift"))
        if fraction is not None and lift is not None:
            points.append((fraction, lift))
    return points


def _weight_bars(artifact: dict[str, Any]) -> list[WeightBar]:
    """Build one bar per model column, signals ordered by share (largest first) as in the weights table."""
    weights = artifact.get("weights") or {}
    intervals = artifact.get("coefficient_intervals") or {}
    bars = []
    for signal, entry in sorted(
        weights.items(), key=lambda item: -(finite_number(item[1].get("share")) or 0.0)
    ):
        for column, coefficient in entry.get("coefficients", {}).items():
            value = finite_number(coefficient)
            if value is None:
                continue
            interval = intervals.get(column) or {}
            bars.append(
                WeightBar(
                    column,
                    signal,
                    value,
                    finite_number(interval.get("value")),
                    finite_number(interval.get("low")),
                    finite_number(interval.get("high")),
                    bool(entry.get("flagged")),
                )
            )
    return bars


def _missing_note(what: str, metrics: dict[str, Any], key: str) -> str:
    if "roc_auc" not in metrics:
        return f"No {what}: the hold-out was not evaluated."
    if key not in metrics:
        return f"No {what}: this model file does not record one (it was written by an earlier release)."
    return f"No {what}: no hold-out bin had a computable value."


def _save(path: Path, data: bytes) -> Path:
    _write_atomic(path, data)
    return path


def _write_atomic(path: Path, data: bytes) -> None:
    """Write through a temporary file in the same folder, so a reader never sees half a file."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
