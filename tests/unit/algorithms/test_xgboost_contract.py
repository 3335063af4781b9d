"""The built-in XGBoost algorithm's contract: channels, formats, metrics, model archive, determinism."""

from __future__ import annotations

import io
import json
import tarfile
import threading
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import xgboost as xgb
from sklearn.datasets import dump_svmlight_file
from sklearn.metrics import roc_auc_score

from strongroom.algorithms.xgboost.archive import MODEL_MEMBER, read_model
from strongroom.algorithms.xgboost.serve import Predictor
from strongroom.algorithms.xgboost.train import Paths, read_hyperparameters, train
from strongroom.core.errors import InvalidInput
from tests.unit.algorithms.conftest import JobFactory, make_data

HPS = {"num_round": 12, "max_depth": 3, "eta": 0.3, "objective": "binary:logistic", "eval_metric": "auc", "seed": 7}


def run(paths: Paths, stop: threading.Event | None = None) -> list[str]:
    lines: list[str] = []
    train(paths, read_hyperparameters(paths.config), stop=stop, log=lines.append)
    return lines


def predictions(paths: Paths, x: np.ndarray) -> np.ndarray:
    return Predictor.from_archive(paths.model / "model.tar.gz").booster.predict(xgb.DMatrix(x))


def test_csv_label_first_trains_logs_metrics_and_writes_only_the_booster(job: JobFactory) -> None:
    paths = job(HPS)
    lines = run(paths)
    metric_lines = [line for line in lines if line[1:2].isdigit()]
    assert len(metric_lines) == 12
    assert metric_lines[3].startswith("[3]#011train-auc:") and "#011validation-auc:" in metric_lines[3]
    archive = paths.model / "model.tar.gz"
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        model = tar.extractfile(MODEL_MEMBER).read()  # type: ignore[union-attr]
    assert names == [MODEL_MEMBER]
    assert model.startswith(b"{") and b"learner" in model[:64]  # UBJSON, not pickle
    x, y = make_data(2000)
    assert roc_auc_score(y[1600:], predictions(paths, x[1600:])) > 0.75


def test_libsvm_and_parquet_channels(job: JobFactory, tmp_path: Path) -> None:
    x, y = make_data(2000)
    parquet = job(HPS, fmt="parquet", name="parquet")
    for directory, rows in ((parquet.train, slice(0, 1600)), (parquet.validation, slice(1600, None))):
        directory.mkdir(parents=True)
        table = pa.table({"label": y[rows], **{f"f{i}": x[rows, i] for i in range(x.shape[1])}})
        pq.write_table(table, directory / "part-0.parquet")
    run(parquet)
    csv = job(HPS)
    csv_model = tmp_path / "csv-model"
    run(Paths(**{**csv.__dict__, "model": csv_model, "checkpoints": tmp_path / "csv-ck"}))
    # Same numbers in CSV and Parquet: the same model.
    assert (csv_model / "model.tar.gz").read_bytes() == (parquet.model / "model.tar.gz").read_bytes()

    libsvm = Paths(**{**parquet.__dict__, "train": tmp_path / "svm/train", "validation": tmp_path / "svm/valid"})
    libsvm = Paths(**{**libsvm.__dict__, "model": tmp_path / "svm/model", "checkpoints": tmp_path / "svm/ck"})
    for directory, rows in ((libsvm.train, slice(0, 1600)), (libsvm.validation, slice(1600, None))):
        directory.mkdir(parents=True)
        dump_svmlight_file(x[rows], y[rows], str(directory / "data.libsvm"), zero_based=True)
    lines = run(libsvm)
    assert any("validation-auc" in line for line in lines)
    assert roc_auc_score(y[1600:], predictions(libsvm, x[1600:])) > 0.75


def test_declared_content_type_wins_over_extension(job: JobFactory) -> None:
    paths = job(HPS)
    (paths.config / "inputdataconfig.json").write_text(json.dumps({"train": {"ContentType": "application/x-parquet"}}))
    with pytest.raises(InvalidInput) as err:
        run(paths)
    assert err.value.field == "inputs.train"
    (paths.config / "inputdataconfig.json").write_text(json.dumps({"train": {"ContentType": "image/png"}}))
    with pytest.raises(InvalidInput, match="not supported"):
        run(paths)


def test_missing_train_channel_is_a_clear_error(job: JobFactory, tmp_path: Path) -> None:
    paths = job(HPS)
    with pytest.raises(InvalidInput) as err:
        run(Paths(**{**paths.__dict__, "train": tmp_path / "nowhere"}))
    assert err.value.field == "inputs.train"


def test_same_seed_same_bytes(job: JobFactory, tmp_path: Path) -> None:
    hps = {**HPS, "subsample": 0.8, "colsample_bytree": 0.8}
    first = job(hps)
    run(first)
    second = Paths(**{**first.__dict__, "model": tmp_path / "m2", "checkpoints": tmp_path / "c2"})
    run(second)
    assert (first.model / "model.tar.gz").read_bytes() == (second.model / "model.tar.gz").read_bytes()
    third = Paths(**{**first.__dict__, "model": tmp_path / "m3", "checkpoints": tmp_path / "c3"})
    (first.config / "hyperparameters.json").write_text(json.dumps({**hps, "seed": 8}))
    run(third)
    assert (first.model / "model.tar.gz").read_bytes() != (third.model / "model.tar.gz").read_bytes()


@pytest.mark.parametrize("sampling", [False, True], ids=["no-sampling", "row-and-column-sampling"])
def test_interrupted_and_resumed_equals_uninterrupted(job: JobFactory, tmp_path: Path, sampling: bool) -> None:
    hps = {**HPS, "num_round": 20}
    if sampling:
        hps |= {"subsample": 0.7, "colsample_bytree": 0.8, "colsample_bynode": 0.9}
    whole = job(hps, every=5)
    run(whole)
    interrupted = Paths(**{**whole.__dict__, "model": tmp_path / "m2", "checkpoints": tmp_path / "c2"})
    stop = threading.Event()
    lines: list[str] = []

    def log(line: str) -> None:
        lines.append(line)
        if line.startswith("[7]"):
            stop.set()  # as the SIGTERM handler would, in the middle of a segment

    outcome = train(interrupted, read_hyperparameters(interrupted.config), stop=stop, log=log)
    assert outcome.interrupted and not (interrupted.model / "model.tar.gz").exists()
    resumed_lines: list[str] = []
    resumed = train(interrupted, read_hyperparameters(interrupted.config), log=resumed_lines.append)
    assert resumed.resumed_from == (5 if sampling else 8)
    x, _ = make_data(2000)
    np.testing.assert_allclose(predictions(interrupted, x), predictions(whole, x), atol=1e-6, rtol=0)


def test_early_stopping(job: JobFactory) -> None:
    paths = job({**HPS, "num_round": 300, "eta": 0.9, "max_depth": 6, "early_stopping_rounds": 3})
    lines = run(paths)
    assert any("early stopping" in line for line in lines)
    assert len([line for line in lines if line[1:2].isdigit()]) < 300


def test_predictor_reads_csv_rows(job: JobFactory) -> None:
    paths = job(HPS)
    run(paths)
    predictor = Predictor.from_archive(paths.model / "model.tar.gz")
    x, _ = make_data(2000)
    rows = "\n".join(",".join(f"{v:.4f}" for v in row) for row in x[:5])
    np.testing.assert_allclose(predictor.predict_csv(rows), predictor.booster.predict(xgb.DMatrix(x[:5])), atol=1e-7)
    assert len(predictor.predict_to_csv(rows).splitlines()) == 5
    with pytest.raises(InvalidInput, match="needs 5 features"):
        predictor.predict_csv("1,2,3")
    with pytest.raises(InvalidInput):
        predictor.predict_csv("a,b,c,d,e")


def _tar(members: list[tuple[tarfile.TarInfo, bytes]]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for info, data in members:
            info.size = len(data) if info.isfile() else 0
            tar.addfile(info, io.BytesIO(data) if info.isfile() else None)
    return raw.getvalue()


def _file(name: str) -> tarfile.TarInfo:
    return tarfile.TarInfo(name)


def _link(name: str, target: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.SYMTYPE
    info.linkname = target
    return info


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ([(_file("../xgboost-model"), b"{}")], "climbs out of the archive"),
        ([(_file("/etc/xgboost-model"), b"{}")], "absolute path"),
        ([(_link("xgboost-model", "/etc/passwd"), b"")], "symbolic link"),
        ([(_file("xgboost-model"), b"\x80\x04\x95pickle")], "pickled models are refused"),
        ([(_file("other"), b"{}")], "no file 'xgboost-model'"),
    ],
)
def test_unsafe_archives_are_refused(members: list[tuple[tarfile.TarInfo, bytes]], message: str) -> None:
    from strongroom.core.errors import IntegrityError

    with pytest.raises(IntegrityError, match=message):
        read_model(_tar(members))


def test_oversized_member_is_refused() -> None:
    from strongroom.core.errors import PayloadTooLarge

    with pytest.raises(PayloadTooLarge):
        read_model(_tar([(_file("xgboost-model"), b"{" + b"0" * 5000)]), max_bytes=1000)
