"""XGBoost's own feature importances as a DataFrame, next to SHAP's global importance."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xgboost as xgb

from strongroom.core.errors import InvalidInput

IMPORTANCE_TYPES = ("gain", "weight", "cover", "total_gain", "total_cover")


def xgboost_importance(booster: xgb.Booster, types: tuple[str, ...] = IMPORTANCE_TYPES) -> pd.DataFrame:
    """XGBoost's split-based importances for every feature, by descending gain.

    ``weight`` counts the splits on a feature; ``gain`` is the average loss reduction of those
    splits and ``cover`` the average number of training rows they route (``total_*`` are the sums).
    Features never split on get 0. Unlike SHAP, these describe the trees, not predictions on data,
    and are known to be inconsistent across models; they are shown for comparison.

    Raises:
        InvalidInput: an unknown importance type.
    """
    unknown = [t for t in types if t not in IMPORTANCE_TYPES]
    if unknown:
        raise InvalidInput(
            f"unknown importance type(s) {', '.join(unknown)}: use {', '.join(IMPORTANCE_TYPES)}", field="types"
        )
    names = list(booster.feature_names or [f"f{i}" for i in range(booster.num_features())])
    columns = {t: booster.get_score(importance_type=t) for t in types}  # scalar per feature for these types
    frame = pd.DataFrame({t: [_scalar(columns[t].get(n, 0.0)) for n in names] for t in types}, index=names)
    frame.index.name = "feature"
    order = "gain" if "gain" in types else types[0]
    return frame.sort_values(order, ascending=False, kind="stable").astype(np.float64)


def _scalar(value: float | list[float]) -> float:
    return float(value[0]) if isinstance(value, list) else float(value)
