"""Geometry of the findings-per-night chart: stacked bars by category, computed here, drawn as inline SVG
by templates/chart.svg.j2 (autoescaped, so labels from data cannot inject markup)."""
from __future__ import annotations

import math
from dataclasses import dataclass

from gradesync.report.categories import colour_of, ordered_categories

WIDTH, HEIGHT = 960, 340
LEFT, RIGHT, TOP, BOTTOM = 56, 250, 20, 70          # RIGHT leaves room for the legend
LEGEND_ROW = 20


@dataclass(frozen=True)
class Bar:
    category: str
    count: int
    x: float
    y: float
    width: float
    height: float
    colour: str


@dataclass(frozen=True)
class Night:
    night: str
    total: int
    bars: tuple[Bar, ...]
    label_x: float            # centre of the group, for the date label
    show_label: bool          # with many nights only every k-th date is written


@dataclass(frozen=True)
class Tick:
    value: int
    y: float


@dataclass(frozen=True)
class LegendItem:
    category: str
    colour: str
    y: float


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    plot_left: float
    plot_right: float
    plot_top: float
    plot_bottom: float
    nights: tuple[Night, ...]
    ticks: tuple[Tick, ...]
    legend: tuple[LegendItem, ...]
    legend_x: float
    rotate_labels: bool


def nice_max(value: int) -> tuple[int, int]:
    """An axis maximum ≥ value made of 1/2/5 × 10^k steps, and its step (about 5 ticks)."""
    if value <= 0:
        return 1, 1
    raw = value / 5
    mag = 10 ** math.floor(math.log10(raw)) if raw >= 1 else 1
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    step = max(1, int(step))
    return int(math.ceil(value / step) * step), step


def build_chart(history: list[tuple[str, dict[str, int]]]) -> Chart:
    """Stacked bars per night (design category order, bottom up); y axis in findings."""
    present = {c for _, counts in history for c, n in counts.items() if n}
    categories = ordered_categories(present)
    plot_left, plot_right = LEFT, WIDTH - RIGHT
    plot_top, plot_bottom = TOP, HEIGHT - BOTTOM
    plot_h = plot_bottom - plot_top
    top_value = max((sum(max(0, int(n)) for n in counts.values()) for _, counts in history), default=0)
    axis_max, step = nice_max(top_value)
    slot = (plot_right - plot_left) / max(1, len(history))
    bar_w = max(1.0, slot * 0.7)
    label_every = max(1, math.ceil(len(history) / 31))
    nights = []
    for i, (night, counts) in enumerate(history):
        x = plot_left + i * slot + (slot - bar_w) / 2
        y_cursor = float(plot_bottom)
        bars = []
        for cat in categories:
            n = max(0, int(counts.get(cat, 0) or 0))
            if not n:
                continue
            h = n / axis_max * plot_h
            y_cursor -= h
            bars.append(Bar(cat, n, round(x, 2), round(y_cursor, 2), round(bar_w, 2), round(h, 2), colour_of(cat)))
        total = sum(b.count for b in bars)
        nights.append(Night(str(night), total, tuple(bars), round(x + bar_w / 2, 2), i % label_every == 0))
    ticks = tuple(Tick(v, round(plot_bottom - v / axis_max * plot_h, 2)) for v in range(0, axis_max + 1, step))
    # Every category, always: the same colour means the same cause in every night's report.
    legend = tuple(LegendItem(c, colour_of(c), plot_top + 8 + i * LEGEND_ROW) for i, c in enumerate(categories))
    return Chart(WIDTH, HEIGHT, plot_left, plot_right, plot_top, plot_bottom, tuple(nights), ticks, legend,
                 plot_right + 24, rotate_labels=len(history) > 12)
