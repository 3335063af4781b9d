"""The workshop's path on real jobs: the built-in XGBoost on headerless CSV with the workshop's
hyperparameters (sampling on) gives bare ``xgboost.train``'s booster byte for byte; a spot
interruption gives a deterministic model; and the explainability job explains that model with
the values of ``pred_contribs``, its lineage joined to the training job's."""

from __future__ import annotations

import io
import itertools
import json
import re
import time
from typing import Any

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from typer.testing import CliRunner

from strongroom.algorithms.xgboost.archive import read_model
from strongroom.cli.main import app
from strongroom.demo.data import FEATURES, LABEL, credit_default
from tests.integration.jobs.conftest import TeamEnv, csv_bytes, job_spec

# The workshop's hyperparameters, plus column sampling, as strings like a notebook's estimator sends.
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
BARE_PARAMS: dict[str, Any] = {
    "max_depth": 5,
    "eta": 0.2,
    "gamma": 4,
    "min_child_weight": 6,
    "subsample": 0.8,
    "colsample_bytree": 0.8,
    "objective": "binary:logistic",
    "verbosity": 0,
}


def _headerless(frame: pd.DataFrame) -> bytes:
    """The workshop's train.csv: label first, no header."""
    return csv_bytes(frame[[LABEL, *FEATURES]], header=False)


def _dtrain(data: bytes) -> xgb.DMatrix:
    """What a data scientist runs by hand on the same file."""
    rows = pd.read_csv(io.BytesIO(data), header=None).to_numpy()
    return xgb.DMatrix(rows[:, 1:], label=rows[:, 0])


def _training(env: TeamEnv, name: str, source: str, hyperparameters: dict[str, str], **extra: Any) -> dict[str, Any]:
    return job_spec(
        env,
        name,
        kind="training",
        code={"algorithm": "xgboost"},
        hyperparameters=hyperparameters,
        inputs=[{"name": "train", "source": source, "content_type": "text/csv"}],
        outputs=[{"name": "model", "destination": f"sr://{env.models}/workshop"}],
        **extra,
    )


def _model_bytes(env: TeamEnv, uri: str) -> bytes:
    bucket, key = uri[len("sr://") :].split("/", 1)
    return read_model(env.alice.buckets.get_object(bucket, key))


def _get(env: TeamEnv, uri: str) -> bytes:
    bucket, key = uri[len("sr://") :].split("/", 1)
    return env.alice.buckets.get_object(bucket, key)


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_a_training_job_on_headerless_csv_is_bare_xgboost_byte_for_byte(env: TeamEnv) -> None:
    data = _headerless(credit_default(6000, seed=21))
    source = env.alice.buckets.put_object(env.data, "workshop/train/train.csv", data).uri
    env.alice.jobs.create(_training(env, "workshop-train", source, WORKSHOP))
    job = env.alice.jobs.wait(env.team, "workshop-train", logs=False, timeout=300)
    assert job.status == "Completed", job.failure_reason
    [model] = job.outputs_produced
    expected = xgb.train(BARE_PARAMS, _dtrain(data), 100)
    assert _model_bytes(env, model.uri) == bytes(expected.save_raw("ubj"))
    # Nothing was added to what the user set; and nothing claims a resume.
    assert job.spec.hyperparameters == WORKSHOP
    assert not any("resumed" in t.message for t in job.status_transitions)
    # The description says where the time went, phase by phase, and the phases add up.
    phases = [p.phase for p in job.timeline]
    assert phases == [
        "queue",
        "sandbox start",
        "input download and decryption",
        "parsing",
        "training",
        "output encryption and upload",
        "completion (outputs, lineage)",
    ]
    assert all(p.seconds is not None and p.seconds >= 0 for p in job.timeline)
    # Each phase starts where the one before ended (when the platform saw it, not when it wrote it
    # down), from the create call to the end: they add up to the total, to the millisecond rounding.
    assert all(a.end == b.start for a, b in itertools.pairwise(job.timeline))
    assert job.timeline[0].start == job.created_at and job.timeline[-1].end == job.ended_at
    assert sum(p.seconds or 0 for p in job.timeline) == pytest.approx(job.total_seconds, abs=0.01)
    assert "data loaded in" in job.status_transitions[phases.index("training")].message


def _wait_for_rounds(env: TeamEnv, name: str, rounds: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(env.alice.jobs.metrics(env.team, name)) >= rounds:
            return
        time.sleep(0.2)
    raise AssertionError(f"{name} did not reach {rounds} rounds in {timeout} s")


@pytest.mark.slow
@pytest.mark.timeout(500)
def test_a_resumed_spot_job_with_sampling_is_deterministic_and_says_it_differs(env: TeamEnv) -> None:
    data = _headerless(credit_default(30_000, seed=5))
    source = env.alice.buckets.put_object(env.data, "workshop/spot/train.csv", data).uri
    hyperparameters = {**WORKSHOP, "num_round": "400", "eval_metric": "auc"}
    spec = _training(
        env,
        "workshop-spot",
        source,
        hyperparameters,
        spot={"use_spot": True, "max_wait_seconds": 3600, "checkpoint_uri": f"sr://{env.models}/ck/workshop-spot"},
        metric_definitions=[{"name": "train:auc", "regex": r"train-auc:([0-9.]+)"}],
    )
    env.alice.jobs.create(spec)
    _wait_for_rounds(env, "workshop-spot", 20, 240)
    env.alice.jobs.interrupt(env.team, "workshop-spot", "test preemption")
    job = env.alice.jobs.wait(env.team, "workshop-spot", logs=False, timeout=400)
    assert job.status == "Completed" and job.attempts == 2, job.failure_reason
    # The job's description says where it resumed and that the model is not the uninterrupted one.
    [note] = [t.message for t in job.status_transitions if "resumed at round" in t.message]
    assert "not byte-identical to an uninterrupted run" in note and "subsample, colsample_bytree" in note
    found = re.search(r"resumed at round (\d+)", note)
    assert found is not None
    at = int(found.group(1))
    assert 0 < at < 400

    # Deterministic: the model is exactly "k rounds, saved, then the rest from that booster" for the
    # round k it was interrupted at, computed here in another process...
    params = {**BARE_PARAMS, "eval_metric": "auc"}
    dtrain = _dtrain(data)
    first = xgb.Booster(model_file=xgb.train(params, dtrain, at).save_raw("ubj"))
    resumed = xgb.train(params, dtrain, 400 - at, xgb_model=first)
    produced = _model_bytes(env, job.outputs_produced[0].uri)
    assert produced == bytes(resumed.save_raw("ubj"))
    # ...and, with sampling on, not the uninterrupted model (as the note says).
    assert produced != bytes(xgb.train(params, dtrain, 400).save_raw("ubj"))


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_explain_on_a_model_trained_from_headerless_csv_equals_pred_contribs(env: TeamEnv) -> None:
    frame = credit_default(5000, seed=8)
    train, test = frame.iloc[:4000], frame.iloc[4000:]
    source = env.alice.buckets.put_object(env.data, "workshop/explain/train.csv", _headerless(train)).uri
    env.alice.jobs.create(_training(env, "workshop-explained", source, WORKSHOP))
    trained = env.alice.jobs.wait(env.team, "workshop-explained", logs=False, timeout=300)
    assert trained.status == "Completed", trained.failure_reason
    model_uri = trained.outputs_produced[0].uri
    booster = xgb.Booster(model_file=bytearray(_model_bytes(env, model_uri)))
    assert booster.feature_names is None  # headerless CSV, no feature_names: the model names nothing

    # The workshop's test.csv: headerless, label first. Names come from the user.
    dataset = env.alice.buckets.put_object(env.data, "workshop/explain/test.csv", _headerless(test)).uri
    runner = CliRunner()
    result = runner.invoke(
        app,
        [
            "explain",
            model_uri,
            dataset,
            "--team",
            env.team,
            "--output",
            f"sr://{env.data}/workshop-reports",
            "--volume-kms-key",
            env.key,
            "--label",
            LABEL,
            "--feature-names",
            ",".join(FEATURES),
        ],
        env={"STRONGROOM_HOME": str(env.server.config.home), "STRONGROOM_TOKEN": env.alice_token},
    )
    assert result.exit_code == 0, result.output
    [job] = [j for j in env.alice.jobs.list(env.team) if j.kind == "explainability" and j.status == "Completed"]
    uris = {o.uri.rsplit("/", 1)[-1]: o.uri for o in job.outputs_produced}
    analysis = json.loads(_get(env, uris["analysis.json"]))
    assert analysis["row_count"] == len(test)
    values = analysis["explanations"][analysis["method"]["name"]][LABEL]["global_shap_values"]

    contributions = booster.predict(xgb.DMatrix(test[FEATURES].to_numpy()), pred_contribs=True)
    expected = np.abs(contributions[:, :-1]).mean(axis=0)
    np.testing.assert_allclose([values[name] for name in FEATURES], expected, rtol=1e-5, atol=1e-7)

    # Lineage: the report's upstream reaches the training job through the model, recorded once as a Model.
    [report] = env.alice.lineage.list_entities(uri=uris["report.html"])
    upstream = env.alice.lineage.upstream(report.srn, depth=4)
    assert trained.srn in {n.srn for n in upstream.nodes}
    assert {n.type for n in upstream.nodes if getattr(n, "uri", "") == model_uri} == {"Model"}
