"""The built-in XGBoost algorithm's hyperparameters: the managed container's names, checked before any compute.

Values arrive as strings (``hyperparameters.json`` holds strings, as in the managed
service) or as JSON numbers; :func:`validate` converts them and raises
:class:`~strongroom.core.errors.InvalidInput` naming the hyperparameter and its allowed
values. The job service calls it at submission so a bad spec is refused before it runs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from strongroom.core.errors import InvalidInput

OBJECTIVES = (
    "binary:logistic",
    "binary:logitraw",
    "binary:hinge",
    "reg:squarederror",
    "reg:squaredlogerror",
    "reg:logistic",
    "reg:pseudohubererror",
    "reg:absoluteerror",
    "reg:tweedie",
    "reg:gamma",
    "count:poisson",
    "multi:softmax",
    "multi:softprob",
    "rank:pairwise",
    "rank:ndcg",
    "rank:map",
    "survival:cox",
)
EVAL_METRICS = (
    "rmse",
    "rmsle",
    "mae",
    "mape",
    "mphe",
    "logloss",
    "error",
    "merror",
    "mlogloss",
    "auc",
    "aucpr",
    "ndcg",
    "map",
    "poisson-nloglik",
    "gamma-nloglik",
    "gamma-deviance",
    "tweedie-nloglik",
    "cox-nloglik",
)
# Names the training loop and the data reader consume; they are not XGBoost booster parameters.
LOOP_ONLY = ("num_round", "early_stopping_rounds", "csv_weights", "feature_names")
# Row and column sampling: with any below 1, a resumed run is not the uninterrupted run.
SAMPLING = ("subsample", "colsample_bytree", "colsample_bylevel", "colsample_bynode")
INF = math.inf


@dataclass(frozen=True)
class Spec:
    """One hyperparameter: its type and allowed values."""

    kind: type  # int, float, str, bool
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    choices: tuple[str, ...] = ()
    default: Any = None

    def describe(self) -> str:
        if self.choices:
            return "one of " + ", ".join(self.choices)
        if self.kind is bool:
            return "true or false"
        low = "(" if self.low_open else "["
        high = "∞)" if self.high in (None, INF) else f"{self.high:g}]"
        kind = "an integer" if self.kind is int else "a number"
        return f"{kind} in {low}{self.low:g}, {high}" if self.low is not None else kind


SPECS: dict[str, Spec] = {
    "num_round": Spec(int, 1, 100_000),
    "early_stopping_rounds": Spec(int, 1, 100_000),
    "max_depth": Spec(int, 0, 64, default=6),
    "eta": Spec(float, 0, 1, default=0.3),
    "gamma": Spec(float, 0, INF, default=0),
    "min_child_weight": Spec(float, 0, INF, default=1),
    "max_delta_step": Spec(float, 0, INF, default=0),
    "subsample": Spec(float, 0, 1, low_open=True, default=1),
    "colsample_bytree": Spec(float, 0, 1, low_open=True, default=1),
    "colsample_bylevel": Spec(float, 0, 1, low_open=True, default=1),
    "colsample_bynode": Spec(float, 0, 1, low_open=True, default=1),
    "lambda": Spec(float, 0, INF, default=1),
    "alpha": Spec(float, 0, INF, default=0),
    "scale_pos_weight": Spec(float, 0, INF, low_open=True, default=1),
    "base_score": Spec(float, -INF, INF),
    "max_bin": Spec(int, 2, 65_536, default=256),
    "max_leaves": Spec(int, 0, 1 << 30, default=0),
    "num_parallel_tree": Spec(int, 1, 10_000, default=1),
    "num_class": Spec(int, 2, 1_000_000),
    "tweedie_variance_power": Spec(float, 1, 2, low_open=True),
    "seed": Spec(int, 0, 2**31 - 1, default=0),
    "nthread": Spec(int, 1, 1024),
    "verbosity": Spec(int, 0, 3, default=1),
    "objective": Spec(str, choices=OBJECTIVES, default="reg:squarederror"),
    "eval_metric": Spec(str, choices=EVAL_METRICS),
    "tree_method": Spec(str, choices=("auto", "exact", "approx", "hist"), default="auto"),
    "booster": Spec(str, choices=("gbtree", "gblinear", "dart"), default="gbtree"),
    "grow_policy": Spec(str, choices=("depthwise", "lossguide"), default="depthwise"),
    "sampling_method": Spec(str, choices=("uniform",), default="uniform"),
    "csv_weights": Spec(int, 0, 1, default=0),
    # Not XGBoost's: names the features of headerless CSV or LIBSVM data, so the model carries them.
    "feature_names": Spec(str),
}


def _field(name: str) -> str:
    return f"hyperparameters.{name}"


def _convert(name: str, spec: Spec, raw: Any) -> Any:
    fail = InvalidInput(
        f"hyperparameter {name}={raw!r} is invalid: it must be {spec.describe()}",
        field=_field(name),
        allowed=spec.describe(),
    )
    if spec.kind is str:
        if not isinstance(raw, str):
            raise fail
        if name == "feature_names":
            names = [n.strip() for n in raw.split(",")]
            if not raw.strip() or not all(names) or len(set(names)) != len(names):
                raise InvalidInput(
                    f"hyperparameter feature_names={raw[:80]!r} is invalid: it must be distinct comma-separated "
                    "names, one per feature column (the label column is not named)",
                    field=_field(name),
                    allowed="comma-separated distinct names",
                )
            return names
        if name == "eval_metric":
            metrics = [m.strip() for m in raw.split(",") if m.strip()]
            bad = [m for m in metrics if m.split("@")[0] not in EVAL_METRICS]
            if not metrics or bad:
                raise InvalidInput(
                    f"hyperparameter eval_metric={raw!r} is invalid: each comma-separated metric must be "
                    f"{spec.describe()}",
                    field=_field(name),
                    allowed=spec.describe(),
                )
            return metrics
        if raw not in spec.choices:
            raise fail
        return raw
    if isinstance(raw, bool):
        raise fail
    try:
        number = float(raw) if isinstance(raw, (int, float)) else float(str(raw).strip())
    except ValueError:
        raise fail from None
    if math.isnan(number):
        raise fail
    if spec.kind is int:
        if not number.is_integer():
            raise fail
        value: Any = int(number)
    else:
        value = number
    low = -INF if spec.low is None else spec.low
    high = INF if spec.high is None else spec.high
    if number < low or number > high or (spec.low_open and number == low):
        raise fail
    return value


def validate(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Check and convert hyperparameters; returns typed values for the names given.

    Raises:
        InvalidInput: an unknown name, a value out of range, a missing ``num_round``, or an
            inconsistent combination (``num_class`` without a multi-class objective, and back).
    """
    if not isinstance(raw, Mapping):
        raise InvalidInput("hyperparameters must be a JSON object of name -> value", field="hyperparameters")
    values: dict[str, Any] = {}
    for name, value in raw.items():
        spec = SPECS.get(name)
        if spec is None:
            raise InvalidInput(
                f"unknown hyperparameter {name!r}; the built-in XGBoost algorithm accepts: {', '.join(sorted(SPECS))}",
                field=_field(name),
            )
        values[name] = _convert(name, spec, value)
    if "num_round" not in values:
        raise InvalidInput(
            "hyperparameter num_round is required (an integer in [1, 100000])", field=_field("num_round")
        )
    objective = values.get("objective", SPECS["objective"].default)
    if objective.startswith("multi:") and "num_class" not in values:
        raise InvalidInput(f"objective {objective} needs num_class (an integer >= 2)", field=_field("num_class"))
    if "num_class" in values and not objective.startswith("multi:"):
        raise InvalidInput(
            "num_class is only valid with a multi:softmax or multi:softprob objective", field=_field("num_class")
        )
    return values


def booster_params(values: Mapping[str, Any]) -> dict[str, Any]:
    """XGBoost parameters from validated values: exactly the ones the user set, minus the training
    loop's own (``num_round``, ``early_stopping_rounds``, ``csv_weights``). Nothing is added, so a job's
    model equals ``xgboost.train`` run bare with the same hyperparameters (XGBoost's defaults apply)."""
    return {k: v for k, v in values.items() if k not in LOOP_ONLY}


def resume_note(hyperparameters: Mapping[str, Any], step: int) -> str:
    """What a user must know about a run resumed from the checkpoint of round ``step`` (for the
    training log and the job's status message)."""
    sampling = [name for name in SAMPLING if float(hyperparameters.get(name, 1)) < 1.0]
    if not sampling:
        return f"resumed at round {step}; without row/column sampling the model equals an uninterrupted run's"
    return (
        f"resumed at round {step}; with {', '.join(sampling)} below 1 the model is deterministic for this "
        "interruption round but not byte-identical to an uninterrupted run (XGBoost's row/column samplers "
        "keep random state that a saved booster does not carry)"
    )
