"""Lineage recorded by the services' API, queried upstream and downstream."""

from __future__ import annotations

import pytest

from strongroom.core.context import RequestContext
from strongroom.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from strongroom.lineage.models import ArtifactRef, GitCommit, JobLineage, RuntimeRef
from strongroom.platform import Platform

TEAM = "risk"
H = {name: (str(i) * 64)[:64] for i, name in enumerate(["raw", "train", "test", "model", "code"], start=1)}
COMMIT = GitCommit(
    repository="https://git.example/risk/credit.git",
    commit="0123456789abcdef0123456789abcdef01234567",
    branch="main",
    author="Alice <alice@example>",
    message="tune depth",
    dirty=True,
    diff_sha256="f" * 64,
)
PROCESSING = JobLineage(
    job="srn:strongroom:risk:processing-job/prep-1",
    job_type="ProcessingJob",
    status="Completed",
    runtime=RuntimeRef(name="sklearn", version="1.5.2"),
    inputs=[ArtifactRef(uri="sr://risk-data/raw.csv", name="raw", version_id="v1", sha256=H["raw"])],
    outputs=[
        ArtifactRef(uri="sr://risk-data/train.csv", name="train", version_id="v1", sha256=H["train"]),
        ArtifactRef(uri="sr://risk-data/test.csv", name="test", version_id="v1", sha256=H["test"]),
    ],
    entry_point=["python", "preprocess.py"],
    seed=7,
)
TRAINING = JobLineage(
    job="srn:strongroom:risk:training-job/train-1",
    job_type="TrainingJob",
    status="Completed",
    runtime=RuntimeRef(name="xgboost", version="2.1.1", digest="d" * 64),
    code=ArtifactRef(uri="sr://risk-code/train.tar.gz", version_id="v3", sha256=H["code"]),
    commit=COMMIT,
    inputs=[
        ArtifactRef(uri="sr://risk-data/train.csv", name="train", version_id="v1", sha256=H["train"]),
        ArtifactRef(uri="sr://risk-data/test.csv", name="validation", version_id="v1", sha256=H["test"]),
    ],
    outputs=[
        ArtifactRef(uri="sr://risk-data/model.tar.gz", type="Model", name="model", version_id="v1", sha256=H["model"])
    ],
    hyperparameters={"max_depth": "5", "eta": "0.2", "num_round": "50"},
    seed=42,
)


def _model_srn(p: Platform, ctx: RequestContext) -> str:
    [model] = p.lineage.list_entities(ctx, TEAM, type="Model")
    return model.srn


def _record_chain(p: Platform, ctx: RequestContext) -> str:
    """What the jobs and serving services record: no tracking code in any user script."""
    system = RequestContext.system()
    p.lineage.record_job(system, TEAM, PROCESSING)
    p.lineage.record_job(system, TEAM, TRAINING)
    model = _model_srn(p, ctx)
    deployment = p.lineage.record_action(system, TEAM, "deploy-credit-v1", "ModelDeployment", {"variant": "v1"})
    endpoint = p.lineage.record_context(system, TEAM, "credit-endpoint", "Endpoint")
    p.lineage.associate(system, TEAM, model, deployment.srn, "ContributedTo")
    p.lineage.associate(system, TEAM, deployment.srn, endpoint.srn, "AssociatedWith")
    return model


def test_the_chain_is_queryable_upstream_from_the_model(teams: Platform, alice: RequestContext) -> None:
    model = _record_chain(teams, alice)
    graph = teams.lineage.query(alice, TEAM, model, direction="upstream", depth=10)
    by_uri = {n.uri: n for n in graph.nodes if n.uri}
    srns = {n.srn for n in graph.nodes}
    assert {"sr://risk-data/raw.csv", "sr://risk-data/train.csv", "sr://risk-data/test.csv"} <= set(by_uri)
    assert {TRAINING.job, PROCESSING.job} <= srns
    assert by_uri["sr://risk-data/raw.csv"].depth == 4 and by_uri["sr://risk-data/raw.csv"].sha256 == H["raw"]
    commits = [n for n in graph.nodes if n.type == "Commit"]
    assert len(commits) == 1 and commits[0].properties["dirty"] is True
    assert commits[0].properties["commit"] == COMMIT.commit
    edges = {(e.source, e.destination, e.type) for e in graph.edges}
    assert (TRAINING.job, model, "Produced") in edges
    assert (commits[0].srn, TRAINING.job, "AssociatedWith") in edges
    downstream = teams.lineage.query(alice, TEAM, model, direction="downstream")
    assert {n.type for n in downstream.nodes} == {"Model", "ModelDeployment", "Endpoint"}


def test_depth_and_type_filters(teams: Platform, alice: RequestContext) -> None:
    model = _record_chain(teams, alice)
    near = teams.lineage.query(alice, TEAM, model, depth=1)
    assert {n.srn for n in near.nodes} == {model, TRAINING.job}
    datasets = teams.lineage.query(alice, TEAM, model, entity_types=["DataSet"])
    assert {n.type for n in datasets.nodes} == {"Model", "DataSet"}
    produced_only = teams.lineage.query(alice, TEAM, model, association_types=["Produced"])
    assert {n.srn for n in produced_only.nodes} == {model, TRAINING.job}
    with pytest.raises(InvalidInput):
        teams.lineage.query(alice, TEAM, model, depth=0)
    with pytest.raises(InvalidInput):
        teams.lineage.query(alice, TEAM, model, association_types=["Owns"])


def test_a_node_limit_keeps_the_nearest_and_counts_every_distance(teams: Platform, alice: RequestContext) -> None:
    model = _record_chain(teams, alice)
    whole = teams.lineage.query(alice, TEAM, model, direction="upstream", depth=10)
    cut = teams.lineage.query(alice, TEAM, model, direction="upstream", depth=10, max_nodes=3)
    assert cut.reached == whole.reached and sum(whole.reached.values()) == len(whole.nodes)
    assert [n.depth for n in cut.nodes] == [0, 1, 2] and cut.nodes[0].srn == model
    kept = {n.srn for n in cut.nodes}
    assert cut.edges and all(e.source in kept and e.destination in kept for e in cut.edges)
    with pytest.raises(InvalidInput):
        teams.lineage.query(alice, TEAM, model, max_nodes=0)


def test_recording_is_idempotent_and_versions_are_immutable(teams: Platform, alice: RequestContext) -> None:
    model = _record_chain(teams, alice)
    before = teams.lineage.query(alice, TEAM, model, direction="both", depth=10)
    _record_chain(teams, alice)
    again = teams.lineage.query(alice, TEAM, model, direction="both", depth=10)
    assert again == before
    with pytest.raises(Conflict):
        teams.lineage.record_artifact(
            alice, TEAM, "sr://risk-data/raw.csv", "DataSet", version_id="v1", sha256="e" * 64
        )


def test_job_record_has_what_reproduction_needs(teams: Platform, alice: RequestContext) -> None:
    _record_chain(teams, alice)
    record = teams.lineage.job_record(alice, TEAM, TRAINING.job)
    assert record.runtime == TRAINING.runtime
    assert record.code is not None and record.code.sha256 == H["code"] and record.code.version_id == "v3"
    assert record.commit == COMMIT
    assert record.hyperparameters == TRAINING.hyperparameters and record.seed == 42
    assert sorted((i.uri, i.version_id, i.sha256) for i in record.inputs) == sorted(
        (i.uri, i.version_id, i.sha256) for i in TRAINING.inputs
    )
    assert [(o.uri, o.sha256) for o in record.outputs] == [("sr://risk-data/model.tar.gz", H["model"])]


def test_bad_input_and_team_boundary(
    teams: Platform, alice: RequestContext, mallory: RequestContext, auditor: RequestContext
) -> None:
    model = _record_chain(teams, alice)
    with pytest.raises(Forbidden):
        teams.lineage.query(mallory, TEAM, model)
    with pytest.raises(InvalidInput):  # another team's srn in this team's graph
        teams.lineage.associate(alice, TEAM, "srn:strongroom:fraud:artifact/x", model, "ContributedTo")
    with pytest.raises(NotFound):
        teams.lineage.query(alice, TEAM, "srn:strongroom:risk:artifact/nope")
    with pytest.raises(InvalidInput):
        teams.lineage.record_artifact(alice, TEAM, "sr://risk-data/y", "Spreadsheet")
    for hostile in ("sr://risk-data/#/../../x", "sr://risk-data/?x=../..", "sr://risk-data/a//b"):
        with pytest.raises(InvalidInput) as refused:  # the object-put key rules, as for job URIs
            teams.lineage.record_artifact(alice, TEAM, hostile, "DataSet")
        assert refused.value.field == "uri"
    with pytest.raises(InvalidInput):
        teams.lineage.associate(alice, TEAM, model, model, "DerivedFrom")
    assert teams.lineage.query(auditor, TEAM, model).nodes
    with pytest.raises(Forbidden):
        teams.lineage.record_action(auditor, TEAM, "approve", "Approval")


def test_tracked_components_and_experiments_enter_the_graph(teams: Platform, alice: RequestContext) -> None:
    svc = teams.experiments
    svc.create_experiment(alice, TEAM, "e")
    svc.create_trial_component(
        alice, TEAM, "prep", inputs={"raw": {"value": "sr://risk-data/raw.csv", "version_id": "v1"}}, commit=COMMIT
    )
    graph = teams.lineage.query(alice, TEAM, "srn:strongroom:risk:trial-component/prep")
    assert {n.type for n in graph.nodes} == {"Tracker", "DataSet", "Commit"}
    assert teams.lineage.describe(alice, TEAM, "srn:strongroom:risk:experiment/e").type == "Experiment"


def test_a_job_reading_a_trained_model_records_it_as_that_model(teams: Platform, alice: RequestContext) -> None:
    """The explainability job reads model.tar.gz as an ordinary input channel; the training job
    already recorded that object version as a Model, and recording the explain run must not clash."""
    model = _record_chain(teams, alice)
    explain = JobLineage(
        job="srn:strongroom:risk:job/explain-1",
        job_type="ProcessingJob",
        status="Completed",
        inputs=[
            ArtifactRef(uri="sr://risk-data/model.tar.gz", name="model", version_id="v1", sha256=H["model"]),
            ArtifactRef(uri="sr://risk-data/test.csv", name="dataset", version_id="v1", sha256=H["test"]),
        ],
        outputs=[ArtifactRef(uri="sr://risk-data/reports/analysis.json", name="report", version_id="v1")],
    )
    teams.lineage.record_job(RequestContext.system(), TEAM, explain)
    downstream = teams.lineage.query(alice, TEAM, model, direction="downstream", depth=2)
    assert explain.job in {n.srn for n in downstream.nodes}
    assert len(teams.lineage.list_entities(alice, TEAM, uri="sr://risk-data/model.tar.gz")) == 1
