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

Reproducibility: not interrupted, the booster is byte-identical to a bare
``xgboost.train(params, dtrain, num_round)`` with the user's hyperparameters (the platform adds
none): metric lines and checkpoints come from training callbacks that only read the booster.
Interrupted (SIGTERM), a checkpoint of the current round is written and the run exits 75; the
resumed run continues from it with ``xgboost.train(..., xgb_model=checkpoint)``. Without
row/column sampling that equals the uninterrupted model; with sampling (``subsample`` or
``colsample_*`` below 1) it is deterministic for a given interruption round but differs from the
uninterrupted model, because XGBoost's samplers keep random state a booster file does not carry.
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
from strongroom.algorithms.xgboost import CHECKPOINT_NAME, DATA_LOADED, WAIT_FOR_INPUTS
from strongroom.algorithms.xgboost.archive import archive_bytes
from strongroom.algorithms.xgboost.data import load_dmatrix
from strongroom.algorithms.xgboost.hyperparameters import booster_params, resume_note, validate
from strongroom.core.errors import InvalidInput, StrongroomError

EXIT_BAD_INPUT = 2


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
        # The checkpoint is on its way. The sandbox repeats SIGTERM (1 s and 3 s later) in case the
        # first was lost; one landing while the interpreter shuts down (its handlers already reset)
        # would turn the orderly exit 75 into death by signal. SIGKILL after the grace still applies.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)


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


def format_metrics(epoch: int, evals_log: Mapping[str, Mapping[str, Any]]) -> str:
    """Round ``epoch``'s scores as the container prints them: ``[3]#011train-auc:0.81000#011validation-auc:0.79000``."""
    parts = [f"[{epoch}]"]
    for data, metrics in evals_log.items():
        for metric, scores in metrics.items():
            score = scores[-1]
            parts.append(f"{data}-{metric}:{float(score[0] if isinstance(score, tuple) else score):.5f}")
    return "#011".join(parts)


class _Progress(xgb.callback.TrainingCallback):
    """Prints the metric line of every round; changes nothing in the booster."""

    def __init__(self, log: Callable[[str], None]) -> None:
        super().__init__()
        self.log = log
        self.start = 0

    def before_training(self, model: Any) -> Any:
        self.start = model.num_boosted_rounds()
        return model

    def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
        if evals_log:
            self.log(format_metrics(self.start + epoch, evals_log))
        return False


class _Checkpoints(xgb.callback.TrainingCallback):
    """Writes a checkpoint every ``every`` rounds, and on ``stop`` writes one and ends training.

    It only reads the booster (``save_raw``), so training is the same with or without it. It runs
    after early stopping, so a checkpoint carries early stopping's state in the booster's attributes.
    """

    def __init__(self, paths: Paths, num_round: int, stop: threading.Event | None, log: Callable[[str], None]) -> None:
        super().__init__()
        self.paths, self.num_round, self.stop, self.log = paths, num_round, stop, log
        self.start = 0
        self.interrupted_at: int | None = None

    def before_training(self, model: Any) -> Any:
        self.start = model.num_boosted_rounds()
        return model

    def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
        done = self.start + epoch + 1
        if done >= self.num_round:
            return False  # the model itself is written next
        if self.stop is not None and self.stop.is_set():
            checkpoint.save(self.paths.checkpoints, done, bytes(model.save_raw("ubj")), name=CHECKPOINT_NAME)
            self.log(f"[strongroom] SIGTERM: checkpoint written at round {done}; exiting to be resumed")
            self.interrupted_at = done
            return True
        if done % self.paths.checkpoint_every == 0:
            checkpoint.save(self.paths.checkpoints, done, bytes(model.save_raw("ubj")), name=CHECKPOINT_NAME)
        return False


class _ResumableEarlyStopping(xgb.callback.EarlyStopping):
    """XGBoost's own early stopping; on a resumed booster it continues from the best score and
    round the checkpoint recorded (its attributes), instead of starting over."""

    def __init__(self, rounds: int) -> None:
        super().__init__(rounds=rounds)
        self._restore: tuple[float, int] | None = None

    def before_training(self, model: Any) -> Any:
        model = super().before_training(model)
        best, best_iteration = model.attr("best_score"), model.attr("best_iteration")
        if self.starting_round and best is not None and best_iteration is not None:
            self._restore = (float(best), self.starting_round - 1 - int(best_iteration))
        return model

    def _update_rounds(self, *, score: Any, name: str, metric: str, model: Any, epoch: int) -> bool:
        if self._restore is not None and not self.stopping_history:
            best, since_best = self._restore
            self.stopping_history = {name: {metric: [best]}}
            self.best_scores = {name: {metric: [best]}}
            self.current_rounds = since_best
        return bool(super()._update_rounds(score=score, name=name, metric=metric, model=model, epoch=epoch))


def train(
    paths: Paths,
    raw_hyperparameters: Mapping[str, Any],
    *,
    stop: threading.Event | None = None,
    log: Callable[[str], None] = print,
) -> Outcome:
    """Train (or resume) and write ``model.tar.gz``; returns what happened.

    Not interrupted, the booster is byte-identical to ``xgboost.train(params, dtrain, num_round)``
    with the user's hyperparameters and nothing added: checkpoints are written from a training
    callback that only reads the booster.

    Raises:
        InvalidInput: bad hyperparameters or data (before any boosting round runs).
    """
    values = validate(raw_hyperparameters)
    params = booster_params(values)
    num_round = int(values["num_round"])
    early = values.get("early_stopping_rounds")
    types = content_types(paths.config)
    started = time.monotonic()
    names = values.get("feature_names")
    dtrain = load_dmatrix(paths.train, types.get("train"), "train", params.get("nthread"), names)
    evals = [(dtrain, "train")]
    if paths.validation.is_dir():
        dvalid = load_dmatrix(paths.validation, types.get("validation"), "validation", params.get("nthread"), names)
        if dvalid.feature_names != dtrain.feature_names:
            raise InvalidInput(
                "the validation channel's feature names differ from the train channel's", field="inputs.validation"
            )
        evals.append((dvalid, "validation"))
    log(
        f"{DATA_LOADED}{time.monotonic() - started:.2f} s: "
        + ", ".join(f"{name} {d.num_row()} rows x {d.num_col()} features" for d, name in evals)
        + (f"; feature names: {', '.join(dtrain.feature_names)}" if dtrain.feature_names else "; no feature names")
    )
    if early and len(evals) < 2:
        raise InvalidInput(
            "early_stopping_rounds needs a validation channel", field="hyperparameters.early_stopping_rounds"
        )

    found = checkpoint.latest(paths.checkpoints, name=CHECKPOINT_NAME)
    resumed: xgb.Booster | None = None
    outcome = Outcome(rounds=found.step if found else 0, resumed_from=found.step if found else None)
    if found:
        resumed = xgb.Booster(model_file=bytearray(found.read_bytes()))
        if resumed.num_boosted_rounds() != found.step:
            raise InvalidInput("checkpoint round count does not match its manifest", field="checkpoints")
        log(
            f"[strongroom] resuming from checkpoint {found.path.name} (sha256 {found.sha256[:12]}): "
            + resume_note(values, found.step)
        )

    saver = _Checkpoints(paths, num_round, stop, log)
    callbacks: list[xgb.callback.TrainingCallback] = [_Progress(log)]
    if early:
        callbacks.append(_ResumableEarlyStopping(int(early)))
    callbacks.append(saver)
    booster = xgb.train(
        params,
        dtrain,
        num_boost_round=num_round - outcome.rounds,
        evals=evals,
        verbose_eval=False,
        callbacks=callbacks,
        xgb_model=resumed,
    )
    outcome.rounds = booster.num_boosted_rounds()
    if early:
        outcome.best_iteration = int(booster.attr("best_iteration") or 0)
    if saver.interrupted_at is not None:
        outcome.interrupted = True
        return outcome
    if early and outcome.rounds < num_round:
        log(f"[strongroom] early stopping: best round {outcome.best_iteration} ({booster.attr('best_score')})")
    paths.model.mkdir(parents=True, exist_ok=True)
    outcome.model_path = paths.model / "model.tar.gz"
    checkpoint.atomic_write(outcome.model_path, archive_bytes(bytes(booster.save_raw("ubj"))))
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
    # Started early by the job agent (its imports, above, overlapped the input download)? Then wait
    # for its word; end of file means it gave up (stopped, or the download failed).
    if os.environ.pop(WAIT_FOR_INPUTS, None) and sys.stdin.readline().strip() != "go":
        return 1
    stop = StopFlag()
    signal.signal(signal.SIGTERM, stop)
    paths: Paths | None = None
    try:
        paths = Paths.from_env()
        if os.environ.get("STRONGROOM_DASK_SCHEDULER"):
            from strongroom.algorithms.xgboost.distributed import train_distributed
            from strongroom.sandbox.inside.cluster import dask_client

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
    code = main()
    # The model (or checkpoint, or failure reason) is on disk and every line is printed: end without
    # the interpreter's teardown, which frees the whole data set and every module (a fifth of a
    # second at 1M rows) while the job waits to upload the model.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
