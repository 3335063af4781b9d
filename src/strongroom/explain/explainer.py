"""``Explainer``: the one object a notebook or the SDK needs to explain a model."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO

import pandas as pd
import xgboost as xgb

from strongroom.core.errors import InvalidInput
from strongroom.explain import report as reports
from strongroom.explain import stream
from strongroom.explain.compute import MethodChoice, as_booster, explain
from strongroom.explain.importance import IMPORTANCE_TYPES, xgboost_importance
from strongroom.explain.model import load_booster_from_tar, name_features
from strongroom.explain.models import Explanation, GlobalExplanation


class Explainer:
    """Explain one model: per-row and global SHAP values, importances, plots' data, reports.

    Example::

        explainer = Explainer.from_model_tar("model.tar.gz")
        explanation = explainer.explain(test_frame)          # exact TreeSHAP, per row
        explanation.global_importance()                      # mean |SHAP| per feature
        explainer.write_outputs(explanation, "out/")         # analysis.json + report.html

    Args:
        model: an XGBoost booster or scikit-learn wrapper (exact, native TreeSHAP), another tree
            ensemble (exact, shap.TreeExplainer), or any model for ``method="permutation"``/``"kernel"``.
        method: see :func:`strongroom.explain.compute.explain`.
        background: background rows for the approximate methods.
        class_index: the class to explain for multi-class models.
        n_threads: XGBoost threads (default: all cores).
    """

    def __init__(
        self,
        model: Any,
        *,
        method: MethodChoice = "auto",
        background: pd.DataFrame | None = None,
        class_index: int | None = None,
        n_threads: int | None = None,
    ) -> None:
        self.model = model
        self.method: MethodChoice = method
        self.background = background
        self.class_index = class_index
        self.n_threads = n_threads

    @classmethod
    def from_model_tar(
        cls,
        source: str | Path | BinaryIO,
        member: str | None = None,
        *,
        feature_names: Sequence[str] | str | None = None,
        **options: Any,
    ) -> Explainer:
        """An explainer for the booster in a training job's ``model.tar.gz`` (checked, never unpickled).

        ``feature_names`` names the features of a model trained on headerless data (see
        :func:`strongroom.explain.model.name_features`), so headerless files can be explained.
        """
        return cls(name_features(load_booster_from_tar(source, member), feature_names), **options)

    @property
    def booster(self) -> xgb.Booster | None:
        """The XGBoost booster, when the model is an XGBoost model."""
        return as_booster(self.model)

    def explain(self, X: pd.DataFrame, *, interactions: bool = False) -> Explanation:
        """SHAP values for every row of ``X`` (see :func:`strongroom.explain.compute.explain`)."""
        return explain(
            self.model,
            X,
            method=self.method,
            interactions=interactions,
            background=self.background,
            class_index=self.class_index,
            n_threads=self.n_threads,
        )

    def shap_values(self, X: pd.DataFrame) -> pd.DataFrame:
        """Per-row contributions as a DataFrame (rows of ``X`` by features)."""
        return self.explain(X).values

    def global_importance(self, X: pd.DataFrame) -> pd.DataFrame:
        """Mean |SHAP| and mean SHAP per feature on ``X``, most important first."""
        return self.explain(X).global_importance()

    def importance(self, types: tuple[str, ...] = IMPORTANCE_TYPES) -> pd.DataFrame:
        """XGBoost's own importances (gain, weight, cover, ...) per feature.

        Raises:
            InvalidInput: the model is not an XGBoost model.
        """
        return xgboost_importance(self._require_booster(), types)

    def explain_file(
        self,
        source: str | Path | pd.DataFrame,
        *,
        chunk_rows: int = stream.DEFAULT_CHUNK_ROWS,
        sample_rows: int = stream.DEFAULT_SAMPLE_ROWS,
        seed: int = 0,
        contributions_to: str | Path | BinaryIO | None = None,
    ) -> GlobalExplanation:
        """Exact global SHAP over a CSV/Parquet dataset of any size, streamed in chunks (XGBoost models)."""
        return stream.explain_stream(
            self._require_booster(),
            source,
            chunk_rows=chunk_rows,
            sample_rows=sample_rows,
            seed=seed,
            n_threads=self.n_threads,
            contributions_to=contributions_to,
        )

    def explain_distributed(self, source: str | Path, client: Any, **options: Any) -> GlobalExplanation:
        """Like :meth:`explain_file`, with the rows split across a Dask cluster's workers."""
        return stream.explain_distributed(self._require_booster(), source, client, **options)

    def report(
        self,
        explanation: Explanation | GlobalExplanation,
        *,
        title: str = "Explainability report",
        details: dict[str, str] | None = None,
    ) -> str:
        """The self-contained HTML report for an explanation (with XGBoost importances when available)."""
        overview = explanation if isinstance(explanation, GlobalExplanation) else explanation.to_global()
        booster = self.booster
        importance = xgboost_importance(booster) if booster is not None else None
        return reports.build_report(overview, title=title, importance=importance, details=details)

    def write_outputs(
        self,
        explanation: Explanation | GlobalExplanation,
        directory: str | Path,
        *,
        title: str = "Explainability report",
        details: dict[str, str] | None = None,
    ) -> dict[str, Path]:
        """Write ``analysis.json`` and ``report.html`` into ``directory`` (created if needed)."""
        overview = explanation if isinstance(explanation, GlobalExplanation) else explanation.to_global()
        target = Path(directory)
        target.mkdir(parents=True, exist_ok=True)
        paths = {"analysis": target / "analysis.json", "report": target / "report.html"}
        reports.write_analysis(overview, paths["analysis"])
        reports.write_report(self.report(overview, title=title, details=details), paths["report"])
        return paths

    def _require_booster(self) -> xgb.Booster:
        booster = self.booster
        if booster is None:
            raise InvalidInput(
                f"this needs an XGBoost model, not {type(self.model).__name__}; use explain() on a DataFrame",
                field="model",
            )
        return booster
