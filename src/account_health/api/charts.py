"""Dashboard charts as inline SVG, drawn server-side by matplotlib on an Agg canvas.

Text is drawn as paths (matplotlib's default `svg.fonttype`), so a chart needs no font or file from
anywhere else. Drawing takes a lock because matplotlib does not promise thread safety and the
server renders pages on a thread pool.
"""

from __future__ import annotations

import base64
import io
import threading
from dataclasses import dataclass
from datetime import datetime

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import date2num
from matplotlib.figure import Figure

from account_health.training.evaluate import TIER_NAMES

TIER_COLOURS = {
    "Red": "#c62828",
    "Orange": "#ef6c00",
    "Yellow": "#f9a825",
    "Green": "#43a047",
    "Dark-Green": "#1b5e20",
}
DPI = 96
_LOCK = threading.Lock()


@dataclass(frozen=True)
class WaterfallStep:
    label: str
    log_odds: float


@dataclass(frozen=True)
class HistoryPoint:
    as_of: datetime
    probability: float
    tier: str
    model_changed: bool


def distribution_svg(counts: dict[str, int]) -> str:
    """Draw accounts per tier as horizontal bars, Red at the top."""
    with _LOCK:
        figure = _figure(6.0, 2.6)
        axes = figure.add_subplot()
        tiers = list(reversed(TIER_NAMES))
        values = [counts.get(tier, 0) for tier in tiers]
        bars = axes.barh(tiers, values, color=[TIER_COLOURS[tier] for tier in tiers])
        axes.bar_label(bars, labels=[f"{value:,}" for value in values], padding=3)
        axes.set_xlabel("accounts")
        axes.set_xlim(0, max([*values, 1]) * 1.15)
        axes.spines[["top", "right"]].set_visible(False)
        return _svg(figure)


def distribution_history_svg(
    history: dict[datetime, dict[str, int]], healthy_red_orange: tuple[float, float]
) -> str:
    """Draw each tier's share of accounts over time, stacked from Red up, with the healthy band shaded.

    The top of the Orange layer is the share of Red plus Orange, so it can be read against the band.
    """
    with _LOCK:
        figure = _figure(7.5, 3.2)
        axes = figure.add_subplot()
        dates = date2num(list(history))
        totals = [max(sum(counts.values()), 1) for counts in history.values()]
        shares = [
            [counts.get(tier, 0) / total for counts, total in zip(history.values(), totals, strict=True)]
            for tier in TIER_NAMES
        ]
        low, high = healthy_red_orange
        axes.axhspan(
            low, high, color="#1565c0", alpha=0.15, label=f"healthy Red + Orange ({low:.0%} to {high:.0%})"
        )
        if len(dates) == 1:
            bottom = 0.0
            for tier, share in zip(TIER_NAMES, shares, strict=True):
                axes.bar(dates, share, bottom=bottom, color=TIER_COLOURS[tier], label=tier, width=5)
                bottom += share[0]
        else:
            axes.stackplot(
                dates,
                *shares,
                colors=[TIER_COLOURS[tier] for tier in TIER_NAMES],
                labels=TIER_NAMES,
                alpha=0.85,
            )
        axes.xaxis_date()
        axes.set_ylim(0, 1)
        axes.yaxis.set_major_formatter(lambda value, _position: f"{value:.0%}")
        axes.set_ylabel("share of scored accounts")
        axes.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize="small", frameon=False)
        figure.autofmt_xdate()
        return _svg(figure)


def waterfall_svg(steps: list[WaterfallStep], start: float, probability: float) -> str:
    """Draw the contributions as a waterfall in log-odds, from an average account to this one."""
    with _LOCK:
        figure = _figure(7.0, 0.9 + 0.45 * (len(steps) + 2))
        axes = figure.add_subplot()
        labels = ["average account", *(step.label for step in steps), "this account"]
        position = start
        for row, step in enumerate(steps, start=1):
            colour = "#c62828" if step.log_odds > 0 else "#2e7d32"
            axes.barh(row, step.log_odds, left=position, color=colour)
            axes.text(
                position + step.log_odds,
                row,
                f" {step.log_odds:+.2f}",
                va="center",
                ha="left" if step.log_odds >= 0 else "right",
                fontsize="small",
            )
            position += step.log_odds
        axes.barh(0, start, color="#9e9e9e")
        axes.barh(len(steps) + 1, position, color="#424242")
        axes.set_yticks(range(len(labels)), labels)
        axes.invert_yaxis()
        axes.axvline(0, color="black", linewidth=0.6)
        axes.set_xlabel(f"log-odds of churn (this account: {probability:.1%} churn probability)")
        axes.spines[["top", "right"]].set_visible(False)
        return _svg(figure)


def history_svg(points: list[HistoryPoint], cutoffs: dict[str, float]) -> str:
    """Draw churn probability over time, with the tier cut-offs and a dashed line at each model change."""
    with _LOCK:
        figure = _figure(7.0, 3.0)
        axes = figure.add_subplot()
        dates = date2num([point.as_of for point in points])
        axes.xaxis_date()
        axes.plot(dates, [point.probability for point in points], color="#212121", marker="o", markersize=3)
        for name, value in cutoffs.items():
            tier = name.capitalize()
            axes.axhline(value, color=TIER_COLOURS.get(tier, "grey"), linestyle=":", linewidth=1)
            axes.text(
                float(dates[0]),
                value,
                f" {tier} from {value:.0%}",
                fontsize="x-small",
                va="bottom",
                color=TIER_COLOURS.get(tier, "grey"),
            )
        for point in points:
            if point.model_changed:
                when = float(date2num(point.as_of))
                axes.axvline(when, color="#6a1b9a", linestyle="--", linewidth=1)
                axes.text(
                    when,
                    0.98,
                    " new model",
                    transform=axes.get_xaxis_transform(),
                    fontsize="x-small",
                    color="#6a1b9a",
                    va="top",
                )
        top = max([*(point.probability for point in points), *cutoffs.values(), 0.05])
        axes.set_ylim(0, min(1.0, top * 1.15))
        axes.yaxis.set_major_formatter(lambda value, _position: f"{value:.0%}")
        axes.set_ylabel("churn probability")
        axes.spines[["top", "right"]].set_visible(False)
        figure.autofmt_xdate()
        return _svg(figure)


def lock() -> threading.Lock:
    """Return the lock that serialises matplotlib drawing, for callers that draw with other helpers."""
    return _LOCK


def png_data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _svg(figure: Figure) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg")
    text = buffer.getvalue()
    # Drop the XML declaration and DOCTYPE so the SVG can sit inside an HTML page.
    return text[text.index("<svg") :]
