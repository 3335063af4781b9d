"""Charts drawn on the server as SVG geometry (no script: the console's CSP allows none inline).

A chart here is plain numbers (positions and sizes in the SVG's own units) and text; the template
``_charts.html`` writes the SVG, so every label is escaped like any other value. Colours are
CSS classes of ``console.css`` (``style-src 'self'``: no inline style either).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

WIDTH = 640
ROW = 18  # height of one horizontal bar's row
LABEL = 150  # room for the labels left of horizontal bars
COLUMN_HEIGHT = 160
TOP = 14  # room above the tallest column for its count


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str
    value: str
    kind: str = ""  # a CSS class: "", "flagged", "client", "server"
    tick: str = ""  # a short axis label under a column (the full label is the bar's title)


@dataclass(frozen=True)
class Chart:
    """One SVG: ``bars``, an optional vertical ``line`` at x (a threshold) and its ``line_label``."""

    id: str
    title: str
    description: str
    width: int
    height: int
    bars: list[Bar]
    line: float | None = None
    line_label: str = ""
    columns: bool = False
    # columns only: the y of the plot's top (the scale's maximum) and of its base line (0)
    plot_top: float = 0.0
    plot_bottom: float = 0.0


def _scale(largest: float) -> float:
    """A round upper bound for an axis: 1, 2 or 5 times a power of ten, at least ``largest``."""
    if largest <= 0 or not math.isfinite(largest):
        return 1.0
    power = 10 ** math.floor(math.log10(largest))
    return next(step * power for step in (1, 2, 5, 10) if step * power >= largest)


def rows(
    chart_id: str,
    title: str,
    values: Sequence[tuple[str, float, str]],
    *,
    line: float | None = None,
    line_label: str = "",
    fmt: str = "{:g}",
) -> Chart:
    """Horizontal bars, one per ``(label, value, kind)``, from 0 to a round maximum; ``line`` draws
    a vertical mark at that value (a threshold)."""
    finite = [v for _, v, _ in values if math.isfinite(v)]
    top = _scale(max([*finite, line * 1.25 if line else 0.0, 0.0]))
    span = WIDTH - LABEL - 60
    bars = [
        Bar(
            LABEL,
            8 + index * ROW,
            span * min(max(value, 0.0), top) / top if math.isfinite(value) else 0.0,  # nan: no bar, its value says
            ROW - 4,
            label,
            fmt.format(value),
            kind,
        )
        for index, (label, value, kind) in enumerate(values)
    ]
    where = LABEL + span * line / top if line is not None else None
    summary = "; ".join(f"{b.label}: {b.value}" for b in bars)
    return Chart(chart_id, title, summary, WIDTH, 16 + ROW * max(len(bars), 1) + 14, bars, where, line_label)


def histogram(chart_id: str, title: str, cumulative: Mapping[str, int]) -> Chart:
    """Columns of a latency histogram kept as Prometheus keeps it (cumulative counts per upper
    bound in seconds, the last ``+Inf``): one column per bucket, labelled in milliseconds."""
    counts: list[tuple[str, str, int]] = []
    below = 0
    previous = ""
    for bound, running in cumulative.items():
        label, tick = _bucket_label(previous, bound)
        counts.append((label, tick, running - below))
        below, previous = running, bound
    top = _scale(max([c for _, _, c in counts] + [0]))
    step = (WIDTH - 40) / max(len(counts), 1)
    bars = [
        Bar(
            40 + index * step,
            TOP + COLUMN_HEIGHT - COLUMN_HEIGHT * count / top,
            step - 3,
            COLUMN_HEIGHT * count / top,
            label,
            str(count),
            tick=tick,
        )
        for index, (label, tick, count) in enumerate(counts)
    ]
    summary = "; ".join(f"{b.label}: {b.value}" for b in bars if b.value != "0") or "no invocation answered yet"
    return Chart(
        chart_id,
        title,
        summary,
        WIDTH,
        TOP + COLUMN_HEIGHT + 26,
        bars,
        line_label=str(top),
        columns=True,
        plot_top=TOP,
        plot_bottom=TOP + COLUMN_HEIGHT,
    )


def _ms(bound: str) -> str:
    seconds = float(bound)
    return f"{seconds * 1000:g}ms" if seconds < 1 else f"{seconds:g}s"


def _bucket_label(previous: str, bound: str) -> tuple[str, str]:
    """The bucket's label (``≤5ms``) and its axis tick (``5ms``)."""
    if bound == "+Inf":
        label = f">{_ms(previous)}" if previous else "all"
        return label, label
    return f"≤{_ms(bound)}", _ms(bound)
