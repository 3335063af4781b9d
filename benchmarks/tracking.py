"""Experiment tracking throughput: Strongroom's SDK against MLflow, doing the same work.

Ours goes through the real platform: a fresh home, `strongroom up` over HTTPS, a DataScientist's
token, the SDK's default behaviour (metrics and component writes batched in the background,
one guarded request per batch; every step's clock stops only after ``flush()`` has returned,
i.e. after the server committed everything). The peer is MLflow with a SQLite backend store in a
temporary directory (telemetry off), through its fluent API and client.

Steps (each reported as throughput, so ratio = ours / peer and higher is better):
1. log 10,000 metrics one call at a time (``Tracker.log_metric`` vs ``mlflow.log_metric``);
2. log 10,000 metrics in batches of 1,000 (``log_batch`` on both);
3. create 1,000 components with 5 parameters and 5 metrics each (a Tracker vs a run);
4. build the analytics DataFrame over those 1,000 (``ExperimentAnalytics`` vs ``mlflow.search_runs``).
Then, ours alone: the DataFrame of 10,000 components (goal: under 1 s).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import parser, report, save

from strongroom.core import launcher
from strongroom.core.config import Config
from strongroom.experiments import ExperimentAnalytics, Tracker, Trial
from strongroom.platform import initialize
from strongroom.sdk.session import Session

PARAMS = 5
METRICS = 5


def _ours(session: Session, n_single: int, n_batch: int, n_components: int, n_frame: int) -> dict[str, float]:
    out: dict[str, float] = {}
    with Tracker.create(display_name="single", session=session) as tracker:
        session.experiments.flush()
        started = time.perf_counter()
        for i in range(n_single):
            tracker.log_metric("loss", 1.0 / (i + 1), i)
        tracker.flush()
        out["single"] = n_single / (time.perf_counter() - started)
        name = tracker.trial_component_name
    points = [{"name": "batched", "value": i * 0.001, "step": i} for i in range(n_batch)]
    started = time.perf_counter()
    session.experiments.log_batch(name, points, chunk=1000)
    out["batch"] = n_batch / (time.perf_counter() - started)

    trial = Trial.create(trial_name="bench-trial", experiment_name="bench", session=session)
    started = time.perf_counter()
    for i in range(n_components):
        with Tracker.create(display_name=f"component-{i}", trial=trial, session=session) as t:
            t.log_parameters({f"param{j}": i * j for j in range(PARAMS)})
            for j in range(METRICS):
                t.log_metric(f"metric{j}", i * 0.01 + j, 0)
    session.experiments.flush()
    out["components"] = n_components / (time.perf_counter() - started)

    ExperimentAnalytics(experiment_name="warm-up", session=session).dataframe()  # imports, first Arrow use
    started = time.perf_counter()
    frame = ExperimentAnalytics(experiment_name="bench", session=session).dataframe()
    out["dataframe"] = len(frame) / (time.perf_counter() - started)
    assert len(frame) == n_components, len(frame)
    assert frame[f"metric{METRICS - 1} - Last"].notna().all() and frame["param1"].notna().all()

    for i in range(n_components, n_frame):
        with Tracker.create(display_name=f"component-{i}", trial=trial, session=session) as t:
            t.log_parameters({f"param{j}": i * j for j in range(PARAMS)})
            for j in range(METRICS):
                t.log_metric(f"metric{j}", i * 0.01 + j, 0)
    session.experiments.flush()
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        frame = ExperimentAnalytics(experiment_name="bench", session=session).dataframe()
        timings.append(time.perf_counter() - started)
    assert len(frame) == n_frame, len(frame)
    out["frame_big_seconds"] = min(timings)
    out["frame_big_columns"] = float(frame.shape[1])
    return out


def _peer(folder: Path, n_single: int, n_batch: int, n_components: int) -> dict[str, float] | None:
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
    os.environ["DO_NOT_TRACK"] = "true"
    try:
        import mlflow
        from mlflow.entities import Metric
        from mlflow.tracking import MlflowClient
    except ImportError:
        return None
    mlflow.set_tracking_uri(f"sqlite:///{folder / 'mlflow.db'}")
    experiment_id = mlflow.create_experiment("bench", artifact_location=(folder / "artifacts").as_uri())
    client = MlflowClient()
    out: dict[str, float] = {}
    with mlflow.start_run(experiment_id=experiment_id) as run:
        started = time.perf_counter()
        for i in range(n_single):
            mlflow.log_metric("loss", 1.0 / (i + 1), step=i)
        out["single"] = n_single / (time.perf_counter() - started)
        run_id = run.info.run_id
    now = int(time.time() * 1000)
    metrics = [Metric("batched", i * 0.001, now, i) for i in range(n_batch)]
    started = time.perf_counter()
    for start in range(0, n_batch, 1000):
        client.log_batch(run_id, metrics=metrics[start : start + 1000])
    out["batch"] = n_batch / (time.perf_counter() - started)

    components = mlflow.create_experiment("components", artifact_location=(folder / "artifacts2").as_uri())
    started = time.perf_counter()
    for i in range(n_components):
        with mlflow.start_run(experiment_id=components, run_name=f"component-{i}"):
            mlflow.log_params({f"param{j}": i * j for j in range(PARAMS)})
            mlflow.log_metrics({f"metric{j}": i * 0.01 + j for j in range(METRICS)}, step=0)
    out["components"] = n_components / (time.perf_counter() - started)
    mlflow.search_runs(experiment_ids=[experiment_id])  # imports, first use
    started = time.perf_counter()
    frame = mlflow.search_runs(experiment_ids=[components], max_results=100_000)
    out["dataframe"] = len(frame) / (time.perf_counter() - started)
    assert len(frame) == n_components, len(frame)
    return out


def main() -> None:
    args = parser(__doc__ or "").parse_args()
    if args.smoke:
        n_single, n_batch, n_components, n_frame = 200, 2000, 20, 40
    else:
        n_single, n_batch, n_components, n_frame = 10_000, 10_000, 1_000, 10_000
    folder = Path(tempfile.mkdtemp(prefix="sr-bench-tracking-"))
    try:
        config = Config(home=folder / "home", port=0)
        admin_token = initialize(config).token.secret
        server = launcher.start(config)
        try:
            with Session(url=server.url, token=admin_token, ca=server.ca) as admin:
                admin.teams.create("bench")
                admin.users.create("alice")
                admin.teams.add_member("bench", "alice", "DataScientist")
                token = admin.tokens.create("bench", user="alice").secret
            with Session(url=server.url, token=token, ca=server.ca) as session:
                session.experiments.create_experiment("bench")
                session.experiments.create_experiment("warm-up")
                ours = _ours(session, n_single, n_batch, n_components, n_frame)
        finally:
            server.stop()
        if args.smoke:
            print("peer: MLflow is not run in --smoke mode")
            peer = None
        else:
            peer = _peer(folder / "mlflow", n_single, n_batch, n_components)
            if peer is None:
                print("peer: mlflow is not installed (pip install -e '.[bench]'); peer figures are nan")
        nan = float("nan")
        figures: list[dict[str, Any]] = []
        units = {
            "single": ("tracking_log_metric_single", "metrics/s"),
            "batch": ("tracking_log_metric_batch", "metrics/s"),
            "components": ("tracking_create_components", "components/s"),
            "dataframe": ("tracking_analytics_dataframe", "rows/s"),
        }
        for key, (name, unit) in units.items():
            figures.append(report(name, ours[key], peer[key] if peer else nan, unit))
        figures.append(
            report(
                "tracking_dataframe_10k_vs_goal",
                ours["frame_big_seconds"],
                1.0,
                "s",
                note="peer is the goal (10,000 components to a DataFrame in under 1 s), not a measured system",
                rows=n_frame,
                columns=ours["frame_big_columns"],
            )
        )
        path = save(
            "tracking",
            figures,
            args.smoke,
            database="sqlite",
            sizes={"single": n_single, "batch": n_batch, "components": n_components, "frame": n_frame},
        )
        print(f"summary: {path}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
