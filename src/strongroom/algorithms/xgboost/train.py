"""Entry point of the built-in XGBoost algorithm: ``python -m strongroom.algorithms.xgboost.train``.

The managed XGBoost container's contract, storage-agnostic (it only sees local paths):

=============================  ==========================================  =========================
what                           where (environment variable)                default
=============================  ==========================================  =========================
training data                  ``SM_CHANNEL_TRAIN``                        /opt/ml/input/data/train
validation data (optional)     ``SM_CHANNEL_VALIDATION``                   /opt/ml/input/data/validation
hyperparameters, channel conf  ``SM_INPUT_CONFIG_DIR``                     /opt/ml/input/config
model output                   ``SM_MODEL_DIR``                            /opt/ml/model
failure reason                 ``SM_OUTPUT_DIR`` (file ``failure``)        /opt/ml/output
checkpoints                    ``SM_CHECKPOINT_DIR``                       /opt/ml/checkpoints
checkpoint every N rounds      ``STRONGROOM_CHECKPOINT_EVERY``             10
=============================  ==========================================  =========================

Per-round metrics are printed as ``[3]#011train-auc:0.81000#011validation-auc:0.79000``.
Exit codes: 0 done, 75 interrupted (SIGTERM; a checkpoint is on disk), 2 bad input, 1 other.

Reproducibility: training runs in segments of N rounds; each segment starts from the
serialized booster of the previous one, exactly as a resumed run starts from its
checkpoint, and with ``seed_per_iteration`` the sampling of round *i* depends only on
(seed, i). So an interrupted-and-resumed run builds the same trees as an uninterrupted one.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import xgboost as xgb

from strongroom.algorithms import checkpoint
from strongroom.algorithms.xgboost.archive import archive_bytes
from strongroom.algorithms.xgboost.data import load_dmatrix
from strongroom.algorithms.xgboost.hyperparameters import MAXIMIZE, booster_params, validate
from strongroom.core.errors import InvalidInput, StrongroomError

CHECKPOINT_NAME = "xgboost"
EXIT_BAD_INPUT = 2
_SAMPLING = ("subsample", "colsample_bytree", "colsample_bylevel", "colsample_bynode")


@dataclass(frozen=True)
class Paths:
    """Where the algorithm reads and writes, from ``SM_*`` variables with /opt/ml defaults."""

    train: Path
    validation: Path
    config: Path
    model: Path
    output: Path
    checkpoints: Path
    checkpoint_every: int = 10

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Paths:
        e = os.environ if env is None else env
        every = e.get("STRONGROOM_CHECKPOINT_EVERY", "10")
        if not every.isdigit() or int(every) < 1:
            raise InvalidInput("STRONGROOM_CHECKPOINT_EVERY must be a positive integer", field="environment")
        return cls(
            train=Path(e.get("SM_CHANNEL_TRAIN", "/opt/ml/input/data/train")),
            validation=Path(e.get("SM_CHANNEL_VALIDATION", "/opt/ml/input/data/validation")),
            config=Path(e.get("SM_INPUT_CONFIG_DIR", "/opt/ml/input/config")),
            model=Path(e.get("SM_MODEL_DIR", "/opt/ml/model")),
            output=Path(e.get("SM_OUTPUT_DIR", "/opt/ml/output")),
            checkpoints=Path(e.get("SM_CHECKPOINT_DIR", checkpoint.DEFAULT_DIR)),
            checkpoint_every=int(every),
        )


@dataclass
class Outcome:
    """What a training run did."""

    rounds: int
    interrupted: bool = False
    resumed_from: int | None = None
    best_iteration: int | None = None
    model_path: Path | None = None


@dataclass
class StopFlag:
    """Set by the SIGTERM handler; the loop checks it after every round."""

    event: threading.Event = field(default_factory=threading.Event)

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.event.set()


def read_hyperparameters(config_dir: Path, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Raw hyperparameters from ``hyperparameters.json`` (or ``SM_HPS``), not yet validated."""
    path = config_dir / "hyperparameters.json"
    e = os.environ if env is None else env
    try:
        data = json.loads(path.read_text()) if path.is_file() else json.loads(e.get("SM_HPS", "{}"))
    except ValueError as exc:
        raise InvalidInput(f"{path.name} is not valid JSON: {exc}", field="hyperparameters") from exc
    if not isinstance(data, dict):
        raise InvalidInput("hyperparameters must be a JSON object", field="hyperparameters")
    return data


def content_types(config_dir: Path, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """Declared content type per channel from ``inputdataconfig.json`` or ``SM_CHANNEL_<X>_CONTENT_TYPE``."""
    e = os.environ if env is None else env
    found: dict[str, str] = {}
    path = config_dir / "inputdataconfig.json"
    if path.is_file():
        try:
            config = json.loads(path.read_text())
        except ValueError as exc:
            raise InvalidInput(f"inputdataconfig.json is not valid JSON: {exc}", field="inputs") from exc
        for channel, conf in config.items():
            if isinstance(conf, dict) and conf.get("ContentType"):
                found[channel] = str(conf["ContentType"])
    for channel in ("train", "validation"):
        declared = e.get(f"SM_CHANNEL_{channel.upper()}_CONTENT_TYPE")
        if declared:
            found[channel] = declared
    return found


def format_metrics(line: str) -> str:
    """XGBoost's ``[3]\\ttrain-auc:0.8100...`` as the container prints it: ``[3]#011train-auc:0.81000``."""
    head, *pairs = line.strip().split("\t")
    parts = [head]
    for pair in pairs:
        name, _, value = pair.rpartition(":")
        parts.append(f"{name}:{float(value):.5f}")
    return "#011".join(parts)


def _last_metric(line: str) -> tuple[str, float]:
    name, _, value = line.strip().split("\t")[-1].rpartition(":")
    return name, float(value)


def train(
    paths: Paths,
    raw_hyperparameters: Mapping[str, Any],
    *,
    stop: threading.Event | None = None,
    log: Callable[[str], None] = print,
) -> Outcome:
    """Train (or resume) and write ``model.tar.gz``; returns what happened.

    Raises:
        InvalidInput: bad hyperparameters or data (before any boosting round runs).
    """
    values = validate(raw_hyperparameters)
    params = booster_params(values)
    num_round = int(values["num_round"])
    early = values.get("early_stopping_rounds")
    types = content_types(paths.config)
    started = time.monotonic()
    dtrain = load_dmatrix(paths.train, types.get("train"), "train", params.get("nthread"))
    evals = [(dtrain, "train")]
    if paths.validation.is_dir():
        evals.append(
            (load_dmatrix(paths.validation, types.get("validation"), "validation", params.get("nthread")), "validation")
        )
    log(
        f"[strongroom] data loaded in {time.monotonic() - started:.2f} s: "
        + ", ".join(f"{name} {d.num_row()} rows x {d.num_col()} features" for d, name in evals)
    )
    if early and len(evals) < 2:
        raise InvalidInput(
            "early_stopping_rounds needs a validation channel", field="hyperparameters.early_stopping_rounds"
        )
    resumable_anywhere = all(float(values.get(name, 1)) == 1.0 for name in _SAMPLING)

    found = checkpoint.latest(paths.checkpoints, name=CHECKPOINT_NAME)
    model: bytes | None = found.read_bytes() if found else None
    outcome = Outcome(rounds=found.step if found else 0, resumed_from=found.step if found else None)
    if found:
        log(
            f"[strongroom] resuming from checkpoint {found.path.name} at round {found.step} "
            f"(sha256 {found.sha256[:12]})"
        )

    stopped_early = False
    while outcome.rounds < num_round and not stopped_early:
        booster = xgb.Booster(params, [d for d, _ in evals], model_file=bytearray(model) if model else None)
        if booster.num_boosted_rounds() != outcome.rounds:
            raise InvalidInput("checkpoint round count does not match its manifest", field="checkpoints")
        best = booster.attr("best_score")
        best_score = float(best) if best is not None else None
        best_iteration = int(booster.attr("best_iteration") or 0)
        segment_end = min(num_round, (outcome.rounds // paths.checkpoint_every + 1) * paths.checkpoint_every)
        while outcome.rounds < segment_end:
            booster.update(dtrain, iteration=outcome.rounds)
            line = booster.eval_set(evals, outcome.rounds)
            log(format_metrics(line))
            if early:
                metric, score = _last_metric(line)
                maximize = metric.split("-", 1)[-1].split("@")[0] in MAXIMIZE
                if best_score is None or (score > best_score if maximize else score < best_score):
                    best_score, best_iteration = score, outcome.rounds
                booster.set_attr(best_score=repr(best_score), best_iteration=str(best_iteration))
            outcome.rounds += 1
            if early and outcome.rounds - 1 - best_iteration >= early:
                log(f"[strongroom] early stopping: best round {best_iteration} ({best_score:.5f})")
                stopped_early = True
                break
            if stop is not None and stop.is_set():
                break
        outcome.best_iteration = best_iteration if early else None
        model = bytes(booster.save_raw("ubj"))
        at_boundary = outcome.rounds % paths.checkpoint_every == 0
        if stop is not None and stop.is_set() and outcome.rounds < num_round and not stopped_early:
            if at_boundary or resumable_anywhere:
                checkpoint.save(paths.checkpoints, outcome.rounds, model, name=CHECKPOINT_NAME)
                log(f"[strongroom] SIGTERM: checkpoint written at round {outcome.rounds}; exiting to be resumed")
            else:
                kept = checkpoint.latest(paths.checkpoints, name=CHECKPOINT_NAME)
                log(
                    f"[strongroom] SIGTERM: row/column sampling is on, so training resumes from the last segment "
                    f"checkpoint (round {kept.step if kept else 0}) to stay identical to an uninterrupted run"
                )
            outcome.interrupted = True
            return outcome
        if at_boundary and outcome.rounds < num_round:
            checkpoint.save(paths.checkpoints, outcome.rounds, model, name=CHECKPOINT_NAME)

    assert model is not None
    paths.model.mkdir(parents=True, exist_ok=True)
    outcome.model_path = paths.model / "model.tar.gz"
    checkpoint.atomic_write(outcome.model_path, archive_bytes(model))
    log(f"[strongroom] training complete: {outcome.rounds} rounds; model written to {outcome.model_path}")
    return outcome


def _write_failure(paths: Paths | None, message: str) -> None:
    if paths is None:
        return
    try:
        paths.output.mkdir(parents=True, exist_ok=True)
        (paths.output / "failure").write_text(message + "\n")
    except OSError:
        pass  # the message is on stderr too


def main(argv: list[str] | None = None) -> int:
    """Run the algorithm with the environment's paths; returns the process exit code."""
    stop = StopFlag()
    signal.signal(signal.SIGTERM, stop)
    paths: Paths | None = None
    try:
        paths = Paths.from_env()
        if os.environ.get("STRONGROOM_DASK_SCHEDULER"):
            from strongroom.algorithms.xgboost.distributed import train_distributed
            from strongroom.jobs.cluster import dask_client

            with dask_client() as client:
                train_distributed(paths, read_hyperparameters(paths.config), client, log=lambda s: print(s, flush=True))
            return 0
        outcome = train(paths, read_hyperparameters(paths.config), stop=stop.event, log=lambda s: print(s, flush=True))
    except StrongroomError as exc:
        field_note = f" (field: {exc.field})" if exc.field else ""
        print(f"[strongroom] error: {exc.detail}{field_note}", file=sys.stderr, flush=True)
        _write_failure(paths, exc.detail)
        return EXIT_BAD_INPUT if isinstance(exc, InvalidInput) else 1
    except Exception as exc:
        traceback.print_exc()
        _write_failure(paths, f"{type(exc).__name__}: {exc}")
        return 1
    return checkpoint.EXIT_INTERRUPTED if outcome.interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
