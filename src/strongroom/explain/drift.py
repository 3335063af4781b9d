"""Feature-attribution drift: has the model started relying on different features?

Two global attributions (mean |SHAP| per feature: a baseline, e.g. on training data, and a
current one, e.g. on captured traffic) are compared with nDCG, as the managed model monitor's
feature attribution drift check does: rank the features by their current attribution, score that
ranking with the baseline attributions as gains (discounted by ``log2(position + 1)``), and divide
by the best possible score, the baseline's own ranking. 1.0 means the same order; a drop below
the threshold (default 0.9) is a violation, reported in the monitor's ``constraint_violations.json``
shape.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

import numpy as np
import pandas as pd

from strongroom.core.errors import InvalidInput
from strongroom.explain.models import LABEL_PLACEHOLDER, GlobalExplanation

DEFAULT_THRESHOLD = 0.9
CHECK_TYPE = "feature_attribution_drift_check"
VIOLATIONS_VERSION = "1.0"

Attributions: TypeAlias = Mapping[str, float] | pd.Series | GlobalExplanation | Mapping[str, Any]


@dataclass(frozen=True)
class AttributionDrift:
    """The outcome of one feature-attribution drift check."""

    score: float
    threshold: float
    label: str
    baseline_ranking: list[str]
    current_ranking: list[str]
    missing_features: list[str]
    metric_name: str = "shap"

    @property
    def violated(self) -> bool:
        """True when the nDCG score is below the threshold."""
        return self.score < self.threshold

    def violations(self) -> list[dict[str, str]]:
        """The violation entries (empty when the check passed)."""
        if not self.violated:
            return []
        return [
            {
                "label": self.label,
                "metric_name": self.metric_name,
                "constraint_check_type": CHECK_TYPE,
                "description": (
                    f"Feature attribution drift: nDCG {self.score:.6f} is below the threshold {self.threshold}; "
                    f"baseline top features {', '.join(self.baseline_ranking[:3])}, "
                    f"now {', '.join(self.current_ranking[:3])}"
                ),
            }
        ]

    def to_violations_document(self) -> dict[str, Any]:
        """``constraint_violations.json``: ``{"version": "1.0", "violations": [...]}``."""
        return {"version": VIOLATIONS_VERSION, "violations": self.violations()}


def attribution_ndcg(baseline: Attributions, current: Attributions, label: str | None = None) -> float:
    """nDCG of the current attribution ranking, with the baseline attributions as gains (0..1)."""
    return feature_attribution_drift(baseline, current, label=label or LABEL_PLACEHOLDER).score


def feature_attribution_drift(
    baseline: Attributions,
    current: Attributions,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    label: str = LABEL_PLACEHOLDER,
) -> AttributionDrift:
    """Compare two global attributions and say whether they drifted.

    Args:
        baseline, current: global attributions as a ``{feature: mean |SHAP|}`` mapping, a Series, a
            :class:`GlobalExplanation`, or an ``analysis.json`` document (its ``global_shap_values``
            for ``label``).
        threshold: nDCG below this is a violation.
        label: the label the attributions explain (the document's key, ``label0`` by default).

    A feature missing from ``current`` counts as attribution 0 there (and is listed).

    Raises:
        InvalidInput: no attributions, negative or non-finite ones, a baseline of all zeros, or a
            threshold outside 0..1.
    """
    if not 0.0 <= threshold <= 1.0:
        raise InvalidInput("threshold must be between 0 and 1", field="threshold")
    base = _attributions(baseline, label, "baseline")
    now = _attributions(current, label, "current")
    features = list(base.index) + [f for f in now.index if f not in base.index]
    gains = base.reindex(features, fill_value=0.0).to_numpy(dtype=np.float64)
    scores = now.reindex(features, fill_value=0.0).to_numpy(dtype=np.float64)
    if gains.sum() <= 0:
        raise InvalidInput("the baseline attributions are all zero: nothing to compare", field="baseline")
    score = _ndcg(gains, scores)
    return AttributionDrift(
        score=score,
        threshold=threshold,
        label=label,
        baseline_ranking=list(base.sort_values(ascending=False, kind="stable").index),
        current_ranking=list(now.sort_values(ascending=False, kind="stable").index),
        missing_features=[f for f in base.index if f not in now.index],
    )


def _ndcg(gains: np.ndarray, scores: np.ndarray) -> float:
    # scikit-learn's ndcg_score: linear gains, log2(i + 1) discount, ties in `scores` averaged.
    from sklearn.metrics import ndcg_score

    if len(gains) == 1:
        return 1.0
    return float(ndcg_score(gains[np.newaxis, :], scores[np.newaxis, :]))


def _attributions(source: Attributions, label: str, field: str) -> pd.Series:
    if isinstance(source, GlobalExplanation):
        series = source.mean_abs.astype(np.float64)
    elif isinstance(source, pd.Series):
        series = source.astype(np.float64)
    elif isinstance(source, Mapping) and "explanations" in source:
        series = pd.Series(_from_analysis(source, label, field), dtype=np.float64)
    elif isinstance(source, Mapping):
        try:
            series = pd.Series({str(k): float(v) for k, v in source.items()}, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"{field} attributions must map feature names to numbers", field=field) from exc
    else:
        raise InvalidInput(
            f"{field} must be a mapping of feature to mean |SHAP|, a Series, a GlobalExplanation or an "
            "analysis.json document",
            field=field,
        )
    if series.empty:
        raise InvalidInput(f"{field} has no feature attributions", field=field)
    if not all(math.isfinite(v) and v >= 0 for v in series.to_numpy()):
        raise InvalidInput(f"{field} attributions must be finite and non-negative (mean |SHAP|)", field=field)
    series.index = [str(i) for i in series.index]
    return series


def _from_analysis(document: Mapping[str, Any], label: str, field: str) -> Mapping[str, float]:
    explanations = document.get("explanations")
    if not isinstance(explanations, Mapping) or not explanations:
        raise InvalidInput(f"{field} analysis document has no explanations", field=field)
    for method in explanations.values():
        if isinstance(method, Mapping) and isinstance(method.get(label), Mapping):
            values = method[label].get("global_shap_values")
            if isinstance(values, Mapping):
                return values
    raise InvalidInput(f"{field} analysis document has no global_shap_values for label {label!r}", field=field)
