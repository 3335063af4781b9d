"""A monitoring execution's report: one self-contained HTML page.

Per feature it shows the baseline's and the window's distributions side by side (bars drawn as
inline SVG from the KLL sketches, the exact counts or the category counts in the statistics), the
distance from the baseline against the bound it was held to, and whether the feature passed; then
every violation. The page has no script and loads nothing (a Content-Security-Policy forbids every
source but its inline styles), so it opens the same from a bucket, a mail or an evidence archive.
Every name and text value is HTML-escaped: a feature named ``<script>`` shows as that text.
"""

from __future__ import annotations

import html
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from strongroom.monitor.statistics import DISTRIBUTION_BUCKETS, DatasetStatistics, FeatureStatistics
from strongroom.monitor.violations import CheckResult, Violation

if TYPE_CHECKING:  # the attribution module imports the explain domain (SHAP, XGBoost): not at run time
    from strongroom.monitor.attribution import AttributionResult

CONTENT_SECURITY_POLICY = "default-src 'none'; style-src 'unsafe-inline'"
MAX_INTEGER_BARS = 25
"""Integer features spanning at most this many values get one bar per value instead of buckets."""
MAX_CATEGORY_BARS = 12
"""Text features show their most frequent values (in either dataset), the rest as one "other" bar."""

_BASELINE_COLOUR, _WINDOW_COLOUR = "#6b8bb5", "#e08a2c"

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem auto;max-width:1100px;
color:#1d2430;padding:0 1rem;line-height:1.45}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #dde3ea}
h3{font-size:1rem;margin:0 0 .3rem 0;overflow-wrap:anywhere}
.sub{color:#5a6472;margin-top:0}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1.2rem}dl.facts dt{color:#5a6472}
dl.facts dd{margin:0}
.badge{display:inline-block;padding:.05rem .5rem;border-radius:.6rem;font-size:.85rem;font-weight:600}
.pass{background:#e3f4e8;color:#17642f}.violation{background:#fbe3e1;color:#a1261b}
.skipped{background:#eef1f5;color:#5a6472}
table{border-collapse:collapse;width:100%;font-size:.92rem}th,td{padding:.3rem .6rem;text-align:left;
vertical-align:top}th{background:#f1f4f8;border-bottom:1px solid #cfd6df}td{border-bottom:1px solid #edf0f4}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.features{display:grid;grid-template-columns:repeat(auto-fill,minmax(330px,1fr));gap:1rem}
.feature{border:1px solid #dde3ea;border-radius:.4rem;padding:.7rem .8rem}
.feature.flagged{border-color:#e3a39c;background:#fffafa}
.feature p{margin:.2rem 0;font-size:.88rem;color:#3a4350}
.legend span{display:inline-block;width:.8rem;height:.8rem;margin:0 .3rem 0 .8rem;vertical-align:middle}
svg{display:block;width:100%;height:auto}
.bar{display:block;height:.45rem;margin:.1rem 0;min-width:1px}table.attribution td:last-child{width:35%}
"""


@dataclass(frozen=True)
class Histogram:
    """Both datasets' shares over the same bars: ``labels[i]`` names bar ``i``."""

    labels: tuple[str, ...]
    baseline: tuple[float, ...]
    window: tuple[float, ...]


def render_report(
    baseline: DatasetStatistics,
    window: DatasetStatistics,
    result: CheckResult,
    *,
    title: str,
    attribution: AttributionResult | None = None,
) -> str:
    """The HTML report of one checked window.

    Args:
        baseline: the baseline's statistics.
        window: the window's statistics (the ones ``result`` was computed from).
        result: :func:`~strongroom.monitor.violations.check_window`'s outcome.
        title: the page's heading (for example the schedule's name and the window's time range).
        attribution: the same window's feature-attribution drift check
            (:func:`~strongroom.monitor.attribution.check_attribution_drift`), shown in its own
            section when given.

    Returns:
        The whole document as text (UTF-8 when written).
    """
    flagged: dict[str, list[Violation]] = {}
    for violation in result.violations:
        flagged.setdefault(violation.feature_name, []).append(violation)
    names = list(baseline.names) + [n for n in window.names if n not in baseline.names]
    names += [n for n in flagged if n not in names]
    cards = [
        _feature_card(name, baseline.feature(name), window.feature(name), result, flagged.get(name, []))
        for name in names
    ]
    facts = [
        ("Status", _status_badge(result.status)),
        ("Summary", _e(result.message)),
        ("Baseline rows", f"{baseline.item_count:,}"),
        ("Window rows", f"{window.item_count:,}"),
        ("Violations", f"{len(result.violations):,} on {len(flagged):,} feature(s)"),
        ("Drift threshold", "comparison not run" if result.threshold is None else f"{result.threshold:g}"),
    ]
    return "".join(
        [
            _head(title),
            f"<h1>{_e(title)}</h1>",
            '<p class="sub">Model monitor report: the window checked against the baseline.</p>',
            '<dl class="facts">',
            *(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts),
            "</dl>",
            "<h2>Violations</h2>",
            _violations_table(result.violations),
            _attribution_section(attribution) if attribution is not None else "",
            "<h2>Features</h2>",
            '<p class="legend">Share of values per bar:'
            f'<span style="background:{_BASELINE_COLOUR}"></span>baseline'
            f'<span style="background:{_WINDOW_COLOUR}"></span>window. '
            "The distance is the Kolmogorov-Smirnov distance between the two distributions for numbers, "
            "the largest difference in a value's share for text (see docs/monitoring.md); a feature drifts "
            "when it exceeds both the threshold and the sampling noise of a window that size.</p>",
            '<div class="features">',
            *cards,
            "</div></body></html>\n",
        ]
    )


def histogram(baseline: FeatureStatistics | None, window: FeatureStatistics | None) -> Histogram | None:
    """Both distributions over common bars, or ``None`` when neither side has one to show.

    Numbers: ten equal-width buckets from the smaller minimum to the larger maximum (one bar per
    value for integers spanning at most :data:`MAX_INTEGER_BARS` values), shares from each side's
    sketch. Text: the most frequent values of either side, the rest as ``(other)``.
    """
    sides = [f for f in (baseline, window) if f is not None]
    if not sides:
        return None
    if sides[0].inferred_type == "String":
        return _categorical(baseline, window)
    numeric = [f for f in sides if f.sketch is not None and f.min is not None and f.max is not None]
    if not numeric:
        return None
    low = min(float(f.min) for f in numeric if f.min is not None)
    high = max(float(f.max) for f in numeric if f.max is not None)
    integral = all(f.inferred_type == "Integral" for f in numeric)
    if integral and high - low < MAX_INTEGER_BARS:
        values = np.arange(low, high + 1)
        cuts = np.concatenate([[low - 0.5], values + 0.5])
        labels = tuple(_number(v) for v in values)
    else:
        cuts = np.linspace(low, high, DISTRIBUTION_BUCKETS + 1) if high > low else np.array([low, low])
        cuts = cuts.copy()
        cuts[0] = np.nextafter(low, -math.inf)  # the first bucket includes the minimum
        edges = np.linspace(low, high, len(cuts))
        labels = tuple(f"{_number(a)} to {_number(b)}" for a, b in itertools.pairwise(edges))

    def shares(feature: FeatureStatistics | None) -> tuple[float, ...]:
        if feature is None or feature.sketch is None:
            return tuple(0.0 for _ in labels)
        cdf = feature.sketch.cdf(cuts)
        return tuple(float(x) for x in np.clip(np.diff(cdf), 0.0, 1.0))

    return Histogram(labels, shares(baseline), shares(window))


def _categorical(baseline: FeatureStatistics | None, window: FeatureStatistics | None) -> Histogram:
    def table(feature: FeatureStatistics | None) -> dict[str, float]:
        counts = dict(feature.categories or {}) if feature is not None else {}
        total = sum(counts.values())
        return {v: n / total for v, n in counts.items()} if total else {}

    base, now = table(baseline), table(window)
    ranked = sorted({*base, *now}, key=lambda v: (-(base.get(v, 0.0) + now.get(v, 0.0)), v))
    shown = ranked[:MAX_CATEGORY_BARS]
    labels = list(shown)
    base_shares = [base.get(v, 0.0) for v in shown]
    window_shares = [now.get(v, 0.0) for v in shown]
    if len(ranked) > len(shown):
        labels.append("(other)")
        base_shares.append(max(0.0, (1.0 if base else 0.0) - sum(base_shares)))
        window_shares.append(max(0.0, (1.0 if now else 0.0) - sum(window_shares)))
    return Histogram(tuple(labels), tuple(base_shares), tuple(window_shares))


def _feature_card(
    name: str,
    baseline: FeatureStatistics | None,
    window: FeatureStatistics | None,
    result: CheckResult,
    violations: Sequence[Violation],
) -> str:
    distance = result.distances.get(name)
    if violations:
        badge = '<span class="badge violation">' + _e(", ".join(sorted({v.constraint_check_type for v in violations})))
        badge += "</span>"
    elif distance is not None:
        badge = '<span class="badge pass">pass</span>'
    else:
        badge = '<span class="badge skipped">not compared</span>'
    lines = [f"Type: {_e(baseline.inferred_type) if baseline else 'not in the baseline'}"]
    if window is not None and baseline is not None and window.inferred_type != baseline.inferred_type:
        lines[0] += f" (window: {_e(window.inferred_type)})"
    lines.append(f"Values: baseline {_count(baseline)}, window {_count(window)}")
    if distance is not None:
        text = f"Distance <strong>{distance:.4g}</strong>"
        if result.threshold is not None:
            floor = result.noise_floors.get(name, 0.0)
            text += f", threshold {result.threshold:g}"
            if floor > result.threshold:
                text += f" (sampling noise bound {floor:.3g} of so small a window)" if math.isfinite(floor) else ""
        lines.append(text)
    chart = histogram(baseline, window)
    svg = _svg(name, chart) if chart is not None and chart.labels else "<p>No distribution to show.</p>"
    css = "feature flagged" if violations else "feature"
    return (
        f'<section class="{css}"><h3>{_e(name)} {badge}</h3>'
        + "".join(f"<p>{line}</p>" for line in lines)
        + svg
        + "</section>"
    )


def _svg(name: str, chart: Histogram) -> str:
    width, height, pad_left, pad_bottom, top = 320, 130, 30, 22, 6
    plot_w, plot_h = width - pad_left - 4, height - pad_bottom - top
    tallest = max([*chart.baseline, *chart.window, 1e-12])
    slot = plot_w / len(chart.labels)
    bar = max(slot * 0.4, 0.5)
    parts = [
        f'<svg viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg" role="img" '
        f'aria-label="{_e(f"Distribution of {name}: baseline and window")}">',
        f'<line x1="{pad_left}" y1="{top + plot_h}" x2="{width - 4}" y2="{top + plot_h}" stroke="#9aa5b1"/>',
        f'<text x="{pad_left - 3}" y="{top + 8}" font-size="9" text-anchor="end" fill="#5a6472">{tallest:.0%}</text>',
    ]
    for i, label in enumerate(chart.labels):
        x = pad_left + i * slot + slot * 0.1
        for offset, share, colour, side in (
            (0.0, chart.baseline[i], _BASELINE_COLOUR, "baseline"),
            (bar, chart.window[i], _WINDOW_COLOUR, "window"),
        ):
            h = plot_h * share / tallest
            parts.append(
                f'<rect x="{x + offset:.2f}" y="{top + plot_h - h:.2f}" width="{bar:.2f}" height="{h:.2f}" '
                f'fill="{colour}"><title>{_e(f"{label}: {side} {share:.2%}")}</title></rect>'
            )
    first, last = chart.labels[0], chart.labels[-1]
    parts.append(f'<text x="{pad_left}" y="{height - 6}" font-size="9" fill="#5a6472">{_e(_short(first))}</text>')
    if len(chart.labels) > 1:
        parts.append(
            f'<text x="{width - 4}" y="{height - 6}" font-size="9" text-anchor="end" fill="#5a6472">'
            f"{_e(_short(last))}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def render_attribution_report(attribution: AttributionResult, *, title: str) -> str:
    """The HTML report of one explainability execution: the window's feature attributions against
    the baseline's, the nDCG score and the violation (the same section the data-quality report
    shows when given an attribution check)."""
    facts = [
        ("Status", _status_badge(attribution.status)),
        ("Window rows", f"{attribution.rows:,}"),
        ("nDCG", "-" if attribution.score is None else f"{attribution.score:.4f}"),
        ("Threshold", f"{attribution.threshold:g}"),
    ]
    return "".join(
        [
            _head(title),
            f"<h1>{_e(title)}</h1>",
            '<p class="sub">Model monitor report: feature attribution drift of the window against the baseline.</p>',
            '<dl class="facts">',
            *(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts),
            "</dl>",
            _attribution_section(attribution),
            "</body></html>\n",
        ]
    )


def _head(title: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>"
    )


def _attribution_section(attribution: AttributionResult) -> str:
    parts = [
        "<h2>Feature attribution</h2>",
        f"<p>{_status_badge(attribution.status)} {_e(attribution.message)}</p>",
        "<p>Mean |SHAP| per feature on the baseline and in the window, features in the baseline's "
        "order of importance. The nDCG score compares the window's order with the baseline's "
        f"(1 is the same order); below {attribution.threshold:g} is a feature attribution drift.</p>",
    ]
    parts += [f"<p>{_e(v['constraint_check_type'])}: {_e(v['description'])}</p>" for v in attribution.violations]
    if not attribution.baseline:
        return "".join(parts)
    base = sorted(attribution.baseline, key=lambda n: -attribution.baseline[n])
    now_order = sorted(attribution.window, key=lambda n: -attribution.window[n])
    now_rank = {name: i + 1 for i, name in enumerate(now_order)}
    names = base + [n for n in now_order if n not in attribution.baseline]
    top = max([*attribution.baseline.values(), *attribution.window.values(), 1e-12])
    rows = []
    for i, name in enumerate(names):
        was, now = attribution.baseline.get(name, 0.0), attribution.window.get(name, 0.0)
        rows.append(
            f"<tr><td>{_e(name)}</td>"
            f'<td class="num">{i + 1 if name in attribution.baseline else "-"}</td>'
            f'<td class="num">{now_rank.get(name, "-")}</td>'
            f'<td class="num">{was:.4g}</td><td class="num">{now:.4g}</td>'
            f"<td>{_bar(was / top, _BASELINE_COLOUR)}{_bar(now / top, _WINDOW_COLOUR)}</td></tr>"
        )
    head = (
        "<thead><tr><th>Feature</th><th>Baseline rank</th><th>Window rank</th><th>Baseline</th>"
        "<th>Window</th><th>Mean |SHAP|</th></tr></thead>"
    )
    parts.append(f'<table class="attribution">{head}<tbody>{"".join(rows)}</tbody></table>')
    return "".join(parts)


def _bar(share: float, colour: str) -> str:
    width = max(0.0, min(1.0, share)) * 100
    return f'<span class="bar" style="width:{width:.1f}%;background:{colour}"></span>'


def _violations_table(violations: Sequence[Violation]) -> str:
    if not violations:
        return "<p>No violation.</p>"
    rows = "".join(
        f"<tr><td>{_e(v.feature_name)}</td><td>{_e(v.constraint_check_type)}</td><td>{_e(v.description)}</td></tr>"
        for v in violations
    )
    head = "<thead><tr><th>Feature</th><th>Check</th><th>Description</th></tr></thead>"
    return f"<table>{head}<tbody>{rows}</tbody></table>"


def _status_badge(status: str) -> str:
    css = {"Completed": "pass", "CompletedWithViolations": "violation"}.get(status, "skipped")
    return f'<span class="badge {css}">{_e(status)}</span>'


def _count(feature: FeatureStatistics | None) -> str:
    if feature is None:
        return "absent"
    return f"{feature.num_present:,} present, {feature.num_missing:,} missing"


def _number(value: float) -> str:
    if 1000 <= abs(value) < 1e12:
        return f"{value:,.0f}"  # amounts: 100,000 rather than 1e+05
    return f"{value:.4g}"


def _short(label: str, limit: int = 28) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "\u2026"


def _e(text: str) -> str:
    return html.escape(str(text), quote=True)
