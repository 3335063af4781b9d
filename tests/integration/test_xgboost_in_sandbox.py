"""The built-in XGBoost algorithm as a job runs it: inside a real sandbox, interrupted by SIGTERM, resumed."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb

from strongroom.algorithms.checkpoint import EXIT_INTERRUPTED
from strongroom.algorithms.xgboost.serve import Predictor
from strongroom.sandbox import Limits, Mount, OutputLine, SandboxRunner, SandboxSpec, SandboxStatus, discover
from tests.integration.test_sandbox import pytestmark as sandbox_available
from tests.unit.algorithms.conftest import make_data, write_csv

pytestmark = [sandbox_available, pytest.mark.slow]
HPS = {"num_round": "400", "max_depth": "4", "eta": "0.05", "objective": "binary:logistic", "eval_metric": "auc"}


def job_spec(tmp_path: Path, run: str) -> SandboxSpec:
    (tmp_path / run / "model").mkdir(parents=True, exist_ok=True)
    (tmp_path / run / "checkpoints").mkdir(exist_ok=True)
    return SandboxSpec(
        command=("python", "-m", "strongroom.algorithms.xgboost.train"),
        python=discover(),
        mounts=(
            Mount(str(tmp_path / "data/train"), "/opt/ml/input/data/train"),
            Mount(str(tmp_path / "data/validation"), "/opt/ml/input/data/validation"),
            Mount(str(tmp_path / "config"), "/opt/ml/input/config"),
            Mount(str(tmp_path / run / "model"), "/opt/ml/model", writable=True),
            Mount(str(tmp_path / run / "checkpoints"), "/opt/ml/checkpoints", writable=True),
        ),
        env={"STRONGROOM_CHECKPOINT_EVERY": "25", "OMP_NUM_THREADS": "1"},
        limits=Limits(memory_bytes=4 * 1024**3, max_runtime_seconds=300, stop_grace_seconds=30),
    )


def test_spot_interruption_and_resume_in_the_sandbox(tmp_path: Path) -> None:
    x, y = make_data(3000)
    write_csv(tmp_path / "data/train", x[:2400], y[:2400])
    write_csv(tmp_path / "data/validation", x[2400:], y[2400:])
    (tmp_path / "config").mkdir()
    (tmp_path / "config/hyperparameters.json").write_text(json.dumps(HPS))
    runner = SandboxRunner()

    whole = runner.run(job_spec(tmp_path, "whole"))
    assert whole.status is SandboxStatus.COMPLETED, whole

    spec = job_spec(tmp_path, "spot")
    lines: list[OutputLine] = []
    progressing = threading.Event()

    def collect(line: OutputLine) -> None:
        lines.append(line)
        if line.text.startswith("[60]"):
            progressing.set()

    process = runner.start(spec, collect)
    assert progressing.wait(120), lines[-5:]
    process.interrupt("spot capacity reclaimed")
    first = process.wait(120)
    assert first.status is SandboxStatus.INTERRUPTED
    assert first.exit_code == EXIT_INTERRUPTED
    assert any("checkpoint written" in line.text for line in lines)
    assert not (tmp_path / "spot/model/model.tar.gz").exists()

    resumed_lines: list[OutputLine] = []
    second = runner.run(spec, resumed_lines.append)
    assert second.status is SandboxStatus.COMPLETED, (second, resumed_lines[-5:])
    assert any("resuming from checkpoint" in line.text for line in resumed_lines)

    features = xgb.DMatrix(x)
    expected = Predictor.from_archive(tmp_path / "whole/model/model.tar.gz").booster.predict(features)
    actual = Predictor.from_archive(tmp_path / "spot/model/model.tar.gz").booster.predict(features)
    np.testing.assert_allclose(actual, expected, atol=1e-6, rtol=0)


def test_bad_hyperparameters_fail_fast_with_the_reason(tmp_path: Path) -> None:
    x, y = make_data(200)
    write_csv(tmp_path / "data/train", x, y)
    write_csv(tmp_path / "data/validation", x, y)
    (tmp_path / "config").mkdir()
    (tmp_path / "config/hyperparameters.json").write_text(json.dumps({**HPS, "eta": "3"}))
    result = SandboxRunner().run(job_spec(tmp_path, "bad"))
    assert result.status is SandboxStatus.FAILED and result.exit_code == 2
    assert "eta" in result.reason and "[0, 1]" in result.reason
