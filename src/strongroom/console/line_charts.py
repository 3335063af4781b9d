"""Line charts of metrics, drawn on the server as SVG geometry for ``templates/_chart.html``.

No script and no style attribute: the template draws polylines and text whose look comes from
``console.css`` classes, so the strict CSP holds. Each chart says in words what it shows (its
``<title>`` and ``<desc>``), for screen readers and for anyone who cannot tell the lines apart.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

WIDTH, HEIGHT = 560, 260
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 16, 44
MAX_POINTS = 400  # more points than pixels draw nothing new: longer series are thinned evenly
MAX_SERIES = 8  # line styles the stylesheet tells apart


@dataclass(frozen=True)
class Series:
    """One line: ``values`` over ``steps`` (a missing step is the point's index)."""

    label: str
    steps: Sequence[int | None]
    values: Sequence[float]


@dataclass(frozen=True)
class Tick:
    at: float
    label: str


@dataclass(frozen=True)
class Line:
    label: str
    points: str  # the polyline's "x,y x,y ..." in chart coordinates
    style: int  # 0..MAX_SERIES-1: the stylesheet's .series-N
    last_x: float
    last_y: float
    count: int


@dataclass(frozen=True)
class Chart:
    title: str
    description: str
    x_label: str
    y_label: str
    lines: list[Line]
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    top: int = TOP
    right: int = WIDTH - RIGHT
    bottom: int = HEIGHT - BOTTOM


def number(value: float) -> str:
    """A metric value as people read it: up to 4 significant digits, no float noise."""
    if value == 0 or (math.isfinite(value) and 1e-3 <= abs(value) < 1e6):
        return f"{value:.4g}"
    return f"{value:.3g}"


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values (1, 2, 2.5 or 5 times a power of ten) covering ``low..high``."""
    if high <= low:
        high = low + 1
    raw = (high - low) / max(1, count - 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.floor(low / step) * step
    ticks = []
    value = first
    while value <= high + step * 1e-9:
        ticks.append(round(value, 12))
        value += step
    if ticks[-1] < high:
        ticks.append(round(value, 12))
    return ticks


def _thin(xs: list[float], ys: list[float]) -> tuple[list[float], list[float]]:
    if len(xs) <= MAX_POINTS:
        return xs, ys
    keep = sorted({round(i * (len(xs) - 1) / (MAX_POINTS - 1)) for i in range(MAX_POINTS)})
    return [xs[i] for i in keep], [ys[i] for i in keep]


def line_chart(title: str, series: Sequence[Series], *, x_label: str = "step", y_label: str = "value") -> Chart:
    """The geometry of ``series`` (at most ``MAX_SERIES``) on shared axes, with a description in words."""
    shown = [s for s in series[:MAX_SERIES] if s.values]
    data = []
    for s in shown:
        xs = [float(step if step is not None else i) for i, step in enumerate(s.steps)]
        xs += [float(i) for i in range(len(xs), len(s.values))]
        data.append(_thin(xs, [float(v) for v in s.values]))
    if not data:
        return Chart(title, f"{title}: no values recorded.", x_label, y_label, [], [], [])
    x_lo = min(min(xs) for xs, _ in data)
    x_hi = max(max(xs) for xs, _ in data)
    y_lo = min(min(ys) for _, ys in data)
    y_hi = max(max(ys) for _, ys in data)
    if y_lo == y_hi:
        pad = abs(y_lo) * 0.1 or 1.0
        y_lo, y_hi = y_lo - pad, y_hi + pad
    y_ticks = nice_ticks(y_lo, y_hi)
    x_ticks = nice_ticks(x_lo, x_hi if x_hi > x_lo else x_lo + 1)
    y_lo, y_hi = y_ticks[0], y_ticks[-1]
    x_lo, x_hi = x_ticks[0], x_ticks[-1]
    right, bottom = WIDTH - RIGHT, HEIGHT - BOTTOM

    def px(x: float) -> float:
        return round(LEFT + (x - x_lo) / (x_hi - x_lo) * (right - LEFT), 1)

    def py(y: float) -> float:
        return round(bottom - (y - y_lo) / (y_hi - y_lo) * (bottom - TOP), 1)

    lines = []
    words = []
    for index, (s, (xs, ys)) in enumerate(zip(shown, data, strict=True)):
        points = " ".join(f"{px(x)},{py(y)}" for x, y in zip(xs, ys, strict=True))
        lines.append(Line(s.label, points, index, px(xs[-1]), py(ys[-1]), len(s.values)))
        words.append(
            f"{s.label}: {len(s.values)} values from {number(s.values[0])} to {number(s.values[-1])}"
            f" (min {number(min(s.values))}, max {number(max(s.values))})"
        )
    what = f"{y_label} over {x_label}" if y_label == title else f"{title}: {y_label} over {x_label}"
    description = f"{what}. " + "; ".join(words) + "."
    return Chart(
        title,
        description,
        x_label,
        y_label,
        lines,
        [Tick(px(t), number(t)) for t in x_ticks],
        [Tick(py(t), number(t)) for t in y_ticks],
    )
