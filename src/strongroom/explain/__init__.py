"""Explainability: exact SHAP for tree models, plots, reports, and feature-attribution drift.

Start with :class:`Explainer`; the functions below are what it is built on.
"""

from strongroom.explain.compute import explain, explain_approximate, explain_booster
from strongroom.explain.drift import AttributionDrift, attribution_ndcg, feature_attribution_drift
from strongroom.explain.explainer import Explainer
from strongroom.explain.importance import xgboost_importance
from strongroom.explain.model import booster_bytes, load_booster, load_booster_from_tar, name_features
from strongroom.explain.models import Explanation, GlobalExplanation, Method
from strongroom.explain.plots import beeswarm_png, dependence_png, importance_png, summary_bar_png
from strongroom.explain.report import build_report, write_analysis, write_report
from strongroom.explain.stream import explain_distributed, explain_stream, local_cluster

__all__ = [
    "AttributionDrift",
    "Explainer",
    "Explanation",
    "GlobalExplanation",
    "Method",
    "attribution_ndcg",
    "beeswarm_png",
    "booster_bytes",
    "build_report",
    "dependence_png",
    "explain",
    "explain_approximate",
    "explain_booster",
    "explain_distributed",
    "explain_stream",
    "feature_attribution_drift",
    "importance_png",
    "load_booster",
    "load_booster_from_tar",
    "local_cluster",
    "name_features",
    "summary_bar_png",
    "write_analysis",
    "write_report",
    "xgboost_importance",
]
