"""Built-in XGBoost training entry point (in a real sandbox) vs bare ``xgboost.train`` on the same data.

Both sides start a fresh Python process, read the same file from disk, train the same
parameters with a train-set metric printed every round, and write the model; the time is
the wall clock of the whole process. Ours runs ``python -m strongroom.algorithms.xgboost.train``
inside bubblewrap (read-only binds of the data, tmpfs scratch, rlimits) and writes
``model.tar.gz`` plus a checkpoint every 10 rounds; the peer is a plain script.

    .venv/bin/python benchmarks/jobs_algorithm.py            # 1,000,000 rows
    .venv/bin/python benchmarks/jobs_algorithm.py --smoke    # CI size

Ours and the peer alternate (``_common.alternate``), at least 3 runs each; medians are compared.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from _common import alternate, figure, parser, repeats, save, version

from strongroom.sandbox import Limits, Mount, SandboxRunner, SandboxSpec, SandboxStatus, discover
from strongroom.sandbox.cgroups import Cgroups

PEER_PHASES = "PHASES "
# The workshop's hyperparameters (notebook 01, step 12); nthread is left to XGBoost on both sides (all
# the cores the process may use: the same 2 on this machine inside the sandbox and bare).
WORKSHOP: dict[str, object] = {
    "max_depth": 5,
    "eta": 0.2,
    "gamma": 4,
    "min_child_weight": 6,
    "subsample": 0.8,
    "objective": "binary:logistic",
    "verbosity": 0,
}
ROUNDS = 100  # the workshop's num_round
PEER = """
import json, os, sys, time
t0 = time.perf_counter()
import pandas as pd, xgboost as xgb
path, fmt, params, rounds, out = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
t1 = time.perf_counter()
frame = pd.read_csv(path, header=None, engine="pyarrow") if fmt == "csv" else pd.read_parquet(path)
data = frame.to_numpy(dtype="float32")
dtrain = xgb.DMatrix(data[:, 1:], label=data[:, 0])
t2 = time.perf_counter()
booster = xgb.train(params, dtrain, rounds, evals=[(dtrain, "train")], verbose_eval=True)
t3 = time.perf_counter()
booster.save_model(out)
fd = os.open(out, os.O_RDONLY)
os.fsync(fd)  # like ours: the model is durable when the run ends
os.close(fd)
t4 = time.perf_counter()
phases = {"imports": t1 - t0, "parsing": t2 - t1, "training": t3 - t2, "saving (fsync)": t4 - t3}
print("PHASES " + json.dumps(phases), file=sys.stderr)
"""


def make_data(directory: Path, rows: int, features: int, fmt: str) -> Path:
    rng = np.random.default_rng(42)
    x = rng.normal(size=(rows, features)).astype(np.float32)
    logit = 1.2 * x[:, 0] - 0.8 * x[:, 1] + 0.5 * x[:, 2] * x[:, 3] + 0.3 * np.sin(3 * x[:, 4])
    y = (logit + rng.logistic(size=rows) > 0).astype(np.float32)
    table = pa.table({"label": y, **{f"f{i}": x[:, i] for i in range(features)}})
    directory.mkdir(parents=True)
    if fmt == "csv":
        path = directory / "train.csv"
        pacsv.write_csv(table, path, write_options=pacsv.WriteOptions(include_header=False))
    else:
        path = directory / "train.parquet"
        pq.write_table(table, path)
    return path


def run_ours(work: Path, hyperparameters: dict[str, str], sandboxed: bool) -> float:
    config = work / "config"
    config.mkdir(exist_ok=True)
    (config / "hyperparameters.json").write_text(json.dumps(hyperparameters))
    model, checkpoints = work / "ours-model", work / "ours-checkpoints"
    shutil.rmtree(model, ignore_errors=True)
    shutil.rmtree(checkpoints, ignore_errors=True)
    model.mkdir()
    checkpoints.mkdir()
    command = ("python", "-m", "strongroom.algorithms.xgboost.train")
    started = time.perf_counter()
    if sandboxed:
        spec = SandboxSpec(
            command=command,
            python=discover(),
            mounts=(
                Mount(str(work / "data"), "/opt/ml/input/data/train"),
                Mount(str(config), "/opt/ml/input/config"),
                Mount(str(model), "/opt/ml/model", writable=True),
                Mount(str(checkpoints), "/opt/ml/checkpoints", writable=True),
            ),
            limits=Limits(memory_bytes=16 * 1024**3, max_runtime_seconds=3600),
        )
        result = SandboxRunner().run(spec)
        if result.status is not SandboxStatus.COMPLETED:
            raise SystemExit(f"sandboxed training failed: {result.reason}")
    else:
        env = {
            **os.environ,
            "SM_CHANNEL_TRAIN": str(work / "data"),
            "SM_CHANNEL_VALIDATION": str(work / "none"),
            "SM_INPUT_CONFIG_DIR": str(config),
            "SM_MODEL_DIR": str(model),
            "SM_CHECKPOINT_DIR": str(checkpoints),
        }
        subprocess.run([sys.executable, "-m", command[2]], env=env, check=True, stdout=subprocess.DEVNULL)
    elapsed = time.perf_counter() - started
    assert (model / "model.tar.gz").stat().st_size > 0
    return elapsed


def run_in_own_cgroup(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[Any]:
    """Run ``command`` in a cgroup of its own, as every sandbox runs, when the host gives cgroups.

    The CPU scheduler weighs a cgroup as one whole against the other processes: a sandbox (its own
    cgroup) gets a share of a loaded machine that a bare process (one process among many, and
    under ``nice`` if the benchmark runs under it) does not. The peer gets the same standing.
    """
    cgroups = Cgroups.detect()
    name = f"bench-peer-{os.getpid()}-{time.monotonic_ns()}"
    group = cgroups.create(name, memory_bytes=None, processes=None, cpus=None)
    if group is None:
        return subprocess.run(command, check=True, **kwargs)
    argv, env = group.wrap(command)
    try:
        return subprocess.run(argv, env={**os.environ, **env}, check=True, **kwargs)
    finally:
        group.remove()


def run_peer(work: Path, path: Path, fmt: str, params: dict[str, object], rounds: int) -> float:
    started = time.perf_counter()
    run_in_own_cgroup(
        [sys.executable, "-c", PEER, str(path), fmt, json.dumps(params), str(rounds), str(work / "peer.ubj")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def main() -> None:
    args_parser = parser(__doc__ or "")
    args_parser.add_argument("--rows", type=int, default=1_000_000)
    args_parser.add_argument("--features", type=int, default=10)
    args_parser.add_argument("--rounds", type=int, default=ROUNDS)
    args_parser.add_argument("--format", choices=("csv", "parquet"), default="csv")
    args_parser.add_argument("--no-sandbox", action="store_true", help="run our entry point without bubblewrap")
    args = args_parser.parse_args()
    rows, rounds = (20_000, 10) if args.smoke else (args.rows, args.rounds)
    params = WORKSHOP
    hyperparameters = {k: str(v) for k, v in params.items()} | {"num_round": str(rounds)}
    with tempfile.TemporaryDirectory(prefix="sr-bench-") as tmp:
        work = Path(tmp)
        path = make_data(work / "data", rows, args.features, args.format)
        runs = alternate(
            lambda: run_ours(work, hyperparameters, sandboxed=not args.no_sandbox),
            lambda: run_peer(work, path, args.format, params, rounds),
            repeats(args),
        )
    peer_description = "fresh python: pandas.read_csv(engine=pyarrow) + xgboost.train(evals=train) + save_model"
    result = figure(
        "xgboost_train",
        "s",
        runs,
        better="lower",
        what=f"XGBoost training entry point, {rows:,} rows, {'sandboxed' if not args.no_sandbox else 'bare'}",
        peer_name="bare xgboost.train",
    )
    compared = {
        "ours": "python -m strongroom.algorithms.xgboost.train" + (" in bubblewrap" if not args.no_sandbox else ""),
        "peer": peer_description,
        "xgboost": version("xgboost"),
        "sizes": {"rows": rows, "features": args.features, "rounds": rounds, "format": args.format},
        "sandboxed": not args.no_sandbox,
        "cgroups": "each side in a cgroup of its own (ours: the sandbox's; the peer: one made for it), so "
        "neither gets a larger CPU share of the loaded machine",
        "durability": "both fsync the model",
        "file format": args.format,
        "cpus_usable": len(os.sched_getaffinity(0)),
    }
    print(f"summary: {save('jobs_algorithm', [result], args.smoke, compared=compared)}")


if __name__ == "__main__":
    main()
