"""Jobs through the real platform against the same work done bare, in the same run:

(a) a trivial processing job (create -> Completed, sandbox, agent, socket) vs the same script
    run as a bare ``python script.py``: the platform's fixed cost per job;
(b) the built-in XGBoost training job on 1,000,000 rows (inputs decrypted into the sandbox's
    tmpfs, model encrypted on upload) vs bare ``xgboost.train`` on the same file;
(c) the same training on a 2-worker Dask cluster (TLS) vs 1 worker: the distributed speed-up.

    .venv/bin/python benchmarks/jobs.py [--smoke]

Each pair alternates (``_common.alternate``), at least 3 runs each.
"""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import alternate, figure, parser, repeats, save, version
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
    rows, rounds = (20_000, 10) if args.smoke else (1_000_000, 100)
    runs = repeats(args)
    work = Path(tempfile.mkdtemp(prefix="sr-bench-jobs-"))
    config = Config(home=work / "home", port=0)
    token = initialize(config).token.secret
    server = launcher.start(config)
    figures = []
    count = itertools.count()
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

        def hello() -> float:
            spec = {"code": {"source": "sr://risk-data/code/hello.py"}, "resources": {"scratch_mb": 64}}
            return _job(alice, f"hello-{next(count)}", kind="processing", **spec)

        def bare_hello() -> float:
            start = time.monotonic()
            subprocess.run([sys.executable, str(script)], check=True, capture_output=True)
            return time.monotonic() - start

        hello()
        hello()  # warm: the first jobs pay for imports and caches
        trivial = alternate(hello, bare_hello, runs)
        figures.append(
            figure(
                "jobs_trivial_processing",
                "s",
                trivial,
                better="lower",
                what="a trivial processing job, create to Completed",
                peer_name="the script run bare",
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

        def train(instances: int = 1) -> float:
            resources = {"scratch_mb": 2048, "cpus": 2, **({"instance_count": instances} if instances > 1 else {})}
            return _job(alice, f"xgb-{next(count)}", resources=resources, **training)

        def bare_train() -> float:
            start = time.monotonic()
            subprocess.run(
                [sys.executable, "-c", PEER, str(data), "csv", json.dumps(PARAMS), str(rounds), str(work / "peer.ubj")],
                check=True,
                capture_output=True,
            )
            return time.monotonic() - start

        trained = alternate(train, bare_train, runs)
        figures.append(
            figure(
                "jobs_xgboost_training",
                "s",
                trained,
                better="lower",
                what=f"XGBoost training job, {rows:,} rows, encrypted in and out",
                peer_name="bare xgboost.train",
                rows=rows,
            )
        )
        dask = alternate(lambda: rows / train(2), lambda: rows / train(1), runs)
        figures.append(
            figure(
                "jobs_dask_2_workers_throughput",
                "rows/s",
                dask,
                what="the same training on 2 Dask workers (TLS)",
                peer_name="1 worker",
                note="ratio = speed-up of 2 Dask workers over 1 on this 2-core machine",
            )
        )
        compared = {
            "ours": "strongroom up: sandboxed job, inputs decrypted into tmpfs, model encrypted on upload",
            "peer": "the same script / xgboost.train run bare in a fresh python",
            "xgboost": version("xgboost"),
            "sizes": {"rows": rows, "rounds": rounds},
        }
        print(f"summary: {save('jobs', figures, args.smoke, compared=compared)}")
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
