"""The worker's predictions equal ``booster.predict`` on the same rows, bit for bit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb

from strongroom.algorithms.xgboost.archive import archive_bytes
from strongroom.demo.data import FEATURES, LABEL, credit_default
from strongroom.serving.inside.worker import Model


@pytest.mark.parametrize(
    ("objective", "classes"), [("binary:logistic", 0), ("multi:softprob", 3), ("reg:squarederror", 0)]
)
def test_one_row_and_many_rows_equal_booster_predict(tmp_path: Path, objective: str, classes: int) -> None:
    table = credit_default(800, seed=1)
    features, label = table[FEATURES].to_numpy(np.float32), table[LABEL].to_numpy()
    params: dict[str, object] = {"objective": objective, "max_depth": 5, "eta": 0.2, "verbosity": 0}
    if classes:
        params["num_class"] = classes
        label = np.arange(len(label)) % classes
    booster = xgb.train(params, xgb.DMatrix(features[:600], label=label[:600]), num_boost_round=20)
    archive = tmp_path / "model.tar.gz"
    archive.write_bytes(archive_bytes(booster.save_raw("ubj")))
    model = Model(archive)
    rows = features[600:].tolist()
    expected = booster.predict(xgb.DMatrix(np.asarray(rows, dtype=np.float32))).reshape(len(rows), -1)[:, 0]
    assert model.predict(rows) == [float(v) for v in expected]
    assert [model.predict([row])[0] for row in rows[:20]] == [float(v) for v in expected[:20]]
