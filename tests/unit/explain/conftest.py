"""A small workshop-style XGBoost model on the synthetic credit-default data, shared by the tests."""

from __future__ import annotations

import pandas as pd
import pytest
import xgboost as xgb

from strongroom.demo.data import FEATURES, LABEL, credit_default

WORKSHOP_PARAMS = {
    "objective": "binary:logistic",
    "max_depth": 5,
    "eta": 0.2,
    "gamma": 4,
    "min_child_weight": 6,
    "subsample": 0.8,
    "seed": 0,
    "nthread": 2,
}


@pytest.fixture(scope="session")
def booster() -> xgb.Booster:
    train = credit_default(8000, seed=1)
    return xgb.train(WORKSHOP_PARAMS, xgb.DMatrix(train[FEATURES], label=train[LABEL]), num_boost_round=40)


@pytest.fixture(scope="session")
def rows() -> pd.DataFrame:
    """Rows to explain, label column included (the explainer must ignore it)."""
    return credit_default(2000, seed=2)
