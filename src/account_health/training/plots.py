"""PNG plots of the training report: calibration curve, weights with intervals, lift curve.

Figures are drawn with matplotlib's object-oriented API on an Agg canvas (FigureCanvasAgg), never
through pyplot, so no display is needed and pyplot's process-wide backend is left as the caller set
it. Each function takes plain numbers, already stripped of missing values, and returns PNG bytes.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

DPI = 110


@dataclass(frozen=True)
class CalibrationPoint:
    """One bin of hold-out rows: mean predicted churn probability and observed churn rate."""

    mean_predicted: float
    observed: float
    rows: int


@dataclass(frozen=True)
class WeightBar:
    """One model column: its standardised coefficient and, when computed, a 95 % interval."""

    column: str
    signal: str
    coefficient: float
    estimate: float | None
    low: float | None
    high: float | None
    flagged: bool


def calibration_png(
    points: list[CalibrationPoint], horizon_days: int, holdout_rows: int, warning: str | None = None
) -> bytes:
    """Plot observed churn against mean predicted probability per bin, with the diagonal."""
    figure = _figure(6.4, 5.4)
    axes = figure.add_subplot()
    limit = min(1.0, 1.05 * max(max(point.mean_predicted, point.observed) for point in points)) or 1.0

    axes.plot([0, limit], [0, limit], linestyle="--", color="grey", label="perfect calibration")
    axes.plot(
        [point.mean_predicted for point in points],
        [point.observed for point in points],
        marker="o",
        color="tab:blue",
        label=f"hold-out bins ({len(points)} bins of about {holdout_rows // len(points):,} rows)",
    )
    axes.set_xlim(0, limit)
    axes.set_ylim(0, limit)
    axes.set_xlabel(f"mean predicted churn probability within {horizon_days} days")
    axes.set_ylabel(f"observed churn rate within {horizon_days} days")
    axes.set_title(f"Calibration on the out-of-time hold-out ({holdout_rows:,} account-snapshots)")
    axes.grid(alpha=0.3)
    axes.legend(loc="upper left")
    return _png(figure, warning)


def weights_png(
    bars: list[WeightBar], signals: list[str], chosen_c: float | None, warning: str | None = None
) -> bytes:
    """Plot each column's standardised coefficient as a bar coloured by signal, with its 95 % interval."""
    figure = _figure(9.5, 1.8 + 0.42 * len(bars))
    axes = figure.add_subplot()
    palette = colormaps["tab10"]
    colours = {signal: palette(index % 10) for index, signal in enumerate(signals)}

    positions, labels = _grouped_positions(bars)
    for position, bar in zip(positions, bars, strict=True):
        axes.barh(
            position,
            bar.coefficient,
            color=colours[bar.signal],
            hatch="//" if bar.flagged else None,
            edgecolor="black" if bar.flagged else colours[bar.signal],
            height=0.7,
        )
        if bar.estimate is not None and bar.low is not None and bar.high is not None:
            axes.errorbar(
                bar.estimate,
                position,
                xerr=[[bar.estimate - bar.low], [bar.high - bar.estimate]],
                fmt="o",
                color="black",
                markersize=3,
                capsize=3,
            )
    axes.axvline(0, color="black", linewidth=0.8)
    axes.set_yticks(positions, labels)
    axes.invert_yaxis()
    penalty = f", L2 with C = {chosen_c:g}" if chosen_c is not None else ""
    axes.set_xlabel(
        f"standardised coefficient (log-odds per standard deviation{penalty})\n+ raises churn risk"
    )
    axes.set_title("Learned weights per model column, grouped by signal")
    axes.grid(axis="x", alpha=0.3)

    handles: list[Patch | Line2D] = [Patch(color=colours[signal], label=signal) for signal in signals]
    handles.append(
        Line2D([], [], color="black", marker="o", markersize=3, label="coefficient, 95 % interval")
    )
    if any(bar.flagged for bar in bars):
        handles.append(
            Patch(facecolor="white", edgecolor="black", hatch="//", label="signal's intervals all span 0")
        )
    figure.legend(handles=handles, loc="outside right upper", fontsize="small")
    return _png(figure, warning)


def lift_png(
    points: list[tuple[float, float]], horizon_days: int, holdout_rows: int, warning: str | None = None
) -> bytes:
    """Plot cumulative lift against the fraction of hold-out rows targeted, riskiest first."""
    figure = _figure(6.8, 4.6)
    axes = figure.add_subplot()
    fractions = [100 * fraction for fraction, _lift in points]
    lifts = [lift for _fraction, lift in points]

    axes.plot(fractions, lifts, marker="o", markersize=3, color="tab:red", label="model")
    axes.axhline(1.0, linestyle="--", color="grey", label="random targeting (lift 1)")
    axes.set_xlim(0, 100)
    axes.set_ylim(0, max(*lifts, 1.0) * 1.08)
    axes.set_xlabel(f"share of the {holdout_rows:,} hold-out account-snapshots targeted, riskiest first (%)")
    axes.set_ylabel(f"cumulative lift (x the churn rate within {horizon_days} days)")
    axes.set_title("Lift on the out-of-time hold-out")
    axes.grid(alpha=0.3)
    axes.legend(loc="upper right")
    return _png(figure, warning)


def _grouped_positions(bars: list[WeightBar]) -> tuple[list[float], list[str]]:
    """Return y positions that leave a gap between signals, and each column's tick label."""
    positions: list[float] = []
    labels: list[str] = []
    position = 0.0
    previous: str | None = None
    for bar in bars:
        if previous is not None and bar.signal != previous:
            position += 0.6
        positions.append(position)
        labels.append(bar.column)
        position += 1.0
        previous = bar.signal
    return positions, labels


def _figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _png(figure: Figure, warning: str | None = None) -> bytes:
    if warning:
        # A plot may travel without its report, so it carries the model's verdict itself.
        figure.suptitle(warning, color="#b00020", fontweight="bold")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
