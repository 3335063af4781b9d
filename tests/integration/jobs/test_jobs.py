"""Processing and training jobs, for real: sandboxes, the agent, encrypted inputs and outputs."""

from __future__ import annotations

import io
import os
import tarfile

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from sklearn.metrics import roc_auc_score

from strongroom.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from strongroom.sandbox.cgroups import Cgroups
from tests.integration.jobs.conftest import TeamEnv, credit_like, csv_bytes, job_spec, read_home, upload_script

PREPROCESS = """
import argparse, os
import pandas as pd
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

parser = argparse.ArgumentParser()
parser.add_argument("--test-size", type=float, default=0.2)
args = parser.parse_args()
frame = pd.read_csv("/opt/ml/processing/input/raw/credit.csv")
label = "default payment next month"
y, X = frame[label], frame.drop(columns=[label])
X_train, X_rest, y_train, y_rest = train_test_split(X, y, test_size=args.test_size * 2, random_state=0, stratify=y)
X_val, X_test, y_val, y_test = train_test_split(X_rest, y_rest, test_size=0.5, random_state=0, stratify=y_rest)
scaler = StandardScaler().fit(X_train)
for name, features, target in (("train", X_train, y_train), ("validation", X_val, y_val), ("test", X_test, y_test)):
    out = pd.concat([target.reset_index(drop=True), pd.DataFrame(scaler.transform(features))], axis=1)
    os.makedirs(f"/opt/ml/processing/output/{name}", exist_ok=True)
    out.to_csv(f"/opt/ml/processing/output/{name}/{name}.csv", header=False, index=False)
print(f"train rows {len(X_train)} validation rows {len(X_val)} test rows {len(X_test)}")
"""

HYPER = {"num_round": 40, "max_depth": 4, "eta": 0.2, "objective": "binary:logistic", "eval_metric": "auc", "seed": 7}


CORES = """
import os
print(f"cores {len(os.sched_getaffinity(0))} omp {os.environ.get('OMP_NUM_THREADS')}")
"""


@pytest.mark.slow
def test_a_job_asking_for_two_cpus_runs_on_two_cores_with_two_threads(env: TeamEnv) -> None:
    """The sandbox's CPU affinity, quota and OMP_NUM_THREADS follow resources.cpus, so XGBoost
    (nthread defaults to OpenMP's thread count) and pyarrow use as many cores as a bare run."""
    cores = min(2, len(os.sched_getaffinity(0)))
    script = upload_script(env, "cores.py", CORES)
    resources = {"scratch_mb": 64, "cpus": 2, "max_runtime_seconds": 120}
    env.alice.jobs.create(job_spec(env, "cores-1", code={"source": script}, resources=resources))
    job = env.alice.jobs.wait(env.team, "cores-1", logs=False, timeout=120)
    assert job.status == "Completed", job.failure_reason
    lines = [line.text for line in env.alice.jobs.logs(env.team, "cores-1")]
    assert f"cores {cores} omp {cores}" in lines, lines


def _model_from(env: TeamEnv, uri: str) -> xgb.Booster:
    bucket, key = uri[len("sr://") :].split("/", 1)
    data = env.alice.buckets.get_object(bucket, key)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        names = tar.getnames()
        assert names == ["xgboost-model"], names
        raw = tar.extractfile("xgboost-model").read()  # type: ignore[union-attr]
    booster = xgb.Booster()
    booster.load_model(bytearray(raw))
    return booster


def _read_csv(env: TeamEnv, key: str) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(env.alice.buckets.get_object(env.data, key)), header=None)


def test_preprocess_then_train_matches_bare_xgboost(env: TeamEnv) -> None:
    env.alice.buckets.put_object(env.data, "raw/credit.csv", csv_bytes(credit_like(3000)))
    script = upload_script(env, "preprocessing.py", PREPROCESS)
    spec = job_spec(
        env,
        "preprocess-1",
        code={"source": script, "arguments": ["--test-size", "0.2"]},
        inputs=[{"name": "raw", "source": f"sr://{env.data}/raw/credit.csv"}],
        outputs=[{"name": n, "destination": f"sr://{env.data}/processed/{n}"} for n in ("train", "validation", "test")],
    )
    env.alice.jobs.create(spec)
    job = env.alice.jobs.wait(env.team, "preprocess-1", logs=False, timeout=240)
    assert [o.name for o in job.outputs_produced] == ["train", "validation", "test"]
    assert [t.status for t in job.status_transitions][-5:] == [
        "Downloading",
        "Processing",
        "Uploading",
        "Completing",
        "Completed",
    ]
    assert any("train rows 1800" in line.text for line in env.alice.jobs.logs(env.team, "preprocess-1"))

    training = job_spec(
        env,
        "train-1",
        kind="training",
        code={"algorithm": "xgboost"},
        hyperparameters={**HYPER, "subsample": 0.8, "colsample_bytree": 0.8},  # the workshop samples rows
        inputs=[
            {"name": c, "source": f"sr://{env.data}/processed/{c}", "content_type": "text/csv"}
            for c in ("train", "validation")
        ],
        outputs=[{"name": "model", "destination": f"sr://{env.models}/training"}],
        metric_definitions=[{"name": "validation:auc", "regex": r"validation-auc:([0-9.]+)"}],
    )
    env.alice.jobs.create(training)
    trained = env.alice.jobs.wait(env.team, "train-1", logs=False, timeout=300)
    [model_output] = trained.outputs_produced
    assert model_output.uri == f"sr://{env.models}/training/train-1/output/model.tar.gz"
    metrics = env.alice.jobs.metrics(env.team, "train-1")
    assert [m.step for m in metrics] == list(range(40))

    test = _read_csv(env, "processed/test/test.csv")
    ours = _model_from(env, model_output.uri).predict(xgb.DMatrix(test.iloc[:, 1:].to_numpy()))
    train = _read_csv(env, "processed/train/train.csv")
    validation = _read_csv(env, "processed/validation/validation.csv")
    params = {
        "max_depth": 4,
        "eta": 0.2,
        "objective": "binary:logistic",
        "eval_metric": "auc",
        "seed": 7,
        "subsample": 0.8,
        "colsample_bytree": 0.8,
    }
    dtrain = xgb.DMatrix(train.iloc[:, 1:].to_numpy(), label=train.iloc[:, 0].to_numpy())
    dval = xgb.DMatrix(validation.iloc[:, 1:].to_numpy(), label=validation.iloc[:, 0].to_numpy())
    bare = xgb.train(params, dtrain, 40, evals=[(dtrain, "train"), (dval, "validation")], verbose_eval=False)
    theirs = bare.predict(xgb.DMatrix(test.iloc[:, 1:].to_numpy()))
    auc_ours, auc_bare = roc_auc_score(test.iloc[:, 0], ours), roc_auc_score(test.iloc[:, 0], theirs)
    assert auc_ours > 0.7
    assert abs(auc_ours - auc_bare) < 1e-9
    np.testing.assert_array_equal(ours, theirs)
    assert bytes(_model_from(env, model_output.uri).save_raw("ubj")) == bytes(bare.save_raw("ubj"))


def test_network_is_unreachable_inside_jobs(env: TeamEnv) -> None:
    probe = """
import socket, urllib.request, os
for host, port in (("1.1.1.1", 443), ("127.0.0.1", 5432)):
    try:
        socket.create_connection((host, port), timeout=3)
        print(f"CONNECTED {host}:{port}")
    except OSError as exc:
        print(f"refused {host}:{port}: {type(exc).__name__}")
try:
    urllib.request.urlopen("https://pypi.org/simple/", timeout=3)
    print("CONNECTED pypi")
except Exception as exc:
    print(f"refused pypi: {type(exc).__name__}")
print("uid", os.getuid())
"""
    env.alice.jobs.create(job_spec(env, "netprobe", code={"source": upload_script(env, "netprobe.py", probe)}))
    env.alice.jobs.wait(env.team, "netprobe", logs=False, timeout=120)
    text = "\n".join(line.text for line in env.alice.jobs.logs(env.team, "netprobe"))
    assert "CONNECTED" not in text
    assert text.count("refused") == 3
    assert "uid 1000" in text


def test_inputs_never_land_on_disk_and_logs_are_encrypted(env: TeamEnv) -> None:
    marker = "ZEBRA-7731-CUSTOMER-ROW"
    env.alice.buckets.put_object(env.data, "secret/rows.csv", f"id,note\n1,{marker}\n".encode())
    script = "print(open('/opt/ml/processing/input/rows/rows.csv').read().replace('ZEBRA', 'LOGGED-ZEBRA'))\n"
    env.alice.jobs.create(
        job_spec(
            env,
            "secret-rows",
            code={"source": upload_script(env, "echo.py", script)},
            inputs=[{"name": "rows", "source": f"sr://{env.data}/secret/rows.csv"}],
        )
    )
    env.alice.jobs.wait(env.team, "secret-rows", logs=False, timeout=120)
    assert any("LOGGED-ZEBRA" in line.text for line in env.alice.jobs.logs(env.team, "secret-rows"))
    haystack = read_home(env.server.config.home)
    for needle in (marker.encode(), b"LOGGED-ZEBRA"):
        assert not any(needle in blob for blob in haystack)
    runtime_dir = env.server.config.effective_job_runtime_dir
    assert not runtime_dir.exists() or not any(runtime_dir.iterdir())


def test_max_runtime_stops_the_job_with_the_reason(env: TeamEnv) -> None:
    script = upload_script(env, "sleepy.py", "import time\nprint('sleeping', flush=True)\ntime.sleep(600)\n")
    spec = job_spec(env, "sleepy", code={"source": script})
    spec["resources"] = {"scratch_mb": 64, "max_runtime_seconds": 3}
    env.alice.jobs.create(spec)
    with pytest.raises(Exception, match="MaxRuntimeExceeded"):
        env.alice.jobs.wait(env.team, "sleepy", logs=False, timeout=120)
    job = env.alice.jobs.describe(env.team, "sleepy")
    assert job.status == "Stopped" and "max_runtime_seconds" in job.failure_reason


@pytest.mark.skipif(
    not Cgroups.detect().available, reason="no cgroups on this host: memory is only bounded by the rlimit fallback"
)
def test_memory_over_the_limit_fails_the_job_out_of_memory(env: TeamEnv) -> None:
    # Touched memory, well within the address-space rlimit (memory + 4 GiB): only the cgroup stops it.
    hog = "chunks = []\nfor i in range(600):\n    chunks.append(b'x' * (1024 * 1024))\nprint('allocated 600 MiB')\n"
    spec = job_spec(env, "hog", code={"source": upload_script(env, "hog.py", hog)})
    spec["resources"] = {"scratch_mb": 64, "memory_mb": 256, "max_runtime_seconds": 120}
    env.alice.jobs.create(spec)
    with pytest.raises(Exception, match="OutOfMemory"):
        env.alice.jobs.wait(env.team, "hog", logs=False, timeout=180)
    job = env.alice.jobs.describe(env.team, "hog")
    assert job.status == "Failed"
    assert "out of memory" in job.failure_reason and "256 MiB" in job.failure_reason, job.failure_reason
    assert "resources.memory_mb" in job.failure_reason


def test_guardrails_deny_with_the_guardrail_named_and_create_nothing(env: TeamEnv) -> None:
    script = upload_script(env, "noop.py", "print('hi')\n")
    open_net = job_spec(env, "open-net", code={"source": script})
    open_net["security"] = {"network_isolation": False, "volume_kms_key": env.key}
    with pytest.raises(Forbidden, match="network isolation") as denied:
        env.alice.jobs.create(open_net)
    assert "guardrail-network-isolation" in denied.value.extra["policies"]
    no_key = job_spec(env, "no-key", code={"source": script})
    no_key["security"] = {"network_isolation": True, "volume_kms_key": ""}
    with pytest.raises(Forbidden, match="volume"):
        env.alice.jobs.create(no_key)
    names = {j.name for j in env.alice.jobs.list(env.team)}
    assert not {"open-net", "no-key"} & names


@pytest.mark.parametrize(
    ("change", "error", "field"),
    [
        (
            {
                "kind": "training",
                "code": {"algorithm": "xgboost"},
                "hyperparameters": {"num_round": 5},
                "inputs": [{"name": "validation", "source": "sr://risk-data/raw/credit.csv"}],
                "outputs": [{"name": "model", "destination": "sr://risk-models/x"}],
            },
            InvalidInput,
            "inputs",
        ),
        (
            {
                "kind": "training",
                "code": {"algorithm": "xgboost"},
                "hyperparameters": {"num_round": 5, "colour": 1},
                "inputs": [{"name": "train", "source": "sr://risk-data/raw/credit.csv"}],
                "outputs": [{"name": "model", "destination": "sr://risk-models/x"}],
            },
            InvalidInput,
            "hyperparameters.colour",
        ),
        ({"inputs": [{"name": "raw", "source": "s3://risk-data/raw"}]}, InvalidInput, "inputs.source"),
        # another team's bucket answers exactly as a missing one (issue 13)
        ({"inputs": [{"name": "raw", "source": "sr://fraud-data/raw"}]}, NotFound, "inputs[0].source"),
        ({"inputs": [{"name": "raw", "source": "sr://risk-data/nothing-here/"}]}, InvalidInput, "inputs[0].source"),
        ({"resources": {"scratch_mb": 10_000_000}}, InvalidInput, "resources.scratch_mb"),
        # key parts checked at submission with the object-put rules, not at upload after the run
        ({"outputs": [{"name": "o", "destination": "sr://risk-data/#/../../x"}]}, InvalidInput, "outputs.destination"),
        ({"outputs": [{"name": "o", "destination": "sr://risk-data/?x=../.."}]}, InvalidInput, "outputs.destination"),
        ({"spot": {"checkpoint_uri": "sr://risk-data/ckpt/../../x"}}, InvalidInput, "spot.checkpoint_uri"),
        ({"inputs": [{"name": "raw", "source": "sr://risk-data/raw//credit.csv"}]}, InvalidInput, "inputs.source"),
        (
            {"outputs": [{"name": "o", "destination": "sr://risk-data/o", "source": "/etc/passwd"}]},
            InvalidInput,
            "outputs.source",
        ),
    ],
)
def test_bad_specs_are_refused_clearly_and_create_nothing(
    env: TeamEnv, change: dict[str, object], error: type[Exception], field: str
) -> None:
    if not any(b.name == "fraud-data" for b in env.admin.buckets.list()):
        from tests.integration.jobs.conftest import build_team

        build_team(env.server, team="fraud", user="fred")
        env.alice.buckets.put_object(env.data, "raw/credit.csv", b"a,b\n1,2\n")
    spec = job_spec(env, "bad-spec", code={"source": upload_script(env, "noop.py", "print(1)\n")})
    spec.update(change)
    with pytest.raises(error) as refused:  # type: ignore[call-overload]
        env.alice.jobs.create(spec)
    assert refused.value.field == field, refused.value.detail
    assert "bad-spec" not in {j.name for j in env.alice.jobs.list(env.team)}


def test_job_names_are_unique_per_team(env: TeamEnv) -> None:
    spec = job_spec(env, "unique-1", code={"source": upload_script(env, "noop.py", "print(1)\n")})
    env.alice.jobs.create(spec)
    with pytest.raises(Conflict):
        env.alice.jobs.create(spec)


def test_jobs_record_experiments_and_lineage_without_tracking_code(env: TeamEnv) -> None:
    from strongroom.experiments import Experiment, ExperimentAnalytics, Trial

    env.alice.buckets.put_object(env.data, "lineage/raw.csv", csv_bytes(credit_like(1500, seed=9)))
    Experiment.create(experiment_name="credit-lineage", session=env.alice, team=env.team)
    Trial.create(trial_name="trial-1", experiment_name="credit-lineage", session=env.alice, team=env.team)
    config = {"experiment_name": "credit-lineage", "trial_name": "trial-1"}
    script = upload_script(env, "preprocessing-lineage.py", PREPROCESS.replace("raw/credit.csv", "raw/raw.csv"))
    env.alice.jobs.create(
        job_spec(
            env,
            "lineage-pre",
            code={"source": script},
            experiment_config=config,
            inputs=[{"name": "raw", "source": f"sr://{env.data}/lineage/raw.csv"}],
            outputs=[
                {"name": n, "destination": f"sr://{env.data}/lineage/{n}"} for n in ("train", "validation", "test")
            ],
        )
    )
    env.alice.jobs.wait(env.team, "lineage-pre", logs=False, timeout=240)
    env.alice.jobs.create(
        job_spec(
            env,
            "lineage-train",
            kind="training",
            code={"algorithm": "xgboost"},
            hyperparameters=HYPER,
            experiment_config={**config, "trial_component_display_name": "Training"},
            inputs=[
                {"name": c, "source": f"sr://{env.data}/lineage/{c}", "content_type": "text/csv"}
                for c in ("train", "validation")
            ],
            outputs=[{"name": "model", "destination": f"sr://{env.models}/lineage"}],
            metric_definitions=[{"name": "validation:auc", "regex": r"validation-auc:([0-9.]+)"}],
        )
    )
    trained = env.alice.jobs.wait(env.team, "lineage-train", logs=False, timeout=300)

    frame = ExperimentAnalytics(
        experiment_name="credit-lineage",
        search_expression={"Filters": [{"Name": "Parents.TrialName", "Operator": "Equals", "Value": "trial-1"}]},
        session=env.alice,
        team=env.team,
    ).dataframe()
    assert len(frame) == 2
    training_row = frame[frame["DisplayName"] == "Training"].iloc[0]
    assert float(training_row["max_depth"]) == 4
    assert 0.5 < float(training_row["validation:auc - Last"]) <= 1.0

    model_uri = trained.outputs_produced[0].uri
    [model] = [e for e in env.alice.lineage.list_entities(uri=model_uri)]
    upstream = env.alice.lineage.upstream(model.srn, depth=10)
    uris = {node.uri for node in upstream.nodes if getattr(node, "uri", "")}
    assert f"sr://{env.data}/lineage/raw.csv" in uris  # model <- training <- train.csv <- processing <- raw
    assert any(u.startswith(f"sr://{env.data}/code/preprocessing-lineage.py") for u in uris)


def test_reproduce_gives_a_byte_identical_model_and_names_a_replaced_input(env: TeamEnv) -> None:
    from typer.testing import CliRunner

    from strongroom.cli.main import app

    frame = credit_like(2000, seed=4)
    label = frame.pop("default payment next month")
    frame.insert(0, "label", label)
    first = env.alice.buckets.put_object(env.data, "repro/train.csv", csv_bytes(frame, header=False))
    spec = job_spec(
        env,
        "repro-train",
        kind="training",
        code={"algorithm": "xgboost"},
        hyperparameters={**HYPER, "subsample": 0.8},
        inputs=[{"name": "train", "source": f"sr://{env.data}/repro/train.csv", "content_type": "text/csv"}],
        outputs=[{"name": "model", "destination": f"sr://{env.models}/repro"}],
    )
    env.alice.jobs.create(spec)
    env.alice.jobs.wait(env.team, "repro-train", logs=False, timeout=240)
    cli_env = {"STRONGROOM_HOME": str(env.server.config.home), "STRONGROOM_TOKEN": env.alice_token}
    result = CliRunner().invoke(app, ["reproduce", "repro-train", "--team", env.team], env=cli_env)
    assert result.exit_code == 0, result.output
    assert "repro-train-repro-1 reproduces repro-train: identical" in result.output

    # the data scientist overwrites the raw data and deletes the version the model was trained on
    env.alice.buckets.put_object(
        env.data, "repro/train.csv", csv_bytes(frame.sample(frac=1, random_state=1), header=False)
    )
    env.alice.buckets.delete_object(env.data, "repro/train.csv", version_id=first.version_id)
    refused = CliRunner().invoke(app, ["reproduce", "repro-train", "--team", env.team], env=cli_env)
    assert refused.exit_code == 1 and first.version_id in refused.output and "is gone" in refused.output
    different = CliRunner().invoke(
        app, ["reproduce", "repro-train", "--team", env.team, "--use-latest-inputs"], env=cli_env
    )
    assert different.exit_code == 1, different.output
    assert "different" in different.output and "model.tar.gz" in different.output
