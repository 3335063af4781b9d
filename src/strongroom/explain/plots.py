"""Explanation plots as PNG bytes.

Every plot is drawn on its own ``matplotlib.figure.Figure`` with the Agg canvas: no pyplot
state, no window, nothing shown, safe in a headless sandbox and in a notebook alike (the notebook
displays the PNG, e.g. ``IPython.display.Image(png)``). Summary bar and beeswarm plots are shap's
own; dependence and importance plots are drawn here.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from strongroom.core.errors import InvalidInput
from strongroom.explain.models import Explanation, GlobalExplanation

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DPI = 100


def summary_bar_png(explanation: Explanation | GlobalExplanation, max_display: int = 15) -> bytes:
    """Global importance: mean |SHAP| per feature as horizontal bars (shap's bar plot)."""
    import shap

    overview = explanation if isinstance(explanation, GlobalExplanation) else explanation.to_global()
    values = shap.Explanation(values=overview.mean_abs.to_numpy(dtype=np.float64), feature_names=overview.feature_names)

    def draw(ax: Axes) -> None:
        shap.plots.bar(values, max_display=max_display, show=False, ax=ax)
        ax.set_xlabel(f"mean(|SHAP value|) over {overview.row_count:,} rows ({_output(overview.output)})")

    return _render(draw, (8.0, 0.42 * min(max_display, len(overview.mean_abs)) + 1.6))


def beeswarm_png(explanation: Explanation | GlobalExplanation, max_display: int = 15) -> bytes:
    """One dot per row and feature: where each row's SHAP value lies, coloured by the feature value.

    Raises:
        InvalidInput: the explanation has no row sample with feature values.
    """
    import shap

    rows = _rows(explanation)
    assert rows.data is not None  # checked by _rows
    values = shap.Explanation(
        values=rows.values.to_numpy(dtype=np.float64),
        base_values=np.full(len(rows), rows.base_value),
        data=rows.data.to_numpy(dtype=np.float64),
        feature_names=rows.feature_names,
    )

    def draw(ax: Axes) -> None:
        shap.plots.beeswarm(values, max_display=max_display, show=False, ax=ax, plot_size=None)
        ax.set_xlabel(f"SHAP value ({_output(rows.output)}), {len(rows):,} rows")

    return _render(draw, (8.5, 0.42 * min(max_display, len(rows.feature_names)) + 1.6))


def dependence_png(
    explanation: Explanation | GlobalExplanation, feature: str, interaction: str | None = "auto"
) -> bytes:
    """A feature's value against its SHAP value, one dot per row, coloured by an interacting feature.

    Args:
        explanation: rows with feature values (an explanation, or a global one's sample).
        feature: the feature to plot.
        interaction: the feature to colour by; ``"auto"`` picks the one that seems to interact most
            (shap's ``approximate_interactions``), ``None`` plots in one colour.

    Raises:
        InvalidInput: unknown feature, or no row sample with feature values.
    """
    import shap

    rows = _rows(explanation)
    assert rows.data is not None
    names = rows.feature_names
    if feature not in names:
        raise InvalidInput(f"unknown feature {feature!r}", field="feature")
    x = rows.data[feature].to_numpy(dtype=np.float64)
    y = rows.values[feature].to_numpy(dtype=np.float64)
    colour_by: str | None = None
    if interaction == "auto" and len(names) > 1 and len(rows) > 1:
        order = shap.utils.approximate_interactions(
            names.index(feature), rows.values.to_numpy(dtype=np.float64), rows.data.to_numpy(dtype=np.float64)
        )
        colour_by = next((names[i] for i in order if names[i] != feature), None)
    elif interaction not in (None, "auto"):
        if interaction not in names:
            raise InvalidInput(f"unknown interaction feature {interaction!r}", field="interaction")
        colour_by = interaction

    def draw(ax: Axes) -> None:
        jitter = _jitter(x)
        if colour_by is None:
            ax.scatter(x + jitter, y, s=10, color="#1E88E5", alpha=0.8, linewidth=0)
        else:
            assert rows.data is not None
            c = rows.data[colour_by].to_numpy(dtype=np.float64)
            low, high = np.nanpercentile(c, [5, 95]) if np.isfinite(c).any() else (0.0, 1.0)
            c = np.clip(c, low, high)  # outliers take the end colours instead of the "out of range" grey
            points = ax.scatter(
                x + jitter, y, s=10, c=c, cmap=shap.plots.colors.red_blue, vmin=low, vmax=high, alpha=0.8, linewidth=0
            )
            bar = ax.get_figure().colorbar(points, ax=ax, aspect=50)  # type: ignore[union-attr]
            bar.set_label(colour_by)
            bar.outline.set_visible(False)
        ax.axhline(0, color="#999999", linewidth=0.8, zorder=-1)
        ax.set_xlabel(feature)
        ax.set_ylabel(f"SHAP value for {feature}")
        ax.set_title(f"Dependence of the model output on {feature}", fontsize=11)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)

    return _render(draw, (7.0, 4.6))


def importance_png(importance: pd.DataFrame, importance_type: str = "gain", max_display: int = 15) -> bytes:
    """Feature importance bars (the workshop's ``plot_features``) from :func:`xgboost_importance`
    or from a SHAP importance frame (column ``mean_abs_shap``).

    Raises:
        InvalidInput: ``importance`` has no column ``importance_type``.
    """
    if importance_type not in importance.columns:
        raise InvalidInput(
            f"no importance column {importance_type!r}: have {', '.join(map(str, importance.columns))}",
            field="importance_type",
        )
    top = importance[importance_type].astype(np.float64).sort_values(ascending=False).head(max_display)

    def draw(ax: Axes) -> None:
        positions = np.arange(len(top))[::-1]
        ax.barh(positions, top.to_numpy(), color="#1E88E5", height=0.7)
        ax.set_yticks(positions, [str(i) for i in top.index])
        for y, value in zip(positions, top.to_numpy(), strict=True):
            ax.text(value, y, f" {value:,.3g}", va="center", fontsize=9, color="#333333")
        ax.set_xlabel(importance_type.replace("_", " "))
        ax.set_title(f"Feature importance ({importance_type.replace('_', ' ')})", fontsize=11)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        ax.margins(x=0.15)

    return _render(draw, (8.0, 0.38 * len(top) + 1.4))


def write_png(png: bytes, path: str | Path) -> Path:
    """Write PNG bytes to ``path`` and return it."""
    target = Path(path)
    target.write_bytes(png)
    return target


def _rows(explanation: Explanation | GlobalExplanation) -> Explanation:
    rows = explanation.sample if isinstance(explanation, GlobalExplanation) else explanation
    if rows is None or rows.data is None or len(rows) == 0:
        raise InvalidInput(
            "this plot needs explained rows with their feature values; explain a DataFrame, or keep a sample "
            "(sample_rows > 0) when explaining a file",
            field="explanation",
        )
    return rows


def _jitter(x: np.ndarray) -> np.ndarray:
    """A little horizontal noise for discrete features (e.g. PAY_0) so the dots do not stack."""
    finite = x[np.isfinite(x)]
    distinct = np.unique(finite)
    if len(finite) == 0 or len(distinct) > 20:
        return np.zeros_like(x)
    spacing = float(np.min(np.diff(distinct))) if len(distinct) > 1 else 1.0
    return np.random.default_rng(0).uniform(-0.15 * spacing, 0.15 * spacing, len(x))


def _output(output: str) -> str:
    return output.split(" (")[0]


def _render(draw: Callable[[Axes], None], size: tuple[float, float]) -> bytes:
    figure = Figure(figsize=size, dpi=DPI)
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    draw(ax)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight", metadata={"Software": None})
    return buffer.getvalue()
