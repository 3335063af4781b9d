"""Jobs through the real platform against the same work done bare, in the same run:

(a) a trivial processing job (create -> Completed, sandbox, agent, socket) vs the same script
    run as a bare ``python script.py``: the platform's fixed cost per job;
(b) the built-in XGBoost training job on 1,000,000 rows (inputs decrypted into the sandbox's
    tmpfs, model encrypted on upload) vs bare ``xgboost.train`` on the same file;
(c) the same training on a 2-worker Dask cluster (TLS) vs 1 worker: the distributed speed-up.

    .venv/bin/python benchmarks/jobs.py [--smoke]
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import parser, report, save
from jobs_algorithm import PEER, make_data

from strongroom.core import launcher
from strongroom.core.config import Config
from strongroom.platform import initialize
from strongroom.sdk.session import Session

PARAMS = {"max_depth": 6, "eta": 0.3, "objective": "binary:logistic", "eval_metric": "auc", "seed": 0}


def _wait(session: Session, name: str, timeout: float = 3600) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        job = session.jobs.describe("risk", name)
        if job.status in ("Completed", "Failed", "Stopped"):
            if job.status != "Completed":
                raise RuntimeError(f"{name}: {job.status} {job.failure_reason}")
            return time.monotonic() - start
        time.sleep(0.05)
    raise TimeoutError(name)


def _job(session: Session, name: str, **spec: Any) -> float:
    body = {"name": name, "team": "risk", "security": {"network_isolation": True, "volume_kms_key": "risk-key"}, **spec}
    start = time.monotonic()
    session.jobs.create(body)
    _wait(session, name)
    return time.monotonic() - start


def main() -> None:
    args = parser(__doc__ or "").parse_args()
    rows, rounds, repeats = (20_000, 10, 1) if args.smoke else (1_000_000, 100, 3)
    work = Path(tempfile.mkdtemp(prefix="sr-bench-jobs-"))
    config = Config(home=work / "home", port=0)
    token = initialize(config).token.secret
    server = launcher.start(config)
    figures = []
    try:
        admin = Session(url=server.url, token=token, ca=server.ca)
        admin.teams.create("risk")
        admin.users.create("alice")
        admin.teams.add_member("risk", "alice", "DataScientist")
        admin.teams.add_member("risk", "admin", "DataScienceAdmin")
        admin.keys.create("risk", "risk-key")
        alice = Session(url=server.url, token=admin.tokens.create("bench", user="alice").secret, ca=server.ca)
        alice.buckets.create("risk-data", "risk", key="risk-key")

        script = work / "hello.py"
        script.write_text("print('hello from the job')\n")
        alice.buckets.put_object("risk-data", "code/hello.py", script)
        ours = [
            _job(
                alice,
                f"hello-{i}",
                kind="processing",
                code={"source": "sr://risk-data/code/hello.py"},
                resources={"scratch_mb": 64},
            )
            for i in range(repeats + 2)
        ][2:] or [0.0]
        bare = []
        for _ in range(max(repeats, 1)):
            start = time.monotonic()
            subprocess.run([sys.executable, str(script)], check=True, capture_output=True)
            bare.append(time.monotonic() - start)
        figures.append(
            report(
                "jobs_trivial_processing",
                statistics.median(ours),
                statistics.median(bare),
                "s",
                added_seconds=statistics.median(ours) - statistics.median(bare),
            )
        )

        data = make_data(work / "data", rows, 10, "csv")
        alice.buckets.put_object("risk-data", "train/train.csv", data)
        hyper = {**PARAMS, "num_round": rounds}
        training = {
            "kind": "training",
            "code": {"algorithm": "xgboost"},
            "hyperparameters": hyper,
            "inputs": [{"name": "train", "source": "sr://risk-data/train", "content_type": "text/csv"}],
            "outputs": [{"name": "model", "destination": "sr://risk-data/models"}],
        }
        ours_train, bare_train = [], []
        for i in range(repeats):
            ours_train.append(_job(alice, f"xgb-{i}", resources={"scratch_mb": 2048, "cpus": 2}, **training))
            start = time.monotonic()
            subprocess.run(
                [sys.executable, "-c", PEER, str(data), "csv", json.dumps(PARAMS), str(rounds), str(work / "peer.ubj")],
                check=True,
                capture_output=True,
            )
            bare_train.append(time.monotonic() - start)
        figures.append(report("jobs_xgboost_training", min(ours_train), min(bare_train), "s", rows=rows))

        dask = [
            _job(alice, f"xgb-dask-{i}", resources={"scratch_mb": 2048, "cpus": 2, "instance_count": 2}, **training)
            for i in range(repeats)
        ]
        single = min(ours_train)
        figures.append(
            report(
                "jobs_dask_2_workers_throughput",
                rows / min(dask),
                rows / single,
                "rows/s",
                note="ratio = speed-up of 2 Dask workers over 1 on this 2-core machine",
            )
        )
        print(f"summary: {save('jobs', figures, args.smoke, rows=rows, rounds=rounds, repeats=repeats)}")
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
