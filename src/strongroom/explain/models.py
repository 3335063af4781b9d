"""Plain result objects: per-row explanations and global (dataset-level) explanations."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from strongroom.core.errors import InvalidInput

ANALYSIS_VERSION = "1.0"
LABEL_PLACEHOLDER = "label0"


@dataclass(frozen=True)
class Method:
    """How attributions were computed.

    ``name`` is the key used in ``analysis.json`` (``tree_shap``, ``permutation_shap`` or
    ``kernel_shap``); ``exact`` is False for sampling methods, whose values carry estimation error;
    ``engine`` names the implementation that computed them.
    """

    name: str
    exact: bool
    engine: str

    @property
    def label(self) -> str:
        """A human label, e.g. ``"tree_shap (exact, xgboost pred_contribs)"``."""
        return f"{self.name} ({'exact' if self.exact else 'approximate'}, {self.engine})"


TREE_SHAP_XGBOOST = Method("tree_shap", True, "xgboost pred_contribs")
TREE_SHAP_SHAP = Method("tree_shap", True, "shap.TreeExplainer")


@dataclass(frozen=True)
class Explanation:
    """SHAP values for a set of rows.

    Attributes:
        values: one row per explained row, one column per feature: each feature's contribution.
        base_value: the expected model output (the bias term); ``values`` plus it give the output.
        method: how the values were computed (exact or approximate).
        output: the model output being explained, e.g. ``"margin (log-odds)"`` or ``"probability"``.
        data: the explained rows' feature values (same index and columns as ``values``).
        interactions: SHAP interaction values, shape (rows, features, features), when requested.
    """

    values: pd.DataFrame
    base_value: float
    method: Method
    output: str
    data: pd.DataFrame | None = None
    interactions: np.ndarray | None = field(default=None, repr=False)

    @property
    def feature_names(self) -> list[str]:
        """The features, in model order."""
        return [str(c) for c in self.values.columns]

    @property
    def exact(self) -> bool:
        """True for exact TreeSHAP, False for sampling (approximate) methods."""
        return self.method.exact

    def __len__(self) -> int:
        return len(self.values)

    def predictions(self) -> pd.Series:
        """The explained model output per row: the contributions plus the base value."""
        return self.values.sum(axis=1).astype(np.float64) + self.base_value

    def contributions(self) -> pd.DataFrame:
        """The per-row contributions with a final ``bias`` column, like XGBoost's ``pred_contribs``."""
        frame = self.values.copy()
        frame["bias"] = self.base_value
        return frame

    def global_importance(self) -> pd.DataFrame:
        """Mean |SHAP| (global importance) and mean SHAP per feature, most important first."""
        return self.to_global().importance()

    def interaction_importance(self) -> pd.DataFrame:
        """Mean |SHAP interaction value| for each pair of features (requires ``interactions``)."""
        if self.interactions is None:
            raise InvalidInput("no interaction values here: explain with interactions=True", field="interactions")
        mean_abs = np.abs(self.interactions).mean(axis=0)
        return pd.DataFrame(mean_abs, index=self.feature_names, columns=self.feature_names)

    def to_global(self) -> GlobalExplanation:
        """Aggregate into a :class:`GlobalExplanation` that keeps these rows as its sample."""
        values = self.values.to_numpy(dtype=np.float64)
        return GlobalExplanation(
            mean_abs=pd.Series(np.abs(values).mean(axis=0), index=self.feature_names, name="mean_abs_shap"),
            mean=pd.Series(values.mean(axis=0), index=self.feature_names, name="mean_shap"),
            row_count=len(self.values),
            base_value=self.base_value,
            method=self.method,
            output=self.output,
            sample=self,
        )

    def head(self, n: int) -> Explanation:
        """The first ``n`` rows (a cheap sample for plots)."""
        return self.take(np.arange(min(n, len(self))))

    def take(self, positions: np.ndarray) -> Explanation:
        """The rows at ``positions`` (integer positions, not index labels)."""
        return Explanation(
            values=self.values.iloc[positions],
            base_value=self.base_value,
            method=self.method,
            output=self.output,
            data=None if self.data is None else self.data.iloc[positions],
            interactions=None if self.interactions is None else self.interactions[positions],
        )


@dataclass(frozen=True)
class GlobalExplanation:
    """Dataset-level attributions, possibly computed in a stream or on a cluster.

    Attributes:
        mean_abs: mean |SHAP| per feature: the global importance used by ``analysis.json`` and drift.
        mean: mean signed SHAP per feature (which way a feature pushes on average).
        row_count: rows explained.
        base_value: the expected model output.
        method, output: as in :class:`Explanation`.
        sample: some explained rows (with feature values) for beeswarm and dependence plots.
    """

    mean_abs: pd.Series
    mean: pd.Series
    row_count: int
    base_value: float
    method: Method
    output: str
    sample: Explanation | None = None

    @property
    def feature_names(self) -> list[str]:
        """The features, in model order."""
        return [str(i) for i in self.mean_abs.index]

    @property
    def exact(self) -> bool:
        """True when the attributions are exact (TreeSHAP)."""
        return self.method.exact

    def importance(self) -> pd.DataFrame:
        """Features ranked by mean |SHAP|: columns ``mean_abs_shap``, ``mean_shap``, ``share``, ``rank``."""
        total = float(self.mean_abs.sum())
        frame = pd.DataFrame(
            {
                "mean_abs_shap": self.mean_abs.astype(np.float64),
                "mean_shap": self.mean.astype(np.float64),
                "share": self.mean_abs.astype(np.float64) / total if total > 0 else 0.0,
            }
        )
        frame.index.name = "feature"
        frame = frame.sort_values("mean_abs_shap", ascending=False, kind="stable")
        frame["rank"] = np.arange(1, len(frame) + 1)
        return frame

    def to_analysis(self, label: str = LABEL_PLACEHOLDER) -> dict[str, Any]:
        """The ``analysis.json`` document.

        Its ``explanations`` section has the shape the managed service's explainability jobs
        write (``explanations.<method>.<label>.global_shap_values`` and ``expected_value``), so
        feature-attribution drift checks and existing tooling read it; Strongroom adds the method
        details, the output space, the row count and the mean signed SHAP.
        """
        return {
            "version": ANALYSIS_VERSION,
            "explanations": {
                self.method.name: {
                    label: {
                        "global_shap_values": {k: _number(v) for k, v in self.mean_abs.items()},
                        "expected_value": _number(self.base_value),
                    }
                }
            },
            "method": {"name": self.method.name, "exact": self.method.exact, "engine": self.method.engine},
            "output": self.output,
            "baseline": _number(self.base_value),
            "row_count": int(self.row_count),
            "feature_count": len(self.mean_abs),
            "mean_shap_values": {k: _number(v) for k, v in self.mean.items()},
        }


def _number(value: Any) -> float:
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"attribution {value!r} is not a finite number")
    return number
