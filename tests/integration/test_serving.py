"""Notebook 02 for real: deploy a model trained by the built-in XGBoost with data capture, invoke it
row by row over HTTPS, read the capture back; plus the bad-input matrix and who may do what."""

from __future__ import annotations

import base64
import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import xgboost as xgb

from strongroom.algorithms.xgboost.archive import archive_bytes
from strongroom.algorithms.xgboost.serve import load_booster
from strongroom.core.config import Config
from strongroom.core.errors import (
    Forbidden,
    InvalidInput,
    PayloadTooLarge,
    StrongroomError,
    Unauthenticated,
    UnsupportedMediaType,
)
from strongroom.platform import initialize
from strongroom.sdk.serving import CSV, DataCaptureConfig, Model, Predictor
from strongroom.sdk.session import Session
from tests.integration.jobs.conftest import (
    TeamEnv,
    add_mlops_engineer,
    build_team,
    credit_like,
    csv_bytes,
    train_builtin_xgboost,
)
from tests.support import endpoint_workers_of, start_server

# module fixtures start servers, train models and sandboxes: more than the suite's 120 s on a busy machine
pytestmark = pytest.mark.timeout(600)

HYPER = {
    "max_depth": 5,
    "eta": 0.2,
    "gamma": 4,
    "min_child_weight": 6,
    "subsample": 0.8,
    "verbosity": 0,
    "objective": "binary:logistic",
    "num_round": 20,
}


@dataclass
class Deployed:
    env: TeamEnv
    mlops: Session
    mlops_token: str
    job: str
    endpoint: str
    booster: xgb.Booster
    test_rows: np.ndarray
    capture_prefix: str


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    home = tmp_path_factory.mktemp("serving") / "home"
    config = Config(home=home, port=0)
    server = start_server(config, initialize(config).token.secret)
    try:
        env = build_team(server)
        mlops_token, mlops = add_mlops_engineer(env)
        frame = credit_like(600, seed=3)
        label = frame.pop("default payment next month")
        frame.insert(0, "label", label)
        job = "xgb-train-1"
        trained = train_builtin_xgboost(env, job, csv_bytes(frame.iloc[:500], header=False), HYPER)
        archive = env.alice.buckets.get_object(env.models, trained.outputs_produced[0].uri.split("/", 3)[3])
        booster = load_booster(archive)
        prefix = f"sr://{env.data}/secure-sagemaker-demo/monitoring/datacapture"
        endpoint = f"{job}-endpoint"
        predictor = Model(name=f"{job}-model", training_job=job, session=mlops, team=env.team, kms_key=env.key).deploy(
            initial_instance_count=2,
            endpoint_name=endpoint,
            data_capture_config=DataCaptureConfig(prefix),
        )
        assert predictor.endpoint_name == endpoint
        yield Deployed(env, mlops, mlops_token, job, endpoint, booster, frame.iloc[500:, 1:].to_numpy(), prefix)
    finally:
        server.stop()


def test_row_by_row_predictions_equal_the_booster_and_are_captured(deployed: Deployed) -> None:
    env, mlops = deployed.env, deployed.mlops
    described = mlops.endpoints.describe(env.team, deployed.endpoint)
    assert described.status == "InService"
    assert described.url.endswith(f"/endpoints/{env.team}/{deployed.endpoint}/invocations")
    predictor = Predictor(deployed.endpoint, serializer=CSV, session=mlops, team=env.team)
    rows = deployed.test_rows[:10]
    sent = [",".join(str(int(v)) if float(v).is_integer() else repr(float(v)) for v in row) for row in rows]
    scores = [float(predictor.predict(line)) for line in sent]
    expected = deployed.booster.predict(xgb.DMatrix(rows.astype(np.float32)))
    assert np.array_equal(np.asarray(scores, dtype=np.float32), expected)
    many = predictor.predict("\n".join(sent))
    assert np.array_equal(np.asarray([float(s) for s in many.splitlines()], dtype=np.float32), expected)
    as_json = json.loads(
        mlops.endpoints.invoke(
            env.team, deployed.endpoint, json.dumps({"instances": rows.tolist()}), "application/json"
        )
    )
    assert np.array_equal(np.asarray([p["score"] for p in as_json["predictions"]], dtype=np.float32), expected)

    records = _captured(deployed, expect=12)
    csv_records = [r for r in records if r["captureData"]["endpointInput"]["encoding"] == "CSV"]
    assert [r["captureData"]["endpointInput"]["data"] for r in csv_records] == [*sent, "\n".join(sent)]
    first = csv_records[0]
    assert first["captureData"]["endpointInput"]["observedContentType"] == "text/csv"
    assert first["captureData"]["endpointInput"]["mode"] == "INPUT"
    assert first["captureData"]["endpointOutput"] == {
        "observedContentType": "text/csv; charset=utf-8",
        "mode": "OUTPUT",
        "data": repr(scores[0]),
        "encoding": "CSV",
    }
    assert first["eventVersion"] == "0"
    assert first["eventMetadata"]["inferenceTime"].endswith("Z")
    assert records[-1]["captureData"]["endpointInput"]["encoding"] == "JSON"


def _captured(
    deployed: Deployed, expect: int, timeout: float = 60.0, variant: str = "AllTraffic"
) -> list[dict[str, Any]]:
    """Every capture record under the endpoint's prefix, in time order (waits for the upload)."""
    env = deployed.env
    bucket, _, prefix = deployed.capture_prefix.removeprefix("sr://").partition("/")
    deadline = time.monotonic() + timeout
    while True:
        keys = env.alice.list_objects(bucket, f"{prefix}/{deployed.endpoint}/{variant}/")
        records = []
        for key in keys:
            assert key.endswith(".jsonl") and len(key.split("/")[-5:-1]) == 4  # yyyy/mm/dd/hh
            records += [json.loads(line) for line in env.alice.buckets.get_object(bucket, key).splitlines()]
        if len(records) >= expect or time.monotonic() > deadline:
            return sorted(records, key=lambda r: r["eventMetadata"]["inferenceTime"])  # type: ignore[index]
        time.sleep(0.5)


BAD = [
    ("1,2,3", "text/csv", InvalidInput, "row 1 has 3 columns"),
    ("1,2,x,4", "text/csv", InvalidInput, "row 1, column 3"),
    ("1,2,3,4\n5,6,nan,8", "text/csv", InvalidInput, "row 2, column 3"),
    ("1,2,3,inf", "text/csv", InvalidInput, "row 1, column 4"),
    ('1,"2,3,4', "text/csv", InvalidInput, "row 1"),
    ("", "text/csv", InvalidInput, "empty"),
    ("1,2,3,4", "text/plain", UnsupportedMediaType, "Content-Type"),
    ('{"instances": [[1, 2, "a", 4]]}', "application/json", InvalidInput, "row 1, column 3"),
]


@pytest.mark.parametrize(("body", "content_type", "error", "says"), BAD)
def test_bad_input_is_refused_by_row_and_column_and_the_endpoint_keeps_serving(
    deployed: Deployed, body: str, content_type: str, error: type[Exception], says: str
) -> None:
    env = deployed.env
    with pytest.raises(error) as raised:
        deployed.mlops.endpoints.invoke(env.team, deployed.endpoint, body, content_type)
    assert says in str(raised.value)
    good = ",".join(str(v) for v in deployed.test_rows[0])
    assert float(deployed.mlops.endpoints.invoke(env.team, deployed.endpoint, good)) > 0


def test_oversized_body_is_413(deployed: Deployed) -> None:
    with pytest.raises(PayloadTooLarge):
        deployed.mlops.endpoints.invoke(deployed.env.team, deployed.endpoint, b"1,2,3,4\n" * 1_000_000)


def test_who_may_deploy_and_invoke(deployed: Deployed) -> None:
    env = deployed.env
    with pytest.raises(Forbidden, match="data scientists cannot create or delete endpoints"):
        env.alice.endpoints.create(env.team, "by-alice", f"{deployed.endpoint}-config")
    with pytest.raises(StrongroomError) as exists:
        deployed.mlops.models.create(env.team, f"{deployed.job}-model", training_job=deployed.job, kms_key=env.key)
    assert exists.value.status == 409  # type: ignore[attr-defined]
    other = build_team(env.server, team="fraud", user="eve")
    with pytest.raises(Forbidden):
        other.alice.endpoints.invoke(env.team, deployed.endpoint, "1,2,3,4")
    token = env.admin.tokens.create("short", user="mo")
    short = env.server.session(token.secret)
    good = ",".join(str(v) for v in deployed.test_rows[0])
    assert float(short.endpoints.invoke(env.team, deployed.endpoint, good)) > 0
    env.admin.tokens.revoke(token.token.id)
    with pytest.raises(Unauthenticated):
        short.endpoints.invoke(env.team, deployed.endpoint, good)


def test_capture_is_encrypted_in_the_spool_and_bucket(deployed: Deployed) -> None:
    home = deployed.env.server.config.home
    row = ",".join(str(v) for v in deployed.test_rows[1])
    deployed.mlops.endpoints.invoke(deployed.env.team, deployed.endpoint, row)
    needle = row.encode()
    for path in home.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert needle not in data and base64.b64encode(needle) not in data, path


def test_models_keep_the_guardrails_and_a_pickled_model_fails_with_its_reason(deployed: Deployed) -> None:
    import pickle

    env, mlops = deployed.env, deployed.mlops
    with pytest.raises(Forbidden, match="network isolation"):
        mlops.models.create(env.team, "open-model", training_job=deployed.job, kms_key=env.key, network_isolation=False)
    pickled = archive_bytes(pickle.dumps({"not": "a booster"}))
    env.alice.buckets.put_object(env.models, "pickled/model.tar.gz", pickled)
    mlops.models.create(
        env.team, "pickled-model", model_data=f"sr://{env.models}/pickled/model.tar.gz", kms_key=env.key
    )
    variant = {"VariantName": "AllTraffic", "ModelName": "pickled-model"}
    mlops.endpoint_configs.create(env.team, "pickled-config", [variant], kms_key=env.key)
    mlops.endpoints.create(env.team, "pickled", "pickled-config")
    with pytest.raises(StrongroomError, match="pickled models are refused"):
        mlops.endpoints.wait(env.team, "pickled", timeout=120)
    failed = mlops.endpoints.describe(env.team, "pickled")
    assert failed.status == "Failed" and "pickled models are refused" in failed.failure_reason
    assert mlops.endpoints.delete(env.team, "pickled").status == "Deleting"


def test_capture_at_half_sampling_keeps_about_half(deployed: Deployed) -> None:
    env, mlops = deployed.env, deployed.mlops
    variant = {"VariantName": "AllTraffic", "ModelName": f"{deployed.job}-model"}
    capture = DataCaptureConfig(deployed.capture_prefix, sampling_percentage=50)
    mlops.endpoint_configs.create(env.team, "half-config", [variant], capture, kms_key=env.key)
    mlops.endpoints.create(env.team, "half", "half-config")
    assert mlops.endpoints.wait(env.team, "half").status == "InService"
    row = ",".join(str(v) for v in deployed.test_rows[0])
    for _ in range(200):
        mlops.endpoints.invoke(env.team, "half", row)
    mlops.endpoints.delete(env.team, "half")  # uploads what is spooled
    half = Deployed(**{**deployed.__dict__, "endpoint": "half"})
    deadline = time.monotonic() + 60
    while any(e.name == "half" for e in mlops.endpoints.list(env.team)):
        assert time.monotonic() < deadline
        time.sleep(0.25)
    records = _captured(half, expect=10_000, timeout=0)
    assert 60 <= len(records) <= 140  # binomial(200, 0.5): outside this, 1 run in 10^8


def test_two_variants_weighted_routing_and_the_target_variant_header(deployed: Deployed) -> None:
    env, mlops = deployed.env, deployed.mlops
    model = f"{deployed.job}-model"
    variants = [
        {"VariantName": "Blue", "ModelName": model, "InitialVariantWeight": 1.0},
        {"VariantName": "Green", "ModelName": model, "InitialVariantWeight": 0.0},
    ]
    mlops.endpoint_configs.create(
        env.team, "two-config", variants, DataCaptureConfig(deployed.capture_prefix), kms_key=env.key
    )
    mlops.endpoints.create(env.team, "two", "two-config")
    assert mlops.endpoints.wait(env.team, "two").status == "InService"
    row = ",".join(str(v) for v in deployed.test_rows[0])
    blue = [mlops.endpoints.invoke(env.team, "two", row) for _ in range(5)]
    green = mlops.endpoints.invoke(env.team, "two", row, target_variant="Green")
    assert len(set(blue)) == 1 and green == blue[0]
    with pytest.raises(InvalidInput, match="no variant 'Purple'"):
        mlops.endpoints.invoke(env.team, "two", row, target_variant="Purple")
    mlops.endpoints.delete(env.team, "two")
    deadline = time.monotonic() + 60
    while any(e.name == "two" for e in mlops.endpoints.list(env.team)):
        assert time.monotonic() < deadline
        time.sleep(0.25)
    records = {
        variant: _captured(Deployed(**{**deployed.__dict__, "endpoint": "two"}), 10_000, 0, variant=variant)
        for variant in ("Blue", "Green")
    }
    assert (len(records["Blue"]), len(records["Green"])) == (5, 1)  # weight 0: only when targeted


def test_lineage_reaches_from_the_capture_to_the_training_job(deployed: Deployed) -> None:
    lineage = deployed.mlops.lineage
    [capture] = lineage.list_entities(kind="artifact", uri=deployed.capture_prefix)
    graph = lineage.query(capture.srn, direction="upstream", depth=10)
    names = {n.name for n in graph.nodes}
    srns = {n.srn for n in graph.nodes}
    assert deployed.endpoint in names
    assert any(s.endswith(f":job/{deployed.job}") for s in srns), srns


def test_cli_invoke_and_describe(deployed: Deployed) -> None:
    from typer.testing import CliRunner

    from strongroom.cli.main import app

    env = {
        "STRONGROOM_HOME": str(deployed.env.server.config.home),
        "STRONGROOM_TOKEN": deployed.mlops_token,
        "STRONGROOM_TEAM": deployed.env.team,
    }

    def described() -> dict[str, Any]:
        shown = CliRunner().invoke(app, ["endpoints", "describe", deployed.endpoint, "--json"], env=env)
        assert shown.exit_code == 0, shown.output
        return dict(json.loads(shown.output))

    before = described()["invocations"]  # counts of this module's earlier tests, whichever ran
    rows = deployed.test_rows[:2]
    body = "\n".join(",".join(str(v) for v in row) for row in rows)
    result = CliRunner().invoke(app, ["invoke", deployed.endpoint, "--body", body], env=env)
    assert result.exit_code == 0, result.output
    expected = deployed.booster.predict(xgb.DMatrix(rows.astype(np.float32)))
    assert np.array_equal(np.asarray(result.output.split(), dtype=np.float32), expected)
    bad = CliRunner().invoke(app, ["invoke", deployed.endpoint, "--body", "1,2"], env=env)
    assert bad.exit_code != 0 and "row 1 has 2 columns" in bad.output
    shown = described()
    assert shown["status"] == "InService" and shown["capture"]["dropped"] == 0 and shown["capture"]["captured"] > 0
    counted = shown["invocations"]
    assert counted["invocations"] == before["invocations"] + 2
    assert counted["client_errors"] == before["client_errors"] + 1 and counted["server_errors"] == 0
    assert counted["mean_latency_ms"] > 0


def _load(
    deployed: Deployed, session: Session, seconds: float, start: int, during: object = None
) -> tuple[set[str], int]:
    """Send unique rows from 4 threads for ``seconds``; the rows that got a 2xx, and the refusals."""
    acknowledged: set[str] = set()
    refused = 0
    lock = threading.Lock()
    stop = time.monotonic() + seconds
    base = [str(v) for v in deployed.test_rows[2][1:]]

    def client(offset: int) -> None:
        nonlocal refused
        i = offset
        while time.monotonic() < stop:
            row = ",".join([str(start + i), *base])
            i += 4
            try:
                session.endpoints.invoke(deployed.env.team, deployed.endpoint, row)
            except StrongroomError:
                with lock:
                    refused += 1
                continue
            with lock:
                acknowledged.add(row)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    if callable(during):
        time.sleep(seconds / 3)
        during()
    for thread in threads:
        thread.join()
    return acknowledged, refused


def _inputs(records: list[dict[str, Any]]) -> set[str]:
    return {r["captureData"]["endpointInput"]["data"] for r in records}


def test_kill_9_of_a_worker_under_load_loses_no_acknowledged_request(deployed: Deployed) -> None:
    server_pid = deployed.env.server.process.pid
    before = endpoint_workers_of(server_pid)
    assert len(before) == 2  # InitialInstanceCount=2: two worker processes, apart from the API's

    def kill_one() -> None:
        os.kill(before[0], signal.SIGKILL)

    acknowledged, refused = _load(deployed, deployed.mlops, 4.0, 1_000_000, during=kill_one)
    assert len(acknowledged) > 20
    assert refused <= 5  # a request in flight on the killed worker is retried on the other one
    captured = _inputs(_captured(deployed, expect=len(acknowledged)))
    assert acknowledged <= captured
    deadline = time.monotonic() + 60
    while len(after := endpoint_workers_of(server_pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(after) == 2 and before[0] not in after  # the supervisor restarted it


def test_kill_9_of_the_platform_loses_no_acknowledged_request_and_the_endpoint_comes_back(deployed: Deployed) -> None:
    """Last in the module: it kills the module's server and finishes on a restarted one."""
    env = deployed.env
    acknowledged, _ = _load(deployed, deployed.mlops, 1.5, 2_000_000)
    env.server.stop(signal.SIGKILL)  # before the periodic upload: the records are only in the spool
    restarted = start_server(env.server.config, env.server.admin_token)
    try:
        env.server = restarted
        deployed.mlops = restarted.session(deployed.mlops_token)
        env.alice = restarted.session(env.alice_token)
        endpoint = deployed.mlops.endpoints.wait(env.team, deployed.endpoint, timeout=120)
        assert endpoint.status == "InService"
        row = ",".join(str(v) for v in deployed.test_rows[3])
        assert float(deployed.mlops.endpoints.invoke(env.team, deployed.endpoint, row)) > 0
        assert acknowledged <= _inputs(_captured(deployed, expect=10_000, timeout=15))
        deployed.mlops.endpoints.delete(env.team, deployed.endpoint)
        deadline = time.monotonic() + 60
        while any(e.name == deployed.endpoint for e in deployed.mlops.endpoints.list(env.team)):
            assert time.monotonic() < deadline
            time.sleep(0.25)
        assert endpoint_workers_of(restarted.process.pid) == []
    finally:
        restarted.stop()
