"""Hyperparameter validation happens before any compute and names the offending hyperparameter."""

from __future__ import annotations

from typing import Any

import pytest

from strongroom.algorithms.xgboost.hyperparameters import booster_params, validate
from strongroom.core.errors import InvalidInput


def test_strings_from_hyperparameters_json_are_converted() -> None:
    values = validate(
        {
            "num_round": "50",
            "max_depth": "5",
            "eta": "0.2",
            "objective": "binary:logistic",
            "eval_metric": "auc,logloss",
        }
    )
    assert values == {
        "num_round": 50,
        "max_depth": 5,
        "eta": 0.2,
        "objective": "binary:logistic",
        "eval_metric": ["auc", "logloss"],
    }
    # Exactly what the user set, minus the loop's own names: nothing added (no seed, no seed_per_iteration).
    assert booster_params(values) == {
        "max_depth": 5,
        "eta": 0.2,
        "objective": "binary:logistic",
        "eval_metric": ["auc", "logloss"],
    }


@pytest.mark.parametrize(
    ("hyperparameters", "field", "words"),
    [
        ({"num_round": 10, "max_dept": 3}, "hyperparameters.max_dept", "unknown hyperparameter 'max_dept'"),
        ({"num_round": 10, "eta": "1.5"}, "hyperparameters.eta", "[0, 1]"),
        ({"num_round": 10, "subsample": 0}, "hyperparameters.subsample", "(0, 1]"),
        ({"num_round": 10, "max_depth": "deep"}, "hyperparameters.max_depth", "an integer"),
        ({"num_round": 10, "max_depth": 2.5}, "hyperparameters.max_depth", "an integer"),
        ({"num_round": 0}, "hyperparameters.num_round", "[1, 100000]"),
        ({"eta": 0.1}, "hyperparameters.num_round", "required"),
        ({"num_round": 10, "objective": "binary:magic"}, "hyperparameters.objective", "binary:logistic"),
        ({"num_round": 10, "eval_metric": "auc,accuracy"}, "hyperparameters.eval_metric", "auc"),
        ({"num_round": 10, "objective": "multi:softmax"}, "hyperparameters.num_class", "num_class"),
        ({"num_round": 10, "num_class": 3}, "hyperparameters.num_class", "multi:softmax"),
        ({"num_round": 10, "gamma": -1}, "hyperparameters.gamma", "[0, ∞)"),
        ({"num_round": 10, "seed": "nan"}, "hyperparameters.seed", "an integer"),
        ({"num_round": 10, "tree_method": "gpu_hist"}, "hyperparameters.tree_method", "hist"),
    ],
)
def test_invalid_hyperparameters(hyperparameters: dict[str, Any], field: str, words: str) -> None:
    with pytest.raises(InvalidInput) as err:
        validate(hyperparameters)
    assert err.value.field == field
    assert words in err.value.detail


def test_allowed_range_travels_in_the_problem() -> None:
    with pytest.raises(InvalidInput) as err:
        validate({"num_round": 10, "eta": 7})
    problem = err.value.to_problem()
    assert problem["field"] == "hyperparameters.eta"
    assert problem["allowed"] == "a number in [0, 1]"
