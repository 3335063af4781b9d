"""Feature-attribution drift as a monitor: does the model now rely on different features?

The baseline is each feature's mean |SHAP| on the training data (an explainability job's
``analysis.json``, a :class:`~strongroom.explain.models.GlobalExplanation` or a plain mapping). A
window is the per-row contributions of the requests it holds, as XGBoost's
``predict(..., pred_contribs=True)`` returns them (and the endpoint's explanations carry): one row
per request, one column per feature, plus the bias as the last column. Their mean |value| per
feature is the window's attribution, and the two are compared with nDCG
(:func:`strongroom.explain.drift.feature_attribution_drift`, the same function as the explain
domain's drift check): rank the features by the window's attribution, score that order with the
baseline attributions as gains, divide by the baseline's own order's score. 1.0 means the same
order; below ``threshold`` (default :data:`DEFAULT_THRESHOLD`, 0.9, as the managed service's
monitor uses) is a ``feature_attribution_drift_check`` violation.

The window's sums are kept by an :class:`AttributionAccumulator`, so a window streams in chunks
and partial windows merge; memory does not grow with its rows.

This module imports the explain domain (and so SHAP and XGBoost); ``strongroom.monitor`` does not
import it, so data-quality monitoring stays light.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from strongroom.core.errors import InvalidInput
from strongroom.explain.drift import (
    CHECK_TYPE,
    DEFAULT_THRESHOLD,
    AttributionDrift,
    Attributions,
    _attributions,
    feature_attribution_drift,
)
from strongroom.explain.models import LABEL_PLACEHOLDER

__all__ = [
    "CHECK_TYPE",
    "DEFAULT_THRESHOLD",
    "AttributionAccumulator",
    "AttributionResult",
    "check_attribution_drift",
]

Status = Literal["Completed", "CompletedWithViolations", "NoData"]


class AttributionAccumulator:
    """Running sums of |contribution| per feature over a window's rows; merge two to combine."""

    def __init__(self, feature_names: Sequence[str]) -> None:
        if not feature_names:
            raise InvalidInput("the model needs at least one feature name", field="feature_names")
        if len(set(feature_names)) != len(feature_names):
            raise InvalidInput("feature names must be unique", field="feature_names")
        self.feature_names = tuple(str(n) for n in feature_names)
        self.rows = 0
        self._sums = np.zeros(len(self.feature_names), dtype=np.float64)

    def update(self, contributions: np.ndarray | pd.DataFrame | Sequence[Sequence[float]]) -> None:
        """Add rows of per-feature contributions: ``n x features``, or ``n x (features + 1)`` with
        the bias last, as ``pred_contribs=True`` gives (the bias is not a feature and is dropped).
        A DataFrame is matched by column name (a ``bias`` column is ignored).

        Raises:
            InvalidInput: another width, not two-dimensional (one output per row is expected: a
                multi-class model's contributions are checked one class at a time), or a value that
                is not finite.
        """
        width = len(self.feature_names)
        if isinstance(contributions, pd.DataFrame):
            missing = [n for n in self.feature_names if n not in contributions.columns]
            if missing:
                raise InvalidInput(f"the contributions have no column for {missing[:5]}", field="contributions")
            values = contributions[list(self.feature_names)].to_numpy(dtype=np.float64)
        else:
            values = np.asarray(contributions, dtype=np.float64)
        if values.ndim != 2:
            raise InvalidInput(
                f"contributions must be rows x features, not an array of shape {values.shape} "
                "(check a multi-class model's contributions one class at a time)",
                field="contributions",
            )
        if values.shape[1] == width + 1:
            values = values[:, :width]
        elif values.shape[1] != width:
            raise InvalidInput(
                f"contributions have {values.shape[1]} columns; the model has {width} features "
                f"(expected {width}, or {width + 1} with the bias last)",
                field="contributions",
            )
        if not np.isfinite(values).all():
            raise InvalidInput("contributions must be finite numbers", field="contributions")
        self._sums += np.abs(values).sum(axis=0)
        self.rows += values.shape[0]

    def merge(self, other: AttributionAccumulator) -> AttributionAccumulator:
        """Fold ``other`` (same features) into this accumulator and return it."""
        if other.feature_names != self.feature_names:
            raise InvalidInput("cannot merge contributions of different features", field="contributions")
        self._sums += other._sums
        self.rows += other.rows
        return self

    def mean_abs(self) -> dict[str, float]:
        """Mean |contribution| per feature (all 0 for an empty window)."""
        means = self._sums / self.rows if self.rows else self._sums
        return {name: float(v) for name, v in zip(self.feature_names, means, strict=True)}


@dataclass(frozen=True)
class AttributionResult:
    """The outcome of one window's feature-attribution drift check.

    ``status`` is ``"NoData"`` for a window without rows (``drift`` is then ``None``),
    ``"CompletedWithViolations"`` when the nDCG score is below the threshold, else ``"Completed"``.
    """

    status: Status
    message: str
    rows: int
    threshold: float
    baseline: Mapping[str, float]
    window: Mapping[str, float]
    drift: AttributionDrift | None

    @property
    def score(self) -> float | None:
        """The nDCG score (``None`` for an empty window)."""
        return None if self.drift is None else self.drift.score

    @property
    def violations(self) -> list[dict[str, str]]:
        """``[{"label", "metric_name", "constraint_check_type", "description"}]``, empty if it passed."""
        return [] if self.drift is None else self.drift.violations()

    def to_json(self) -> dict[str, Any]:
        """``constraint_violations.json`` of the managed service's attribution monitor:
        ``{"version": "1.0", "violations": [...]}``."""
        if self.drift is None:
            return {"version": "1.0", "violations": []}
        return self.drift.to_violations_document()

    def write(self, path: str | Path) -> Path:
        """Write ``constraint_violations.json`` to ``path`` (a file, or a folder to put it in)."""
        target = Path(path)
        if target.is_dir():
            target = target / "constraint_violations.json"
        target.write_text(json.dumps(self.to_json(), indent=2) + "\n")
        return target


def check_attribution_drift(
    baseline: Attributions,
    window: AttributionAccumulator | np.ndarray | pd.DataFrame,
    *,
    feature_names: Sequence[str] | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    label: str = LABEL_PLACEHOLDER,
    window_name: str = "the window",
) -> AttributionResult:
    """Check a window's contributions against the baseline's mean |SHAP|.

    Args:
        baseline: mean |SHAP| per feature: a mapping, a Series, a ``GlobalExplanation`` or an
            ``analysis.json`` document.
        window: the window's contributions (an :class:`AttributionAccumulator`, or rows as
            ``pred_contribs`` gives them, with ``feature_names``, which default to the
            baseline's features in its order).
        threshold: an nDCG below this is a violation (0..1; default 0.9).
        label: the label the attributions explain (``analysis.json``'s key).
        window_name: how the message names the window (for example its time range).

    Raises:
        InvalidInput: unreadable attributions or contributions, or a threshold outside 0..1.
    """
    if not 0.0 <= threshold <= 1.0:
        raise InvalidInput("threshold must be between 0 and 1", field="threshold")
    if isinstance(window, AttributionAccumulator):
        accumulator = window
    else:
        names = list(feature_names) if feature_names is not None else _names(baseline, label)
        accumulator = AttributionAccumulator(names)
        accumulator.update(window)
    if accumulator.rows == 0:
        return AttributionResult(
            "NoData",
            f"no data in {window_name}: no contributions to compare with the baseline",
            0,
            threshold,
            {},
            {},
            None,
        )
    current = accumulator.mean_abs()
    drift = feature_attribution_drift(baseline, current, threshold=threshold, label=label)
    gains = _baseline_series(baseline, label)
    summary = f"nDCG {drift.score:.4f} over {accumulator.rows} rows of {window_name}"
    if drift.violated:
        status: Status = "CompletedWithViolations"
        message = f"feature attribution drift: {summary} is below the threshold {threshold:g}"
    else:
        status = "Completed"
        message = f"no feature attribution drift: {summary}, threshold {threshold:g}"
    return AttributionResult(status, message, accumulator.rows, threshold, gains, current, drift)


def _baseline_series(baseline: Attributions, label: str) -> dict[str, float]:
    # The nDCG function's own reading of the input, so both see the same attributions.
    series = _attributions(baseline, label, "baseline")
    return {str(k): float(v) for k, v in series.items()}


def _names(baseline: Attributions, label: str) -> list[str]:
    return list(_baseline_series(baseline, label))
