"""Computing SHAP values: exact TreeSHAP for XGBoost and other tree models, and an approximate,
model-agnostic fallback for small data.

XGBoost models go straight to the booster's own C++ TreeSHAP (``pred_contribs``, and
``pred_interactions`` on request), the same code ``shap.TreeExplainer`` ends up calling for a
booster, without the detour. Other tree ensembles (scikit-learn, LightGBM, CatBoost) go through
``shap.TreeExplainer``. Anything else can be explained by sampling (shap's permutation or kernel
explainer) against a background sample: slow, approximate, and labelled as such.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any, Literal

import numpy as np
import pandas as pd
import xgboost as xgb

from strongroom.core.errors import InvalidInput
from strongroom.explain.models import TREE_SHAP_SHAP, TREE_SHAP_XGBOOST, Explanation, Method

MARGIN = "margin (log-odds for binary:logistic)"
APPROXIMATE_MAX_ROWS = 5000

MethodChoice = Literal["auto", "tree", "permutation", "kernel"]


def explain(
    model: Any,
    X: pd.DataFrame,
    *,
    method: MethodChoice = "auto",
    interactions: bool = False,
    background: pd.DataFrame | None = None,
    class_index: int | None = None,
    n_threads: int | None = None,
    max_evals: int = 500,
    seed: int = 0,
) -> Explanation:
    """Explain ``model`` on the rows of ``X``.

    Args:
        model: an ``xgboost.Booster`` or XGBoost scikit-learn model (exact, native TreeSHAP); a tree
            ensemble ``shap.TreeExplainer`` supports (exact); or, with ``method`` ``"permutation"``
            or ``"kernel"``, any fitted model with ``predict_proba``/``predict`` or a callable
            taking a DataFrame (approximate).
        X: the rows to explain, with the model's feature columns (other columns, such as the label,
            are ignored).
        method: ``"auto"`` (exact when the model is a tree ensemble, else an error asking to choose
            an approximate method), ``"tree"``, ``"permutation"`` or ``"kernel"``.
        interactions: also compute SHAP interaction values (exact tree methods only; costs about
            ``features`` times more).
        background: rows standing for "feature unknown" in the approximate methods (required there;
            a few hundred rows of training data).
        class_index: which class to explain for a multi-class model (default: the positive class of
            a binary classifier).
        n_threads: threads for XGBoost (default: all cores).
        max_evals: model evaluations per row for the approximate methods.
        seed: seed of the approximate methods' sampling.

    Raises:
        InvalidInput: ``X`` lacks a model feature, the model cannot be explained by the chosen
            method, or approximate explanation was asked for too many rows or without background.
    """
    if method not in ("auto", "tree", "permutation", "kernel"):
        raise InvalidInput(f"unknown method {method!r}: use auto, tree, permutation or kernel", field="method")
    if not isinstance(X, pd.DataFrame):
        raise InvalidInput("X must be a pandas DataFrame with the model's feature columns", field="X")
    booster = as_booster(model)
    if booster is not None and method in ("auto", "tree"):
        return explain_booster(
            booster,
            X,
            interactions=interactions,
            class_index=class_index,
            n_threads=n_threads,
            iteration_range=_iteration_range(model),
        )
    if method in ("auto", "tree"):
        explained = _explain_tree_model(model, X, interactions=interactions, class_index=class_index)
        if explained is not None:
            return explained
        if method == "tree":
            raise InvalidInput(
                f"{type(model).__name__} is not a tree model shap.TreeExplainer supports; "
                "use method='permutation' or 'kernel' (approximate) with a background sample",
                field="method",
            )
        raise InvalidInput(
            f"{type(model).__name__} has no exact explainer; ask for an approximate one explicitly with "
            "method='permutation' or method='kernel' and a background sample",
            field="method",
        )
    if interactions:
        raise InvalidInput("interaction values need an exact tree method", field="interactions")
    predict, output = _prediction_function(model, booster, class_index)
    return explain_approximate(
        predict,
        X,
        output=output,
        background=background,
        feature_names=_feature_names(model, booster, X),
        kind="kernel" if method == "kernel" else "permutation",
        max_evals=max_evals,
        seed=seed,
    )


def as_booster(model: Any) -> xgb.Booster | None:
    """The XGBoost booster behind ``model`` (a Booster or an XGBoost scikit-learn model), else None."""
    if isinstance(model, xgb.Booster):
        return model
    if isinstance(model, xgb.XGBModel):
        return model.get_booster()
    return None


def _iteration_range(model: Any) -> tuple[int, int]:
    """The trees the model predicts with: a scikit-learn XGBoost model trained with early stopping
    predicts with its best iteration only, so it is explained that way too."""
    if isinstance(model, xgb.XGBModel):
        try:
            return (0, int(model.best_iteration) + 1)
        except AttributeError:
            pass
    return (0, 0)  # all trees, as Booster.predict does


def feature_frame(booster: xgb.Booster, X: pd.DataFrame) -> pd.DataFrame:
    """``X`` restricted to and ordered as the booster's features.

    Raises:
        InvalidInput: a feature is missing, or (for a booster without names) the column count differs.
    """
    names = booster.feature_names
    if names:
        missing = [n for n in names if n not in X.columns]
        if missing:
            raise InvalidInput(
                f"the data lacks the model feature(s) {', '.join(missing[:10])}"
                + (f" and {len(missing) - 10} more" if len(missing) > 10 else ""),
                field="X",
            )
        return X.loc[:, list(names)]
    if X.shape[1] != booster.num_features():
        raise InvalidInput(
            f"the model has {booster.num_features()} unnamed features and the data {X.shape[1]} columns", field="X"
        )
    return X


def dmatrix(booster: xgb.Booster, X: pd.DataFrame) -> xgb.DMatrix:
    """A DMatrix of ``X``'s model features (categoricals allowed), named like the booster's."""
    frame = feature_frame(booster, X)
    return xgb.DMatrix(frame, enable_categorical=True, nthread=-1)


def explain_booster(
    booster: xgb.Booster,
    X: pd.DataFrame,
    *,
    interactions: bool = False,
    class_index: int | None = None,
    n_threads: int | None = None,
    iteration_range: tuple[int, int] = (0, 0),
) -> Explanation:
    """Exact TreeSHAP for an XGBoost booster through its native ``pred_contribs``.

    For every row the contributions plus ``base_value`` equal the booster's margin output (over
    ``iteration_range``, by default all trees, as ``Booster.predict``).

    Raises:
        InvalidInput: see :func:`feature_frame`; a multi-class model without ``class_index``.
    """
    frame = feature_frame(booster, X)
    names = [str(c) for c in frame.columns]
    if len(frame) == 0:  # XGBoost answers an empty matrix with a flat empty array
        width = len(names)
        return Explanation(
            values=pd.DataFrame(np.empty((0, width), np.float32), index=frame.index, columns=names),
            base_value=_bias(booster, class_index),
            method=TREE_SHAP_XGBOOST,
            output=MARGIN,
            data=frame,
            interactions=np.empty((0, width, width), np.float32) if interactions else None,
        )
    with _threads(n_threads):
        matrix = xgb.DMatrix(frame, enable_categorical=True, nthread=-1)  # frame is already checked
        options: dict[str, Any] = {"validate_features": False, "iteration_range": iteration_range}
        contribs = booster.predict(matrix, pred_contribs=True, **options)
        inter = booster.predict(matrix, pred_interactions=True, **options) if interactions else None
    if contribs.ndim == 3:  # multi-class: (rows, classes, features + 1)
        contribs = contribs[:, _class(class_index, contribs.shape[1]), :]
        inter = None if inter is None else inter[:, _class(class_index, inter.shape[1]), :, :]
    base = float(contribs[0, -1])
    values = pd.DataFrame(contribs[:, :-1], index=frame.index, columns=names)
    return Explanation(
        values=values,
        base_value=base,
        method=TREE_SHAP_XGBOOST,
        output=MARGIN,
        data=frame,
        interactions=None if inter is None else inter[:, :-1, :-1],
    )


def _bias(booster: xgb.Booster, class_index: int | None) -> float:
    empty = xgb.DMatrix(np.zeros((1, booster.num_features()), dtype=np.float32), feature_names=booster.feature_names)
    row = booster.predict(empty, pred_contribs=True, validate_features=False)
    if row.ndim == 3:
        row = row[:, _class(class_index, row.shape[1]), :]
    return float(row[0, -1])


def _class(class_index: int | None, classes: int) -> int:
    if class_index is None:
        raise InvalidInput(
            f"the model has {classes} classes: pass class_index (0..{classes - 1}) to say which to explain",
            field="class_index",
        )
    if not 0 <= class_index < classes:
        raise InvalidInput(f"class_index must be in 0..{classes - 1}", field="class_index")
    return class_index


def _threads(n_threads: int | None) -> AbstractContextManager[Any]:
    if n_threads is None:
        return nullcontext()
    if n_threads < 1:
        raise InvalidInput("n_threads must be at least 1", field="n_threads")
    return xgb.config_context(nthread=n_threads)


def _explain_tree_model(
    model: Any, X: pd.DataFrame, *, interactions: bool, class_index: int | None
) -> Explanation | None:
    import shap

    try:
        explainer = shap.TreeExplainer(model)
    except Exception:  # shap raises several types (InvalidModelError, TypeError, ...) for "not a tree model"
        return None
    names = _feature_names(model, None, X)
    frame = X.loc[:, names]
    values = np.asarray(explainer.shap_values(frame))
    expected = np.atleast_1d(np.asarray(explainer.expected_value, dtype=np.float64))
    inter = np.asarray(explainer.shap_interaction_values(frame)) if interactions else None
    if values.ndim == 3:  # (rows, features, classes)
        index = class_index if class_index is not None else (1 if values.shape[2] == 2 else None)
        chosen = _class(index, values.shape[2])
        values = values[:, :, chosen]
        expected = expected[chosen : chosen + 1]
        inter = None if inter is None else inter[..., chosen]
    return Explanation(
        values=pd.DataFrame(values, index=frame.index, columns=names),
        base_value=float(expected[0]),
        method=TREE_SHAP_SHAP,
        output=_output_space(explainer),
        data=frame,
        interactions=inter,
    )


def _output_space(explainer: Any) -> str:
    model_output = getattr(explainer, "model_output", "raw")
    return "raw model output" if model_output == "raw" else str(model_output)


def _feature_names(model: Any, booster: xgb.Booster | None, X: pd.DataFrame) -> list[str]:
    if booster is not None and booster.feature_names:
        names = list(booster.feature_names)
    else:
        fitted = getattr(model, "feature_names_in_", None)
        names = [str(n) for n in fitted] if fitted is not None else [str(c) for c in X.columns]
    missing = [n for n in names if n not in X.columns]
    if missing:
        raise InvalidInput(f"the data lacks the model feature(s) {', '.join(missing[:10])}", field="X")
    return names


def _prediction_function(
    model: Any, booster: xgb.Booster | None, class_index: int | None
) -> tuple[Callable[[pd.DataFrame], np.ndarray], str]:
    if booster is not None:
        # Explain the same margin the exact method explains, so the two are comparable.
        def margin(frame: pd.DataFrame) -> np.ndarray:
            return np.asarray(booster.predict(dmatrix(booster, frame), output_margin=True, validate_features=False))

        return margin, MARGIN
    if hasattr(model, "predict_proba"):
        column = 1 if class_index is None else class_index

        def probability(frame: pd.DataFrame) -> np.ndarray:
            return np.asarray(model.predict_proba(frame))[:, column]

        return probability, f"probability of class {column}"
    if hasattr(model, "predict"):
        return (lambda frame: np.asarray(model.predict(frame))), "model output"
    if callable(model):
        return (lambda frame: np.asarray(model(frame))), "model output"
    raise InvalidInput(f"cannot call {type(model).__name__}: give a model with predict or a function", field="model")


def explain_approximate(
    predict: Callable[[pd.DataFrame], np.ndarray],
    X: pd.DataFrame,
    *,
    background: pd.DataFrame | None,
    feature_names: list[str] | None = None,
    kind: Literal["permutation", "kernel"] = "permutation",
    output: str = "model output",
    max_evals: int = 500,
    seed: int = 0,
    max_rows: int = APPROXIMATE_MAX_ROWS,
) -> Explanation:
    """Model-agnostic, sampled SHAP values (shap's permutation or kernel explainer).

    The result is labelled approximate: each value carries sampling error that shrinks with
    ``max_evals``, and the cost is ``max_evals`` model calls per row, so this is meant for small
    data (at most ``max_rows`` rows).

    Raises:
        InvalidInput: no background, an empty background, too many rows.
    """
    import shap

    if background is None or len(background) == 0:
        raise InvalidInput(
            "approximate SHAP needs a background sample (a few hundred training rows)", field="background"
        )
    if len(X) > max_rows:
        raise InvalidInput(
            f"approximate SHAP on {len(X)} rows would take long: explain at most {max_rows} rows "
            "(a sample), or use a tree model for exact, fast explanations",
            field="X",
        )
    names = feature_names or [str(c) for c in X.columns]
    frame = X.loc[:, names]
    back = background.loc[:, names]

    def f(array: np.ndarray) -> np.ndarray:
        return predict(pd.DataFrame(array, columns=names, copy=False))

    if kind == "kernel":
        summary = back if len(back) <= 100 else shap.sample(back, 100, random_state=seed)
        with warnings.catch_warnings():
            # shap's kernel explainer warns about its own background size and l1 choice.
            warnings.simplefilter("ignore", UserWarning)
            kernel = shap.KernelExplainer(f, summary.to_numpy(dtype=np.float64), seed=seed)
            values = np.asarray(kernel.shap_values(frame.to_numpy(dtype=np.float64), nsamples=max_evals, silent=True))
        base = float(np.atleast_1d(kernel.expected_value)[0])
        method = Method("kernel_shap", False, f"shap.KernelExplainer, nsamples={max_evals}")
    else:
        masker = shap.maskers.Independent(back.to_numpy(dtype=np.float64), max_samples=100)
        explainer = shap.explainers.Permutation(f, masker, seed=seed)
        evals = max(max_evals, 2 * len(names) + 1)
        result = explainer(frame.to_numpy(dtype=np.float64), max_evals=evals, silent=True)
        values = np.asarray(result.values)
        base = float(np.mean(result.base_values))
        method = Method("permutation_shap", False, f"shap.PermutationExplainer, max_evals={evals}")
    return Explanation(
        values=pd.DataFrame(values, index=frame.index, columns=names),
        base_value=base,
        method=method,
        output=output,
        data=frame,
    )
