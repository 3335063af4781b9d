"""Jobs with instance_count > 1 run on a Dask cluster (TLS between nodes) inside the sandbox."""

from __future__ import annotations

import io
import tarfile

import pytest
import xgboost as xgb
from sklearn.metrics import roc_auc_score

from tests.integration.jobs.conftest import TeamEnv, credit_like, csv_bytes, job_spec, upload_script

HYPER = {"num_round": 30, "max_depth": 4, "eta": 0.3, "objective": "binary:logistic", "eval_metric": "auc", "seed": 1}


def _auc(env: TeamEnv, uri: str, test: object) -> float:
    bucket, key = uri[len("sr://") :].split("/", 1)
    with tarfile.open(fileobj=io.BytesIO(env.alice.buckets.get_object(bucket, key)), mode="r:gz") as tar:
        raw = tar.extractfile("xgboost-model").read()  # type: ignore[union-attr]
    booster = xgb.Booster()
    booster.load_model(bytearray(raw))
    features, labels = test.iloc[:, 1:].to_numpy(), test.iloc[:, 0].to_numpy()  # type: ignore[attr-defined]
    return float(roc_auc_score(labels, booster.predict(xgb.DMatrix(features))))


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_two_worker_dask_training_matches_single_node(env: TeamEnv) -> None:
    frame = credit_like(20_000, seed=21)
    label = frame.pop("default payment next month")
    frame.insert(0, "label", label)
    train, test = frame.iloc[:16_000], frame.iloc[16_000:]
    env.alice.buckets.put_object(env.data, "dask/train/train.csv", csv_bytes(train, header=False))
    aucs = {}
    for count in (1, 2):
        spec = job_spec(
            env,
            f"dask-{count}",
            kind="training",
            code={"algorithm": "xgboost"},
            hyperparameters=HYPER,
            inputs=[{"name": "train", "source": f"sr://{env.data}/dask/train", "content_type": "text/csv"}],
            outputs=[{"name": "model", "destination": f"sr://{env.models}/dask"}],
        )
        spec["resources"] = {"instance_count": count, "cpus": 2, "scratch_mb": 256, "max_runtime_seconds": 300}
        env.alice.jobs.create(spec)
        job = env.alice.jobs.wait(env.team, f"dask-{count}", logs=False, timeout=300)
        aucs[count] = _auc(env, job.outputs_produced[0].uri, test)
    log = "\n".join(line.text for line in env.alice.jobs.logs(env.team, "dask-2", limit=5000))
    assert "distributed training on 2 Dask workers" in log
    assert "tls://127.0.0.1" in log  # scheduler and workers speak TLS
    assert abs(aucs[2] - aucs[1]) < 0.01, aucs


def test_processing_scripts_get_a_dask_client(env: TeamEnv) -> None:
    script = """
from strongroom.sandbox.inside.cluster import dask_client
with dask_client() as client:
    workers = client.scheduler_info()["workers"]
    print("workers", len(workers), "protocol", client.scheduler.address.split(":")[0])
    print("sum", client.submit(sum, range(10)).result())
"""
    spec = job_spec(env, "dask-processing", code={"source": upload_script(env, "dask_proc.py", script)})
    spec["resources"] = {"instance_count": 2, "scratch_mb": 64, "max_runtime_seconds": 300}
    env.alice.jobs.create(spec)
    env.alice.jobs.wait(env.team, "dask-processing", logs=False, timeout=200)
    text = "\n".join(line.text for line in env.alice.jobs.logs(env.team, "dask-processing"))
    assert "workers 2 protocol tls" in text and "sum 45" in text
