"""Explaining a dataset across a real local Dask cluster (two worker processes on loopback)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from distributed import get_task_stream

from strongroom.demo.data import FEATURES, LABEL, credit_default
from strongroom.explain import explain, explain_distributed, local_cluster


@pytest.fixture(scope="module")
def client() -> Iterator[object]:
    dask_client = local_cluster(n_workers=2, threads_per_worker=1)
    try:
        yield dask_client
    finally:
        dask_client.close()
        dask_client.cluster.close()  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def booster() -> xgb.Booster:
    train = credit_default(3000, seed=1)
    params = {"objective": "binary:logistic", "max_depth": 4, "nthread": 2}
    return xgb.train(params, xgb.DMatrix(train[FEATURES], label=train[LABEL]), num_boost_round=20)


@pytest.mark.slow  # starts a scheduler and two worker processes
@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_two_dask_workers_give_the_in_memory_answer(
    booster: xgb.Booster, client: object, tmp_path: Path, kind: str
) -> None:
    table = credit_default(5000, seed=11)
    path = tmp_path / f"rows.{kind}"
    if kind == "csv":
        table.to_csv(path, index=False)
    else:
        table.to_parquet(path, row_group_size=700)
    expected = explain(booster, table).to_global()
    with get_task_stream(client) as tasks:
        distributed = explain_distributed(booster, path, client, chunk_rows=600, sample_rows=200)
    assert distributed.row_count == expected.row_count
    np.testing.assert_allclose(distributed.mean_abs, expected.mean_abs, rtol=1e-6)
    np.testing.assert_allclose(distributed.mean, expected.mean, rtol=1e-5, atol=1e-7)
    assert distributed.base_value == pytest.approx(expected.base_value)
    assert distributed.sample is not None and len(distributed.sample) == 200
    assert isinstance(distributed.sample.data, pd.DataFrame)
    assert len({task["worker"] for task in tasks.data}) == 2  # both workers took a share of the parts
