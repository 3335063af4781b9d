"""The built-in XGBoost algorithm on the job's Dask cluster (``resources.instance_count > 1``):
``xgboost.dask`` over the job's workers, TLS between them. Same channels, hyperparameters,
metric lines and ``model.tar.gz`` as single-node training."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import xgboost as xgb
import xgboost.dask  # registers xgb.dask

from strongroom.algorithms import checkpoint
from strongroom.algorithms.xgboost.archive import archive_bytes
from strongroom.algorithms.xgboost.data import load_features
from strongroom.algorithms.xgboost.hyperparameters import booster_params, validate


def train_distributed(
    paths: Any, raw_hyperparameters: Mapping[str, Any], client: Any, *, log: Callable[[str], None] = print
) -> int:
    """Train on every worker of ``client``'s cluster; returns the number of rounds."""
    import dask.array as da

    from strongroom.algorithms.xgboost.train import content_types

    values = validate(raw_hyperparameters)
    params = booster_params(values)
    params.pop("nthread", None)
    num_round = int(values["num_round"])
    types = content_types(paths.config)
    workers = max(1, len(client.scheduler_info()["workers"]))

    def matrix(directory: Any, channel: str) -> Any:
        features, labels, names = load_features(directory, types.get(channel), channel)
        dense = features.toarray() if hasattr(features, "toarray") else features
        rows = max(1, math.ceil(dense.shape[0] / workers))
        return xgb.dask.DaskDMatrix(
            client,
            da.from_array(dense, chunks=(rows, dense.shape[1])),
            da.from_array(labels, chunks=rows),
            feature_names=values.get("feature_names") or names,
        )

    evals = [(matrix(paths.train, "train"), "train")]
    if paths.validation.is_dir():
        evals.append((matrix(paths.validation, "validation"), "validation"))
    log(f"[strongroom] distributed training on {workers} Dask workers")
    early = values.get("early_stopping_rounds")
    result = xgb.dask.train(
        client,
        params,
        evals[0][0],
        num_boost_round=num_round,
        evals=evals,
        early_stopping_rounds=int(early) if early else None,
        verbose_eval=False,
    )
    history: dict[str, dict[str, list[float]]] = result["history"]
    rounds = max((len(v) for metrics in history.values() for v in metrics.values()), default=0)
    for i in range(rounds):
        parts = [f"[{i}]"] + [
            f"{name}-{metric}:{values_[i]:.5f}"
            for name, metrics in history.items()
            for metric, values_ in metrics.items()
        ]
        log("#011".join(parts))
    booster: xgb.Booster = result["booster"]
    paths.model.mkdir(parents=True, exist_ok=True)
    checkpoint.atomic_write(paths.model / "model.tar.gz", archive_bytes(bytes(booster.save_raw("ubj"))))
    log(f"[strongroom] training complete: {rounds} rounds on {workers} workers")
    return rounds
