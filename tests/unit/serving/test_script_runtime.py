"""A user's own inference script (runtime ``script``): its contract, checked by the worker that runs
it (here outside a sandbox, with the worker's scratch directory in a temporary folder)."""

from __future__ import annotations

import io
import sys
import tarfile
from pathlib import Path

import pytest

from strongroom.serving.inside import worker
from strongroom.serving.inside.worker import BadInput, ScriptModel, parse_csv, parse_json

SCRIPT = b"""
import json, os
num_features = 2
def model_fn(model_dir):
    with open(os.path.join(model_dir, "weights.json")) as f:
        return json.load(f)
def predict_fn(rows, model):
    return [model["a"] * r[0] + model["b"] * r[1] for r in rows]
"""


def _archive(tmp_path: Path, files: dict[str, bytes]) -> Path:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    path = tmp_path / "model.tar.gz"
    path.write_bytes(raw.getvalue())
    return path


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(worker, "SCRATCH", tmp_path / "scratch")
    monkeypatch.setattr(sys, "path", list(sys.path))  # the worker puts the script's folder first
    return tmp_path


def test_model_fn_loads_and_predict_fn_scores_each_row(scratch: Path) -> None:
    model = ScriptModel(_archive(scratch, {"inference.py": SCRIPT, "weights.json": b'{"a": 2, "b": -1}'}))
    assert model.width == 2
    assert model.predict(parse_csv(b"1,2\n3,0.5", model.width)) == [0.0, 5.5]


@pytest.mark.parametrize(
    ("files", "says"),
    [
        ({"weights.json": b"{}"}, "no inference.py"),
        ({"code/inference.py": b"def model_fn(d):\n    return 1\n"}, "no predict_fn"),
        (
            {
                "inference.py": b"def predict_fn(r, m):\n    return r\n"
                b"def model_fn(d):\n    raise RuntimeError('no weights')\n"
            },
            "no weights",
        ),
        ({"../inference.py": b"def predict_fn(r, m):\n    return r\n"}, ".."),
    ],
)
def test_a_broken_script_is_refused_at_load(scratch: Path, files: dict[str, bytes], says: str) -> None:
    with pytest.raises(Exception, match=says.replace(".", r"\.")):
        ScriptModel(_archive(scratch, files))


def test_predict_fn_must_answer_one_score_per_row(scratch: Path) -> None:
    model = ScriptModel(_archive(scratch, {"inference.py": b"def predict_fn(rows, model):\n    return [1.0]\n"}))
    assert model.width is None
    with pytest.raises(ValueError, match="1 scores for 2 rows"):
        model.predict([[1.0], [2.0]])


def test_without_num_features_rows_are_as_wide_as_the_first() -> None:
    assert parse_csv(b"1,2,3\n4,5,6", None) == [[1, 2, 3], [4, 5, 6]]
    assert parse_json(b"[[1, 2], [3, 4]]", None) == [[1, 2], [3, 4]]
    with pytest.raises(BadInput, match="row 2 has 2 columns"):
        parse_csv(b"1,2,3\n4,5", None)
