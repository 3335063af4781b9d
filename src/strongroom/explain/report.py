"""The explainability report (one self-contained HTML file) and ``analysis.json``.

The HTML has no scripts and loads nothing: styles are inline, plots are embedded as base64 PNG
``data:`` URIs, and a Content-Security-Policy forbids every other source, so it can be opened
from a bucket, mailed, or archived as evidence and will render the same offline.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any, BinaryIO

import pandas as pd

from strongroom.explain import plots
from strongroom.explain.models import LABEL_PLACEHOLDER, GlobalExplanation

CONTENT_SECURITY_POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem auto;max-width:1000px;
color:#1d2430;padding:0 1rem;line-height:1.45}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #dde3ea}
.sub{color:#5a6472;margin-top:0}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1.2rem}dl.facts dt{color:#5a6472}
dl.facts dd{margin:0}
.badge{display:inline-block;padding:.05rem .5rem;border-radius:.6rem;font-size:.85rem;font-weight:600}
.exact{background:#e3f4e8;color:#17642f}.approximate{background:#fdf0d9;color:#8a5300}
.note{background:#fdf0d9;border-left:4px solid #e0a030;padding:.6rem .9rem}
table{border-collapse:collapse;width:100%;font-size:.92rem}th,td{padding:.3rem .6rem;text-align:right}
th{background:#f1f4f8;border-bottom:1px solid #cfd6df}td{border-bottom:1px solid #edf0f4}
th:nth-child(2),td:nth-child(2){text-align:left}
figure{margin:1.2rem 0}figure img{max-width:100%;height:auto;border:1px solid #edf0f4}
figcaption{color:#5a6472;font-size:.9rem;margin-top:.3rem}
"""

_CAPTIONS = MappingProxyType(
    {
        "bar": (
            "Global importance. Each bar is a feature's mean |SHAP value|: how far, on average, it moves a "
            "prediction away from the base value, in either direction. Longer bars matter more to this model on "
            "this data."
        ),
        "beeswarm": (
            "Every dot is one row. Its position is the feature's SHAP value for that row (right pushes towards "
            "the positive class, left away from it); its colour is the feature's value (red high, blue low). A "
            'red cluster on the right reads "high values of this feature raise the prediction".'
        ),
        "importance": (
            "XGBoost's own split importance (average gain of the splits on each feature). It describes the trees, "
            "not the predictions, and can rank features differently from SHAP; it is shown for comparison."
        ),
        "dependence": (
            "How the model's output depends on {feature}: the feature's value across, its SHAP value up. A step or "
            "slope shows the effect; vertical spread at one value comes from interactions, coloured by the "
            "feature that interacts most."
        ),
    }
)


@dataclass(frozen=True)
class ReportFigure:
    """One plot of the report: an id, a title, PNG bytes and a caption saying how to read it."""

    key: str
    title: str
    png: bytes
    caption: str


def analysis_document(explanation: GlobalExplanation, label: str = LABEL_PLACEHOLDER) -> dict[str, Any]:
    """The ``analysis.json`` document (see :meth:`GlobalExplanation.to_analysis`)."""
    return explanation.to_analysis(label)


def write_analysis(
    explanation: GlobalExplanation, target: str | Path | BinaryIO, label: str = LABEL_PLACEHOLDER
) -> None:
    """Write ``analysis.json`` (UTF-8, indented) to a path or a binary file object."""
    data = (json.dumps(analysis_document(explanation, label), indent=2) + "\n").encode()
    _write(data, target)


def report_figures(
    explanation: GlobalExplanation,
    importance: pd.DataFrame | None = None,
    dependence: int | list[str] = 3,
    max_display: int = 15,
) -> list[ReportFigure]:
    """Render the report's plots: summary bar, beeswarm (when a row sample exists), XGBoost importance
    (when given) and dependence plots for the top ``dependence`` features (or the named ones)."""
    figures = [
        ReportFigure(
            "bar",
            "Global feature importance (mean |SHAP|)",
            plots.summary_bar_png(explanation, max_display),
            _CAPTIONS["bar"],
        )
    ]
    has_rows = explanation.sample is not None and explanation.sample.data is not None and len(explanation.sample) > 0
    if has_rows:
        figures.append(
            ReportFigure(
                "beeswarm",
                "SHAP values per row (beeswarm)",
                plots.beeswarm_png(explanation, max_display),
                _CAPTIONS["beeswarm"],
            )
        )
    if importance is not None and "gain" in importance.columns:
        figures.append(
            ReportFigure(
                "importance",
                "XGBoost feature importance (gain)",
                plots.importance_png(importance, "gain", max_display),
                _CAPTIONS["importance"],
            )
        )
    if has_rows:
        names = list(explanation.importance().index[:dependence]) if isinstance(dependence, int) else dependence
        for name in names:
            figures.append(
                ReportFigure(
                    f"dependence-{name}",
                    f"Dependence plot: {name}",
                    plots.dependence_png(explanation, str(name)),
                    _CAPTIONS["dependence"].format(feature=name),
                )
            )
    return figures


def build_report(
    explanation: GlobalExplanation,
    *,
    title: str = "Explainability report",
    importance: pd.DataFrame | None = None,
    details: Mapping[str, str] | None = None,
    figures: list[ReportFigure] | None = None,
    generated_at: datetime | None = None,
) -> str:
    """The report as one self-contained HTML document.

    Args:
        explanation: the global explanation (its row sample feeds the beeswarm and dependence plots).
        title: the page title.
        importance: XGBoost importances (:func:`xgboost_importance`) to plot and tabulate, if any.
        details: extra facts shown at the top (model, dataset, job, commit...), escaped.
        figures: plots to embed; rendered with :func:`report_figures` when not given.
        generated_at: the time stamped on the report (default: now, UTC).
    """
    figures = report_figures(explanation, importance) if figures is None else figures
    when = (generated_at or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M:%S %Z")
    kind = "exact" if explanation.exact else "approximate"
    facts: dict[str, str] = dict(details or {})
    facts.update(
        {
            "Method": explanation.method.label,
            "Explained output": explanation.output,
            "Base value (expected output)": f"{explanation.base_value:.6g}",
            "Rows explained": f"{explanation.row_count:,}",
            "Features": str(len(explanation.mean_abs)),
            "Rows in the plots' sample": f"{len(explanation.sample) if explanation.sample is not None else 0:,}",
            "Generated": when,
        }
    )
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>",
        f'<h1>{_e(title)} <span class="badge {kind}" id="method-kind">{kind}</span></h1>',
        '<p class="sub">SHAP feature attributions: how much each feature moved each prediction away from the '
        "base value.</p>",
        '<dl class="facts">' + "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in facts.items()) + "</dl>",
    ]
    if not explanation.exact:
        parts.append(
            '<p class="note">These values are <strong>approximate</strong>: they were estimated by sampling and '
            "carry sampling error. Small differences between features may not be meaningful.</p>"
        )
    parts.append('<h2 id="analysis">Global SHAP values</h2>')
    parts.append(_table(explanation, importance))
    parts.append('<h2 id="plots">Plots</h2>')
    for figure in figures:
        encoded = base64.b64encode(figure.png).decode("ascii")
        parts.append(
            f'<figure id="fig-{_e(figure.key)}"><h3>{_e(figure.title)}</h3>'
            f'<img alt="{_e(figure.title)}" src="data:image/png;base64,{encoded}">'
            f"<figcaption>{_e(figure.caption)}</figcaption></figure>"
        )
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_report(document: str, target: str | Path | BinaryIO) -> None:
    """Write the HTML report (UTF-8) to a path or a binary file object."""
    _write(document.encode("utf-8"), target)


def _table(explanation: GlobalExplanation, importance: pd.DataFrame | None) -> str:
    ranked = explanation.importance()
    extra = [c for c in ("gain", "weight", "cover") if importance is not None and c in importance.columns]
    head = "".join(
        f"<th>{_e(h)}</th>"
        for h in ["Rank", "Feature", "Mean |SHAP|", "Share", "Mean SHAP", *[f"XGBoost {c}" for c in extra]]
    )
    rows = []
    for feature, row in ranked.iterrows():
        cells = [
            str(int(row["rank"])),
            _e(str(feature)),
            f"{row['mean_abs_shap']:.6f}",
            f"{row['share']:.1%}",
            f"{row['mean_shap']:+.6f}",
        ]
        for column in extra:
            assert importance is not None
            value = importance[column].get(feature, 0.0)
            cells.append(f"{float(value):,.4g}")
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return f'<table id="analysis-table"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _write(data: bytes, target: str | Path | BinaryIO) -> None:
    if isinstance(target, str | Path):
        Path(target).write_bytes(data)
    else:
        target.write(data)
