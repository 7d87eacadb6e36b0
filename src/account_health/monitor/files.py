"""Write the monitoring report as Markdown, HTML, PNG plots and JSON into one folder."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from account_health.monitor import plots
from account_health.monitor.report import MonitorReport
from account_health.monitor.sections import report_blocks
from account_health.training.artifact import dumps
from account_health.training.report import _write_atomic
from account_health.training.report_document import render_html, render_markdown

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MonitorFiles:
    """Paths of one monitoring report's files."""

    markdown: Path
    html: Path
    json: Path
    plots: dict[str, Path]

    def paths(self) -> list[Path]:
        return [self.markdown, self.html, self.json, *self.plots.values()]


def report_json(report: MonitorReport) -> str:
    """Return the report as JSON text; values that could not be computed are null, never NaN."""
    return dumps(report.to_dict())


def write_report_files(report: MonitorReport, folder: Path) -> MonitorFiles:
    """Write `monitor-<as-of>.md`, `.html`, `.json` and the PNG plots into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"monitor-{report.as_of:%Y-%m-%d}"
    written: dict[str, Path] = {}
    settings = report.settings
    if report.monthly_distributions:
        from account_health.config import DistributionBands

        bands = DistributionBands(**settings["distribution_bands"])
        written["tiers"] = _save(
            folder / f"{stem}-tiers.png",
            plots.tiers_png(report.monthly_distributions, bands, settings["red_orange_alert_share"]),
        )
    if report.calibration:
        bounds = tuple(settings["calibration_slope_bounds"])
        written["calibration"] = _save(
            folder / f"{stem}-calibration.png", plots.calibration_png(report.calibration, bounds)
        )  # type: ignore[arg-type]
    if report.feature_drift or report.weights.columns:
        written["drift"] = _save(
            folder / f"{stem}-drift.png",
            plots.drift_png(
                report.feature_drift, report.weights.columns, settings["psi_warning"], settings["psi_alert"]
            ),
        )

    blocks = report_blocks(report, {name: path.name for name, path in written.items()})
    files = MonitorFiles(folder / f"{stem}.md", folder / f"{stem}.html", folder / f"{stem}.json", written)
    _write_atomic(files.markdown, render_markdown(blocks).encode("utf-8"))
    _write_atomic(files.html, render_html(blocks).encode("utf-8"))
    _write_atomic(files.json, report_json(report).encode("utf-8"))
    log.info("wrote the monitoring report as of %s to %s", report.as_of, folder)
    return files


def _save(path: Path, data: bytes) -> Path:
    _write_atomic(path, data)
    return path
