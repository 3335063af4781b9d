"""Loading a booster from a training job's model.tar.gz: XGBoost formats only, archive checked."""

from __future__ import annotations

import gzip
import io
import pathlib
import pickle
import tarfile
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from strongroom.core.errors import InvalidInput
from strongroom.demo.data import FEATURES
from strongroom.explain import Explainer, load_booster, load_booster_from_tar


def model_tar(*members: tuple[str, bytes], link: tuple[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if link is not None:
            info = tarfile.TarInfo(link[0])
            info.type = tarfile.SYMTYPE
            info.linkname = link[1]
            tar.addfile(info)
    return buffer.getvalue()


def predictions(booster: xgb.Booster, rows: pd.DataFrame) -> np.ndarray:
    return booster.predict(xgb.DMatrix(rows[FEATURES]))


@pytest.mark.parametrize("fmt", ["ubj", "json"])
def test_a_training_jobs_model_tar_loads(booster: xgb.Booster, rows: pd.DataFrame, tmp_path: Path, fmt: str) -> None:
    path = tmp_path / "model.tar.gz"
    path.write_bytes(model_tar(("xgboost-model", bytes(booster.save_raw(fmt)))))
    loaded = load_booster_from_tar(path)
    np.testing.assert_allclose(predictions(loaded, rows), predictions(booster, rows), rtol=1e-6)
    assert loaded.feature_names == FEATURES
    with path.open("rb") as handle:  # any binary file object, e.g. a download stream
        from_stream = load_booster_from_tar(handle)
    np.testing.assert_allclose(predictions(from_stream, rows), predictions(booster, rows), rtol=1e-6)
    explainer = Explainer.from_model_tar(path)
    assert explainer.explain(rows.head(3)).exact


def test_the_only_file_or_a_named_member_is_the_model(booster: xgb.Booster) -> None:
    raw = bytes(booster.save_raw("ubj"))
    assert load_booster_from_tar(io.BytesIO(model_tar(("model.ubj", raw)))).num_features() == 23
    two = model_tar(("model.ubj", raw), ("README", b"notes"))
    with pytest.raises(InvalidInput, match="name the model member") as err:
        load_booster_from_tar(io.BytesIO(two))
    assert err.value.field == "member"
    assert load_booster_from_tar(io.BytesIO(two), member="model.ubj").num_features() == 23


def test_path_traversal_member_is_refused(booster: xgb.Booster) -> None:
    data = model_tar(("../xgboost-model", bytes(booster.save_raw("ubj"))))
    with pytest.raises(InvalidInput, match="climbs out of the archive"):
        load_booster_from_tar(io.BytesIO(data))


def test_absolute_path_member_is_refused(booster: xgb.Booster) -> None:
    data = model_tar(("/tmp/xgboost-model", bytes(booster.save_raw("ubj"))))
    with pytest.raises(InvalidInput, match="absolute path"):
        load_booster_from_tar(io.BytesIO(data))


def test_symlink_under_the_models_name_is_refused() -> None:
    data = model_tar(link=("xgboost-model", "/etc/passwd"))
    with pytest.raises(InvalidInput, match="symbolic link"):
        load_booster_from_tar(io.BytesIO(data))


class _Planted:
    """Unpickling this creates a file: the proof that a pickle ran code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (pathlib.Path.touch, (str(self.marker),))  # type: ignore[return-value]


def test_a_pickle_disguised_as_the_model_is_refused_and_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    payload = pickle.dumps(_Planted(marker))
    for name, data in [("pickle", payload), ("joblib", zlib.compress(payload)), ("protocol 0", pickle.dumps(1, 0))]:
        with pytest.raises(InvalidInput, match="not an XGBoost UBJSON or JSON model") as err:
            load_booster_from_tar(io.BytesIO(model_tar(("xgboost-model", data))))
        assert err.value.field == "model", name
        assert "save_model" in err.value.detail  # says how to fix it
    with pytest.raises(InvalidInput, match="Python pickle"):
        load_booster_from_tar(io.BytesIO(model_tar(("xgboost-model", payload))))
    assert not marker.exists()


def test_other_non_models_are_refused(booster: xgb.Booster) -> None:
    for data, message in [
        (b"", "empty"),
        (b"binf" + b"\x00" * 60, "legacy binary"),
        (gzip.compress(b"{}"), "gzip"),
        (b'{"not": "a model"}', "not a valid XGBoost model"),
    ]:
        with pytest.raises(InvalidInput, match=message):
            load_booster(data, "xgboost-model")
    with pytest.raises(InvalidInput, match="not an XGBoost"):
        load_booster(b"  \n" + bytes(booster.save_raw("json")))  # XGBoost itself would not read this
