"""The model registry for real: a data scientist registers the trained model, an MLOps engineer
approves it with a reason, and a team policy keeps unapproved versions off endpoints."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pytest
import xgboost as xgb

from strongroom.algorithms.xgboost.archive import archive_bytes
from strongroom.core.config import Config
from strongroom.core.errors import Conflict, Forbidden, InvalidInput, StrongroomError
from strongroom.platform import initialize
from strongroom.sdk.serving import Model
from strongroom.sdk.session import Session
from tests.integration.jobs.conftest import (
    TeamEnv,
    add_mlops_engineer,
    build_team,
    credit_like,
    csv_bytes,
    train_builtin_xgboost,
)
from tests.support import start_server

# module fixtures start servers, train models and sandboxes: more than the suite's 120 s on a busy machine
pytestmark = pytest.mark.timeout(600)

HYPER = {"max_depth": 3, "eta": 0.3, "objective": "binary:logistic", "num_round": 5, "verbosity": 0}
REQUIRE_APPROVED = """
@id("require-approved-models")
@message("deploy only models from an Approved model package version")
forbid (principal, action in [Action::"CreateEndpointConfig", Action::"CreateEndpoint"], resource)
when { context has model_approval && context.model_approval != "Approved" };
"""


@dataclass
class Registry:
    env: TeamEnv
    mlops: Session
    job: str


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    home = tmp_path_factory.mktemp("registry") / "home"
    config = Config(home=home, port=0)
    server = start_server(config, initialize(config).token.secret)
    try:
        env = build_team(server)
        _, mlops = add_mlops_engineer(env)
        frame = credit_like(200, seed=5)
        label = frame.pop("default payment next month")
        frame.insert(0, "label", label)
        job = "xgb-train-1"
        train_builtin_xgboost(env, job, csv_bytes(frame, header=False), HYPER)
        yield Registry(env, mlops, job)
    finally:
        server.stop()


def test_data_scientist_registers_and_only_mlops_approves_with_history(registry: Registry) -> None:
    env, mlops = registry.env, registry.mlops
    package = Model(name=f"{registry.job}-model", training_job=registry.job, session=env.alice, team=env.team).register(
        model_package_group_name="credit-default", description="first cut, workshop hyperparameters"
    )
    assert (package.model_package_group_name, package.version) == ("credit-default", 1)
    assert package.approval_status == "PendingManualApproval"
    assert package.info.source_job.endswith(f":job/{registry.job}")
    with pytest.raises(Forbidden, match="data scientists register model versions but cannot approve"):
        package.approve("looks fine to me")
    with pytest.raises(Forbidden):
        env.alice.model_registry.register(
            env.team, "credit-default", training_job=registry.job, approval_status="Approved"
        )
    approved = mlops.model_registry.approve(env.team, "credit-default", 1, reason="AUC 0.78 on the hold-out set")
    assert approved.approval_status == "Approved"
    history = mlops.model_registry.describe(env.team, "credit-default", 1).approval_history
    assert [(h.status, h.by, h.role) for h in history] == [
        ("PendingManualApproval", "alice", "DataScientist"),
        ("Approved", "mo", "MLOpsEngineer"),
    ]
    assert history[1].reason == "AUC 0.78 on the hold-out set" and history[1].at >= history[0].at
    with pytest.raises(Conflict, match="already Approved"):
        mlops.model_registry.approve(env.team, "credit-default", 1, reason="again")
    with pytest.raises(InvalidInput) as no_reason:
        mlops.model_registry.reject(env.team, "credit-default", 1, reason="")
    assert no_reason.value.field and "reason" in no_reason.value.field
    group = env.alice.model_registry.describe_group(env.team, "credit-default")
    assert (group.versions, group.latest_version, group.latest_approved_version) == (1, 1, 1)
    events = env.admin.audit.query(action="UpdateModelPackageApproval", team=env.team)
    assert {(e.principal, e.decision) for e in events} >= {("alice", "Deny"), ("mo", "Allow")}


def test_policy_requiring_approved_blocks_a_pending_version_and_allows_an_approved_one(registry: Registry) -> None:
    env, mlops = registry.env, registry.mlops
    rng = np.random.default_rng(1)
    features = rng.normal(size=(64, 4))
    booster = xgb.train(
        {"objective": "binary:logistic", "verbosity": 0}, xgb.DMatrix(features, rng.integers(0, 2, 64)), 3
    )
    env.alice.buckets.put_object(env.models, "hand/model.tar.gz", archive_bytes(bytes(booster.save_raw("ubj"))))
    mlops.models.create(env.team, "hand-model", model_data=f"sr://{env.models}/hand/model.tar.gz", kms_key=env.key)
    package = Model(name="hand-model", session=env.alice, team=env.team).register(model_package_group_name="hand")
    env.admin.policies.attach(env.team, "require-approved", REQUIRE_APPROVED)
    variant = [{"VariantName": "AllTraffic", "ModelName": "hand-model"}]
    with pytest.raises(Forbidden) as refused:
        mlops.endpoint_configs.create(env.team, "hand-config", variant, kms_key=env.key)
    detail = str(refused.value)
    assert "hand-model" in detail and "PendingManualApproval" in detail and "Approved model package" in detail
    assert refused.value.field == "ProductionVariants[0].ModelName"
    problem = refused.value.extra
    assert problem["model"] == "hand-model" and problem["model_approval"] == "PendingManualApproval"
    assert problem["policies"] == ["team:risk:require-approved:require-approved-models"]
    package.info = mlops.model_registry.approve(env.team, "hand", package.version, reason="shadow test passed")
    mlops.endpoint_configs.create(env.team, "hand-config", variant, kms_key=env.key)
    mlops.model_registry.reject(env.team, "hand", package.version, reason="drift found in shadow traffic")
    with pytest.raises(Forbidden, match=r"hand-model.*Rejected"):
        mlops.endpoints.create(env.team, "hand-endpoint", "hand-config")
    mlops.model_registry.update_approval(env.team, "hand", package.version, "Approved", reason="retrained, fixed")
    mlops.endpoints.create(env.team, "hand-endpoint", "hand-config")
    endpoint = mlops.endpoints.wait(env.team, "hand-endpoint")
    assert endpoint.status == "InService"
    row = features[0]
    answer = float(mlops.endpoints.invoke(env.team, "hand-endpoint", ",".join(repr(float(v)) for v in row)))
    assert answer == pytest.approx(float(booster.predict(xgb.DMatrix(features[:1]))[0]), abs=1e-6)
    [context] = [e for e in env.alice.lineage.list_entities(type="Endpoint") if e.name == "hand-endpoint"]
    upstream = env.alice.lineage.upstream(context.srn)
    types = {n.type for n in upstream.nodes}
    assert {"Model", "ModelPackage", "Approval", "ModelDeployment"} <= types
    env.admin.policies.detach(env.team, "require-approved")


def test_lineage_runs_from_the_training_job_to_the_package_version(registry: Registry) -> None:
    env = registry.env
    package = env.alice.model_registry.describe(env.team, "credit-default", 1)
    [entity] = [e for e in env.alice.lineage.list_entities(type="ModelPackage") if e.uri == package.srn]
    upstream = env.alice.lineage.upstream(entity.srn, depth=5)
    assert any(n.type == "TrainingJob" and n.srn == package.source_job for n in upstream.nodes)
    downstream = env.alice.lineage.downstream(entity.srn, depth=1)
    approvals = [n for n in downstream.nodes if n.type == "Approval"]
    assert len(approvals) == 2  # registered (pending), then approved by mo


def test_another_team_and_hostile_names_are_refused(registry: Registry) -> None:
    env = registry.env
    other = build_team(env.server, team="fraud", user="eve")
    with pytest.raises(Forbidden):
        other.alice.model_registry.describe_group(env.team, "credit-default")
    with pytest.raises(Forbidden):
        other.alice.model_registry.register(env.team, "credit-default", training_job=registry.job)
    with pytest.raises(InvalidInput) as hostile:
        env.alice.model_registry.register(env.team, "Credit;rm -rf $(id)", training_job=registry.job)
    assert hostile.value.field == "model_package_group_name"
    with pytest.raises(InvalidInput) as hostile_group:
        env.alice.model_registry.create_group(env.team, "Credit Default<script>")
    assert hostile_group.value.field == "name"
    with pytest.raises(Conflict) as duplicate:
        env.alice.model_registry.create_group(env.team, "credit-default")
    assert duplicate.value.status == 409 and duplicate.value.field == "name"
    named = registry.mlops.models.create(env.team, training_job=registry.job, kms_key=env.key)
    assert named.name == f"{registry.job}-model"  # the workshop's naming, by default
    with pytest.raises(Conflict, match=f"already has a model named '{registry.job}-model'") as model_exists:
        registry.mlops.models.create(env.team, training_job=registry.job, kms_key=env.key)
    assert model_exists.value.status == 409 and model_exists.value.field == "name"


INFERENCE_PY = """
import json, math, os, socket

num_features = 3


def model_fn(model_dir):
    # the sandbox: not root, and no network (a connection attempt must fail)
    assert os.getuid() != 0, "running as root"
    try:
        socket.create_connection(("1.1.1.1", 53), timeout=1).close()
    except OSError:
        pass
    else:
        raise RuntimeError("the network is reachable")
    with open(os.path.join(model_dir, "weights.json")) as handle:
        return json.load(handle)


def predict_fn(rows, model):
    return [1 / (1 + math.exp(-(model["bias"] + sum(w * x for w, x in zip(model["weights"], row))))) for row in rows]
"""


def _tar_gz(files: dict[str, bytes]) -> bytes:
    import io
    import tarfile

    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


def test_own_inference_script_serves_in_the_sandbox(registry: Registry) -> None:
    env, mlops = registry.env, registry.mlops
    weights = b'{"weights": [0.5, -1.0, 2.0], "bias": 0.1}'
    archive = _tar_gz({"code/inference.py": INFERENCE_PY.encode(), "weights.json": weights})
    env.alice.buckets.put_object(env.models, "scripted/model.tar.gz", archive)
    uri = f"sr://{env.models}/scripted/model.tar.gz"
    predictor = Model(
        uri, name="scripted-model", runtime="script", session=mlops, team=env.team, kms_key=env.key
    ).deploy(endpoint_name="scripted-endpoint")
    answer = predictor.predict("1,2,3\n0,0,0")
    expected = [1 / (1 + np.exp(-(0.1 + 0.5 - 2.0 + 6.0))), 1 / (1 + np.exp(-0.1))]
    assert [float(v) for v in answer.splitlines()] == pytest.approx(expected, rel=1e-12)
    with pytest.raises(InvalidInput, match="row 1 has 2 columns"):
        predictor.predict("1,2")
    with pytest.raises(InvalidInput, match="built-in xgboost runtime"):  # SHAP needs the XGBoost model
        predictor.explain("1,2,3")
    assert mlops.models.describe(env.team, "scripted-model").runtime == "script"
    # an archive without predict_fn: the endpoint fails with the reason, nothing is served
    env.alice.buckets.put_object(env.models, "broken/model.tar.gz", _tar_gz({"inference.py": b"x = 1\n"}))
    mlops.models.create(
        env.team, "broken-model", model_data=f"sr://{env.models}/broken/model.tar.gz", kms_key=env.key, runtime="script"
    )
    mlops.endpoint_configs.create(env.team, "broken-config", [{"ModelName": "broken-model"}], kms_key=env.key)
    mlops.endpoints.create(env.team, "broken-endpoint", "broken-config")
    with pytest.raises(StrongroomError, match="predict_fn"):
        mlops.endpoints.wait(env.team, "broken-endpoint")
