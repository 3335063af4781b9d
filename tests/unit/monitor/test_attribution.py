"""Feature-attribution drift on real XGBoost contributions: a model trained with the workshop's
hyperparameters on synthetic data, a window where the most important feature stops varying
(an upstream fill with its typical value), and an unshifted window."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from strongroom.core.errors import InvalidInput
from strongroom.monitor.attribution import (
    CHECK_TYPE,
    DEFAULT_THRESHOLD,
    AttributionAccumulator,
    check_attribution_drift,
)

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
NAMES = ["income", "debt_ratio", "age", "tenure", "region_code", "noise"]
WEIGHTS = np.array([2.5, 1.5, 0.8, 0.4, 0.1, 0.0])  # income matters most, noise not at all


def _data(rows: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, len(NAMES)))
    y = (rng.random(rows) < 1 / (1 + np.exp(-(x @ WEIGHTS)))).astype(int)
    return pd.DataFrame(x, columns=NAMES), y


@pytest.fixture(scope="module")
def booster() -> xgb.Booster:
    x, y = _data(5000, seed=0)
    return xgb.train(WORKSHOP_PARAMS, xgb.DMatrix(x, label=y), num_boost_round=100)


def _contribs(booster: xgb.Booster, frame: pd.DataFrame) -> np.ndarray:
    return np.asarray(booster.predict(xgb.DMatrix(frame), pred_contribs=True))


@pytest.fixture(scope="module")
def baseline(booster: xgb.Booster) -> dict[str, float]:
    """Mean |SHAP| per feature on the training rows."""
    accumulator = AttributionAccumulator(NAMES)
    accumulator.update(_contribs(booster, _data(5000, seed=0)[0]))
    ranked = sorted(accumulator.mean_abs(), key=lambda n: -accumulator.mean_abs()[n])
    assert ranked[:3] == ["income", "debt_ratio", "age"]
    return accumulator.mean_abs()


def test_an_unshifted_window_keeps_the_ranking_and_passes(booster, baseline):
    window = _contribs(booster, _data(2000, seed=1)[0])
    assert window.shape == (2000, len(NAMES) + 1)  # pred_contribs: one column per feature, then the bias
    result = check_attribution_drift(baseline, window, window_name="08:00-09:00")
    assert result.status == "Completed"
    assert result.score is not None and result.score > 0.99
    assert result.violations == []
    assert result.to_json() == {"version": "1.0", "violations": []}
    assert "08:00-09:00" in result.message


def test_the_top_feature_stuck_at_a_constant_is_a_feature_attribution_drift_violation(booster, baseline, tmp_path):
    frame, _ = _data(2000, seed=1)
    frame["income"] = 0.0  # the upstream system now fills income with its typical value
    result = check_attribution_drift(baseline, _contribs(booster, frame), window_name="08:00-09:00")

    assert result.status == "CompletedWithViolations"
    assert result.threshold == DEFAULT_THRESHOLD == 0.9
    assert result.score is not None and result.score < 0.9
    assert result.window["income"] < result.window["debt_ratio"] < result.baseline["income"]
    [violation] = result.violations
    assert violation["constraint_check_type"] == CHECK_TYPE == "feature_attribution_drift_check"
    assert violation["metric_name"] == "shap" and violation["label"] == "label0"
    assert f"{result.score:.6f}" in violation["description"] and "income" in violation["description"]
    document = json.loads(result.write(tmp_path).read_text())
    assert document == {"version": "1.0", "violations": [violation]}
    # The threshold is the user's to set: at 0.8 the same window passes.
    assert check_attribution_drift(baseline, _contribs(booster, frame), threshold=0.8).status == "Completed"


def test_a_window_streams_in_chunks_and_partial_windows_merge(booster, baseline):
    contributions = _contribs(booster, _data(3000, seed=2)[0])
    whole = check_attribution_drift(baseline, contributions)
    first, second = AttributionAccumulator(NAMES), AttributionAccumulator(NAMES)
    for start in range(0, 1000, 250):
        first.update(contributions[start : start + 250])
    second.update(contributions[1000:])
    merged = check_attribution_drift(baseline, first.merge(second))
    assert merged.rows == 3000
    assert merged.score == pytest.approx(whole.score)
    assert merged.window == pytest.approx(whole.window)


def test_contributions_as_a_named_frame_are_matched_by_name(booster, baseline):
    contributions = _contribs(booster, _data(500, seed=3)[0])
    frame = pd.DataFrame(contributions, columns=[*NAMES, "bias"])[["noise", "bias", *NAMES[:-1]]]
    by_name = check_attribution_drift(baseline, frame)
    assert by_name.window == pytest.approx(check_attribution_drift(baseline, contributions).window)


def test_an_empty_window_has_a_clear_status(baseline):
    result = check_attribution_drift(baseline, AttributionAccumulator(NAMES), window_name="08:00-09:00")
    assert result.status == "NoData" and result.score is None
    assert result.message == "no data in 08:00-09:00: no contributions to compare with the baseline"
    assert result.to_json() == {"version": "1.0", "violations": []}


def test_contributions_of_the_wrong_shape_are_refused_naming_the_field(booster, baseline):
    contributions = _contribs(booster, _data(10, seed=4)[0])
    with pytest.raises(InvalidInput, match="5 columns; the model has 6 features") as raised:
        check_attribution_drift(baseline, contributions[:, :5])
    assert raised.value.field == "contributions"
    with pytest.raises(InvalidInput, match="one class at a time"):
        check_attribution_drift(baseline, contributions[np.newaxis])
    bad = contributions.copy()
    bad[0, 0] = np.nan
    with pytest.raises(InvalidInput, match="finite"):
        check_attribution_drift(baseline, bad)
    with pytest.raises(InvalidInput) as raised:
        check_attribution_drift(baseline, contributions, threshold=1.5)
    assert raised.value.field == "threshold"
