"""Small synthetic classification data written as a job's channels."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from strongroom.algorithms.xgboost.train import Paths


def make_data(rows: int = 2000, features: int = 5, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = np.round(rng.normal(size=(rows, features)), 4).astype(np.float32)
    logit = 1.5 * x[:, 0] - x[:, 1] + 0.5 * x[:, 2] * x[:, 3]
    y = (logit + rng.logistic(size=rows) > 0).astype(np.float32)
    return x, y


def write_csv(directory: Path, x: np.ndarray, y: np.ndarray, name: str = "part-0.csv") -> None:
    directory.mkdir(parents=True, exist_ok=True)
    np.savetxt(directory / name, np.column_stack([y, x]), delimiter=",", fmt="%.4f")


JobFactory = Callable[..., Paths]


@pytest.fixture
def job(tmp_path: Path) -> JobFactory:
    """Lay out /opt/ml-style directories under tmp_path; returns their Paths."""

    def build(
        hyperparameters: dict[str, Any], *, rows: int = 2000, every: int = 5, fmt: str = "csv", name: str = "ml"
    ) -> Paths:
        x, y = make_data(rows)
        split = int(rows * 0.8)
        root = tmp_path / name
        train_dir, valid_dir = root / "input/data/train", root / "input/data/validation"
        if fmt == "csv":
            write_csv(train_dir, x[:split], y[:split])
            write_csv(valid_dir, x[split:], y[split:])
        config = root / "input/config"
        config.mkdir(parents=True, exist_ok=True)
        (config / "hyperparameters.json").write_text(json.dumps({k: str(v) for k, v in hyperparameters.items()}))
        return Paths(
            train=train_dir,
            validation=valid_dir,
            config=config,
            model=root / "model",
            output=root / "output",
            checkpoints=root / "checkpoints",
            checkpoint_every=every,
        )

    return build
