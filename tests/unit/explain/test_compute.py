"""Exact and approximate SHAP values, and XGBoost's own importances."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shap
import xgboost as xgb
from sklearn.ensemble import GradientBoostingClassifier, RandomForestRegressor

from strongroom.core.errors import InvalidInput
from strongroom.demo.data import FEATURES, LABEL, PAY_STATUS, credit_default
from strongroom.explain import Explainer, explain, xgboost_importance


def margin(booster: xgb.Booster, frame: pd.DataFrame) -> np.ndarray:
    return booster.predict(xgb.DMatrix(frame[FEATURES]), output_margin=True)


def test_contributions_plus_bias_equal_the_margin_for_every_row(booster: xgb.Booster, rows: pd.DataFrame) -> None:
    explanation = explain(booster, rows)
    assert explanation.exact
    assert explanation.method.label == "tree_shap (exact, xgboost pred_contribs)"
    assert list(explanation.values.columns) == FEATURES  # the label column is not a feature
    assert explanation.values.index.equals(rows.index)
    contributions = explanation.contributions()
    assert list(contributions.columns) == [*FEATURES, "bias"]
    np.testing.assert_allclose(contributions.sum(axis=1), margin(booster, rows), atol=1e-4)
    np.testing.assert_allclose(explanation.predictions(), margin(booster, rows), atol=1e-4)


def test_values_agree_with_shap_tree_explainer(booster: xgb.Booster, rows: pd.DataFrame) -> None:
    ours = explain(booster, rows)
    peer = shap.TreeExplainer(booster)
    np.testing.assert_allclose(ours.values.to_numpy(), peer.shap_values(rows[FEATURES]), atol=1e-4)
    assert ours.base_value == pytest.approx(float(np.atleast_1d(peer.expected_value)[0]), abs=1e-4)


def test_interaction_values_sum_to_the_contributions(booster: xgb.Booster, rows: pd.DataFrame) -> None:
    explanation = explain(booster, rows.head(100), interactions=True)
    assert explanation.interactions is not None
    assert explanation.interactions.shape == (100, 23, 23)
    np.testing.assert_allclose(explanation.interactions.sum(axis=2), explanation.values.to_numpy(), atol=1e-4)
    pairs = explanation.interaction_importance()
    assert list(pairs.index) == FEATURES and list(pairs.columns) == FEATURES


def test_recent_payment_status_leads_the_global_importance(booster: xgb.Booster, rows: pd.DataFrame) -> None:
    ranking = explain(booster, rows).global_importance()
    assert list(ranking.columns) == ["mean_abs_shap", "mean_shap", "share", "rank"]
    assert ranking.index[0] == "PAY_0"
    assert "PAY_2" in ranking.index[:3]
    assert ranking.loc[PAY_STATUS, "share"].sum() > 0.4
    assert ranking["share"].sum() == pytest.approx(1.0)


def test_sklearn_wrapper_and_explainer_class(rows: pd.DataFrame) -> None:
    train = credit_default(3000, seed=5)
    model = xgb.XGBClassifier(n_estimators=20, max_depth=3, n_jobs=2).fit(train[FEATURES], train[LABEL])
    explainer = Explainer(model)
    values = explainer.shap_values(rows)
    assert values.shape == (len(rows), 23)
    np.testing.assert_allclose(
        values.sum(axis=1) + explainer.explain(rows).base_value,
        model.predict(rows[FEATURES], output_margin=True),
        atol=1e-4,
    )


def test_early_stopped_sklearn_model_is_explained_at_its_best_iteration(rows: pd.DataFrame) -> None:
    train, valid = credit_default(2000, seed=5), credit_default(1000, seed=6)
    model = xgb.XGBClassifier(n_estimators=200, learning_rate=0.5, max_depth=4, early_stopping_rounds=3, n_jobs=2)
    model.fit(train[FEATURES], train[LABEL], eval_set=[(valid[FEATURES], valid[LABEL])], verbose=False)
    assert model.best_iteration + 1 < model.get_booster().num_boosted_rounds()
    explanation = explain(model, rows.head(50))
    np.testing.assert_allclose(
        explanation.predictions(), model.predict(rows.head(50)[FEATURES], output_margin=True), atol=1e-4
    )


def test_other_tree_models_go_through_shap_tree_explainer(rows: pd.DataFrame) -> None:
    train = credit_default(1500, seed=6)
    classifier = GradientBoostingClassifier(n_estimators=15, max_depth=3, random_state=0)
    classifier.fit(train[FEATURES], train[LABEL])
    explanation = explain(classifier, rows.head(100))
    assert explanation.exact and explanation.method.engine == "shap.TreeExplainer"
    np.testing.assert_allclose(
        explanation.predictions(), classifier.decision_function(rows.head(100)[FEATURES]), atol=1e-4
    )
    regressor = RandomForestRegressor(n_estimators=5, max_depth=4, random_state=0)
    regressor.fit(train[FEATURES], train["LIMIT_BAL"] / 1000)
    forest = explain(regressor, rows.head(50))
    np.testing.assert_allclose(forest.predictions(), regressor.predict(rows.head(50)[FEATURES]), rtol=1e-4)


def test_kernel_fallback_is_labelled_approximate_and_close(booster: xgb.Booster, rows: pd.DataFrame) -> None:
    sample = rows.head(8)
    exact = explain(booster, sample)
    background = credit_default(30, seed=9)
    kernel = explain(booster, sample, method="kernel", background=background, max_evals=300)
    assert not kernel.exact
    assert kernel.method.name == "kernel_shap"
    assert "approximate" in kernel.method.label
    assert kernel.output == exact.output  # the same margin is explained, so the two compare
    # Kernel SHAP keeps local accuracy (values add up to output minus the background mean)...
    np.testing.assert_allclose(kernel.predictions(), margin(booster, sample), atol=1e-3)
    # ...but the values themselves are estimates against a background, close to the exact ones.
    assert np.corrcoef(kernel.values.to_numpy().ravel(), exact.values.to_numpy().ravel())[0, 1] > 0.8


@pytest.mark.slow  # shap's permutation explainer JIT-compiles its maskers (numba) on first use: ~10-30 s
def test_permutation_fallback_is_labelled_approximate(booster: xgb.Booster, rows: pd.DataFrame) -> None:
    sample = rows.head(6)
    permutation = explain(booster, sample, method="permutation", background=credit_default(50, seed=9))
    assert not permutation.exact
    assert permutation.method.name == "permutation_shap"
    np.testing.assert_allclose(permutation.predictions(), margin(booster, sample), atol=1e-4)
    exact = explain(booster, sample)
    assert np.corrcoef(permutation.values.to_numpy().ravel(), exact.values.to_numpy().ravel())[0, 1] > 0.8


def test_approximate_needs_background_and_small_data(booster: xgb.Booster, rows: pd.DataFrame) -> None:
    with pytest.raises(InvalidInput, match="background") as err:
        explain(booster, rows.head(5), method="kernel")
    assert err.value.field == "background"
    with pytest.raises(InvalidInput, match="at most") as err:
        explain(booster, credit_default(6000), method="kernel", background=rows.head(10))
    assert err.value.field == "X"


def test_a_model_without_an_exact_explainer_must_ask_for_an_approximate_one(rows: pd.DataFrame) -> None:
    def predict(frame: pd.DataFrame) -> np.ndarray:
        return frame["PAY_0"].to_numpy(dtype=float) * 0.5

    with pytest.raises(InvalidInput, match="approximate") as err:
        explain(predict, rows.head(5)[FEATURES])
    assert err.value.field == "method"
    explanation = explain(predict, rows.head(5)[FEATURES], method="kernel", background=rows.head(20)[FEATURES])
    assert explanation.values["PAY_0"].abs().sum() > 0
    assert explanation.values.drop(columns="PAY_0").abs().to_numpy().max() == pytest.approx(0.0)


def test_missing_feature_is_named(booster: xgb.Booster, rows: pd.DataFrame) -> None:
    with pytest.raises(InvalidInput, match="PAY_0") as err:
        explain(booster, rows.drop(columns="PAY_0"))
    assert err.value.field == "X"


def test_multi_class_models_need_a_class(rows: pd.DataFrame) -> None:
    train = credit_default(1000, seed=3)
    target = np.clip(train["PAY_0"] + 2, 0, 3)
    params = {"objective": "multi:softprob", "num_class": 4, "max_depth": 3, "nthread": 2}
    model = xgb.train(params, xgb.DMatrix(train[FEATURES], label=target), num_boost_round=5)
    with pytest.raises(InvalidInput, match="class_index"):
        explain(model, rows.head(10))
    explanation = explain(model, rows.head(10), class_index=2)
    margins = model.predict(xgb.DMatrix(rows.head(10)[FEATURES]), output_margin=True)[:, 2]
    np.testing.assert_allclose(explanation.predictions(), margins, atol=1e-4)


def test_xgboost_importance_types(booster: xgb.Booster) -> None:
    importance = xgboost_importance(booster)
    assert list(importance.columns) == ["gain", "weight", "cover", "total_gain", "total_cover"]
    assert set(importance.index) == set(FEATURES)
    assert importance["gain"].is_monotonic_decreasing
    assert (importance["weight"] >= 0).all() and importance["weight"].sum() > 0
    assert importance.index[0] in PAY_STATUS
    with pytest.raises(InvalidInput, match="unknown importance"):
        xgboost_importance(booster, ("gain", "entropy"))
