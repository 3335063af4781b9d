"""The built-in XGBoost algorithm's contract: channels, formats, metrics, model archive, determinism."""

from __future__ import annotations

import io
import json
import re
import tarfile
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import xgboost as xgb
from sklearn.datasets import dump_svmlight_file
from sklearn.metrics import roc_auc_score

from strongroom.algorithms.xgboost.archive import MODEL_MEMBER, read_model
from strongroom.algorithms.xgboost.hyperparameters import validate
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
    names = [f"f{i}" for i in range(x.shape[1])]
    assert Predictor.from_archive(parquet.model / "model.tar.gz").booster.feature_names == names
    csv = job({**HPS, "feature_names": ",".join(names)})
    csv_model = tmp_path / "csv-model"
    run(Paths(**{**csv.__dict__, "model": csv_model, "checkpoints": tmp_path / "csv-ck"}))
    # Same numbers and names in headerless CSV + feature_names and in Parquet: the same model.
    assert (csv_model / "model.tar.gz").read_bytes() == (parquet.model / "model.tar.gz").read_bytes()

    libsvm = Paths(**{**parquet.__dict__, "train": tmp_path / "svm/train", "validation": tmp_path / "svm/valid"})
    libsvm = Paths(**{**libsvm.__dict__, "model": tmp_path / "svm/model", "checkpoints": tmp_path / "svm/ck"})
    for directory, rows in ((libsvm.train, slice(0, 1600)), (libsvm.validation, slice(1600, None))):
        directory.mkdir(parents=True)
        dump_svmlight_file(x[rows], y[rows], str(directory / "data.libsvm"), zero_based=True)
    lines = run(libsvm)
    assert any("validation-auc" in line for line in lines)
    assert roc_auc_score(y[1600:], predictions(libsvm, x[1600:])) > 0.75


FEATURES = ["LIMIT_BAL", "SEX", "PAY_0", "BILL_AMT1", "PAY_AMT1"]


def test_headerless_csv_gives_a_model_without_names_and_feature_names_names_it(job: JobFactory) -> None:
    plain = job(HPS, name="plain")
    run(plain)
    assert Predictor.from_archive(plain.model / "model.tar.gz").booster.feature_names is None
    named = job({**HPS, "feature_names": ", ".join(FEATURES)}, name="named")
    lines = run(named)
    assert "feature names: LIMIT_BAL, SEX, PAY_0, BILL_AMT1, PAY_AMT1" in lines[0]
    booster = Predictor.from_archive(named.model / "model.tar.gz").booster
    assert booster.feature_names == FEATURES
    # Names do not change the trees.
    x, _ = make_data(2000)
    np.testing.assert_array_equal(booster.predict(xgb.DMatrix(x, feature_names=FEATURES)), predictions(plain, x))


def test_a_header_row_names_the_features_and_equals_bare_xgboost(job: JobFactory) -> None:
    paths = job(HPS)
    for directory in (paths.train, paths.validation):
        rows = (directory / "part-0.csv").read_text()
        (directory / "part-0.csv").write_text("default payment next month," + ",".join(FEATURES) + "\n" + rows)
    run(paths)
    booster = Predictor.from_archive(paths.model / "model.tar.gz").booster
    assert booster.feature_names == FEATURES
    data = np.loadtxt(paths.train / "part-0.csv", delimiter=",", skiprows=1)
    expected = xgb.train(
        {k: v for k, v in validate(HPS).items() if k != "num_round"},
        xgb.DMatrix(data[:, 1:], label=data[:, 0], feature_names=FEATURES),
        HPS["num_round"],
    )
    assert booster_bytes(paths) == bytes(expected.save_raw("ubj"))


@pytest.mark.parametrize(
    ("names", "words"),
    [("A,B", "has 2 names but channel 'train' has 5 features"), ("A,A,B,C,D", "distinct"), ("A,B,C,D,E[1]", "invalid")],
)
def test_bad_feature_names_are_refused_naming_the_hyperparameter(job: JobFactory, names: str, words: str) -> None:
    with pytest.raises(InvalidInput, match=re.escape(words)) as err:
        run(job({**HPS, "feature_names": names}))
    assert err.value.field == "hyperparameters.feature_names"


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


# The workshop's hyperparameters (plus column sampling), as the notebook sends them.
WORKSHOP = {
    "max_depth": "5",
    "eta": "0.2",
    "gamma": "4",
    "min_child_weight": "6",
    "subsample": "0.8",
    "colsample_bytree": "0.8",
    "objective": "binary:logistic",
    "num_round": "100",
    "verbosity": "0",
}


def booster_bytes(paths: Paths) -> bytes:
    return read_model(paths.model / "model.tar.gz")


def bare(paths: Paths, hyperparameters: dict[str, Any]) -> bytes:
    """``xgboost.train`` run bare on the job's CSV files: what a data scientist would run by hand."""
    train_rows = np.loadtxt(paths.train / "part-0.csv", delimiter=",")
    valid_rows = np.loadtxt(paths.validation / "part-0.csv", delimiter=",")
    dtrain = xgb.DMatrix(train_rows[:, 1:], label=train_rows[:, 0])
    dvalid = xgb.DMatrix(valid_rows[:, 1:], label=valid_rows[:, 0])
    values = validate(hyperparameters)
    params = {k: v for k, v in values.items() if k not in ("num_round", "early_stopping_rounds")}
    early = values.get("early_stopping_rounds")
    if early:
        booster = xgb.train(
            params,
            dtrain,
            values["num_round"],
            evals=[(dvalid, "validation")],
            early_stopping_rounds=early,
            verbose_eval=False,
        )
    else:
        booster = xgb.train(params, dtrain, values["num_round"])
    return bytes(booster.save_raw("ubj"))


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"colsample_bylevel": "0.7", "colsample_bynode": "0.9", "seed": "11"},
        {"eval_metric": "auc,logloss", "tree_method": "approx"},
        {"num_round": "300", "eta": "0.6", "early_stopping_rounds": "4", "eval_metric": "logloss"},
    ],
    ids=["workshop", "all-column-sampling", "eval-metrics", "early-stopping"],
)
@pytest.mark.parametrize("every", [1, 7, 1000])
def test_uninterrupted_job_is_byte_identical_to_bare_xgboost_train(
    job: JobFactory, extra: dict[str, str], every: int
) -> None:
    hyperparameters = {**WORKSHOP, **extra}
    paths = job(hyperparameters, every=every)
    lines = run(paths)
    assert booster_bytes(paths) == bare(paths, hyperparameters)
    metric_lines = [line for line in lines if line[1:2].isdigit()]
    assert metric_lines and "#011validation-" in metric_lines[-1]
    if "early_stopping_rounds" in extra:
        assert len(metric_lines) < 300 and any("early stopping" in line for line in lines)


def interrupt_at(paths: Paths, round_: int) -> list[str]:
    """Train until round ``round_`` is done, then stop as the SIGTERM handler would; then resume."""
    stop = threading.Event()
    lines: list[str] = []

    def log(line: str) -> None:
        lines.append(line)
        if line.startswith(f"[{round_ - 1}]"):
            stop.set()

    outcome = train(paths, read_hyperparameters(paths.config), stop=stop, log=log)
    assert outcome.interrupted and not (paths.model / "model.tar.gz").exists()
    resumed_lines: list[str] = []
    resumed = train(paths, read_hyperparameters(paths.config), log=resumed_lines.append)
    assert resumed.resumed_from == round_ and not resumed.interrupted
    return resumed_lines


def test_resumed_without_sampling_equals_the_uninterrupted_model(job: JobFactory, tmp_path: Path) -> None:
    hyperparameters = {k: v for k, v in WORKSHOP.items() if k not in ("subsample", "colsample_bytree")}
    hyperparameters |= {"eval_metric": "auc", "early_stopping_rounds": "5", "eta": "0.5"}
    whole = job(hyperparameters, every=1000)
    done = train(whole, read_hyperparameters(whole.config), log=lambda _: None)
    assert done.best_iteration is not None and done.rounds < 100
    # Interrupted after the best round but before early stopping ends the run.
    stop_at = done.best_iteration + 3
    assert stop_at < done.rounds
    interrupted = Paths(**{**whole.__dict__, "model": tmp_path / "m2", "checkpoints": tmp_path / "c2"})
    lines = interrupt_at(interrupted, stop_at)
    assert any("the model equals an uninterrupted run" in line for line in lines)
    # Early stopping resumed from the checkpoint's best score and round: it stops where the whole run did.
    assert booster_bytes(interrupted) == booster_bytes(whole)


def test_resumed_with_sampling_is_deterministic_but_differs_from_uninterrupted(job: JobFactory, tmp_path: Path) -> None:
    whole = job(WORKSHOP, every=10)
    run(whole)
    runs = []
    for name in ("a", "b"):
        paths = Paths(**{**whole.__dict__, "model": tmp_path / name / "m", "checkpoints": tmp_path / name / "c"})
        lines = interrupt_at(paths, 37)
        assert any("not byte-identical to an uninterrupted run" in line for line in lines)
        runs.append(booster_bytes(paths))
    # Same interruption round, same model; but not the uninterrupted model (XGBoost's samplers' state is lost).
    assert runs[0] == runs[1]
    assert runs[0] != booster_bytes(whole)
    other = Paths(**{**whole.__dict__, "model": tmp_path / "c" / "m", "checkpoints": tmp_path / "c" / "c"})
    interrupt_at(other, 50)
    assert booster_bytes(other) not in (runs[0], booster_bytes(whole))


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
    named = job({**HPS, "feature_names": ",".join(FEATURES)}, name="named")
    run(named)
    # A model that knows its feature names still takes headerless rows (batch transform, endpoints).
    by_name = Predictor.from_archive(named.model / "model.tar.gz")
    np.testing.assert_array_equal(by_name.predict_csv(rows), predictor.predict_csv(rows))
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
