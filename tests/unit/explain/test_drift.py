"""Feature-attribution drift by nDCG, reported in the model monitor's violation shape."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import xgboost as xgb

from strongroom.core.errors import InvalidInput
from strongroom.demo.data import credit_default
from strongroom.explain import attribution_ndcg, explain, feature_attribution_drift

BASELINE = {"SAT score": 0.70, "GPA": 0.50, "Class rank": 0.05}


def dcg(gains: list[float]) -> float:
    return sum(g / math.log2(i + 2) for i, g in enumerate(gains))


def test_same_ranking_is_no_drift() -> None:
    result = feature_attribution_drift(BASELINE, {"SAT score": 0.3, "GPA": 0.2, "Class rank": 0.01})
    assert result.score == pytest.approx(1.0)
    assert not result.violated
    assert result.to_violations_document() == {"version": "1.0", "violations": []}


def test_a_reversed_ranking_is_a_violation_in_the_monitor_shape() -> None:
    current = {"SAT score": 0.10, "GPA": 0.20, "Class rank": 0.70}
    result = feature_attribution_drift(BASELINE, current)
    # Ranked by current attribution: Class rank, GPA, SAT score; gains are baseline attributions.
    expected = dcg([0.05, 0.50, 0.70]) / dcg([0.70, 0.50, 0.05])
    assert result.score == pytest.approx(expected)
    assert result.violated
    document = result.to_violations_document()
    assert document["version"] == "1.0"
    [violation] = document["violations"]
    assert violation["label"] == "label0"
    assert violation["metric_name"] == "shap"
    assert violation["constraint_check_type"] == "feature_attribution_drift_check"
    assert f"{result.score:.6f}" in violation["description"] and "0.9" in violation["description"]
    assert set(violation) == {"label", "metric_name", "constraint_check_type", "description"}


def test_threshold_and_missing_features() -> None:
    current = {"GPA": 0.6, "SAT score": 0.5}
    result = feature_attribution_drift(BASELINE, current, threshold=0.99, label="admitted")
    assert result.missing_features == ["Class rank"]
    assert result.violated and result.violations()[0]["label"] == "admitted"
    assert attribution_ndcg(BASELINE, pd.Series(current)) == pytest.approx(result.score)


@pytest.mark.parametrize(
    ("baseline", "current", "threshold", "field"),
    [
        ({}, BASELINE, 0.9, "baseline"),
        (BASELINE, {"GPA": -0.1}, 0.9, "current"),
        (BASELINE, {"GPA": float("nan")}, 0.9, "current"),
        ({"GPA": 0.0}, BASELINE, 0.9, "baseline"),
        (BASELINE, BASELINE, 1.5, "threshold"),
        (BASELINE, {"explanations": {}}, 0.9, "current"),
        (BASELINE, ["GPA"], 0.9, "current"),
    ],
)
def test_bad_inputs_are_named(baseline: object, current: object, threshold: float, field: str) -> None:
    with pytest.raises(InvalidInput) as err:
        feature_attribution_drift(baseline, current, threshold=threshold)  # type: ignore[arg-type]
    assert err.value.field == field


def test_drifted_traffic_moves_the_attributions(booster: xgb.Booster, rows: pd.DataFrame) -> None:
    baseline = explain(booster, rows).to_global()
    same_population = explain(booster, credit_default(1500, seed=21)).to_global()
    assert feature_attribution_drift(baseline, same_population).score > 0.98
    # Traffic where nobody is ever late: the payment-status attributions change size and order.
    drifted = credit_default(1500, seed=22)
    drifted[["PAY_0", "PAY_2", "PAY_3", "PAY_4", "PAY_5", "PAY_6"]] = -1
    moved = feature_attribution_drift(baseline, explain(booster, drifted).to_global())
    assert moved.score < feature_attribution_drift(baseline, same_population).score
