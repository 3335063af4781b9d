"""The model registry's rules without a server: who registers and who approves, the approval
history, and which models a policy requiring ``Approved`` sees as approved."""

from __future__ import annotations

import uuid

import pytest

from strongroom.core.context import Grant, Principal, RequestContext
from strongroom.core.errors import Conflict, Forbidden, InvalidInput
from strongroom.db.base import utcnow
from strongroom.platform import Platform
from strongroom.policy.engine import PolicyEngine, Target, TeamFacts
from strongroom.serving.approval import same_model, status_of
from strongroom.serving.db import ModelRow
from strongroom.serving.registry_models import ApprovalSpec, ModelPackageGroupSpec, RegisterSpec
from tests.support import context_for

REQUIRE_APPROVED = """
@id("require-approved-models")
@message("deploy only models from an Approved model package version")
forbid (principal, action in [Action::"CreateEndpointConfig", Action::"CreateEndpoint"], resource)
when { context has model_approval && context.model_approval != "Approved" };
"""
MODEL = {
    "model_data": "sr://risk-models/training/xgb-train-1/output/model.tar.gz",
    "version_id": "v1",
    "sha256": "a" * 64,
    "runtime": "xgboost",
    "network_isolation": True,
    "kms_key": "risk-key",
    "source_job": "srn:strongroom:risk:job/xgb-train-1",
    "tags": {},
}


@pytest.fixture(scope="module")
def engine() -> PolicyEngine:
    return PolicyEngine.shipped()


@pytest.mark.parametrize(
    ("role", "team", "action", "allowed"),
    [
        ("DataScientist", "risk", "CreateModelPackage", True),
        ("DataScientist", "risk", "CreateModelPackageGroup", True),
        ("DataScientist", "risk", "DescribeModelPackage", True),
        ("DataScientist", "risk", "UpdateModelPackageApproval", False),
        ("MLOpsEngineer", "risk", "UpdateModelPackageApproval", True),
        ("MLOpsEngineer", "risk", "CreateModelPackage", True),
        ("DataScienceAdmin", "risk", "UpdateModelPackageApproval", True),
        ("MLOpsEngineer", "fraud", "UpdateModelPackageApproval", False),
        ("DataScientist", "fraud", "DescribeModelPackage", False),
        ("Auditor", "", "ListModelPackages", True),
        ("Auditor", "", "UpdateModelPackageApproval", False),
        ("PlatformAdmin", "", "UpdateModelPackageApproval", False),
    ],
)
def test_who_may_register_and_approve(engine: PolicyEngine, role: str, team: str, action: str, allowed: bool) -> None:
    principal = Principal(user="u", token_kind="api", grants=(Grant(role, team),))
    target = Target("model-package", "risk", "credit-default/1")
    assert engine.decide(principal, action, target).allowed is allowed


class _AttachedPolicy:
    def policy_facts(self, team: str) -> TeamFacts:
        return TeamFacts(policies={"require-approved": REQUIRE_APPROVED} if team == "risk" else {})


@pytest.mark.parametrize(
    ("approval", "allowed"),
    [("Approved", True), ("PendingManualApproval", False), ("Rejected", False), ("Unregistered", False)],
)
def test_a_team_policy_requires_approved_models(approval: str, allowed: bool) -> None:
    engine = PolicyEngine.shipped()
    engine.register_source(_AttachedPolicy())
    mo = Principal(user="mo", token_kind="api", grants=(Grant("MLOpsEngineer", "risk"),))
    target = Target("endpoint", "risk", "credit-endpoint")
    decision = engine.decide(mo, "CreateEndpoint", target, {"model_approval": approval})
    assert decision.allowed is allowed
    if not allowed:
        assert decision.policies == ("team:risk:require-approved:require-approved-models",)
    # without the fact (before the models are loaded) the policy does not apply; the other team is not bound
    assert engine.decide(mo, "CreateEndpoint", target).allowed
    other = Principal(user="eve", token_kind="api", grants=(Grant("MLOpsEngineer", "fraud"),))
    fraud = Target("endpoint", "fraud", "e")
    assert engine.decide(other, "CreateEndpoint", fraud, {"model_approval": "Rejected"}).allowed


def test_a_model_is_the_registered_one_only_if_every_pin_matches() -> None:
    assert same_model(MODEL, dict(MODEL, tags={"stage": "prod"}, kms_key="other"))
    assert not same_model(MODEL, dict(MODEL, version_id="v2"))
    assert not same_model(MODEL, dict(MODEL, runtime="script"))
    assert not same_model(MODEL, dict(MODEL, inference_code="sr://risk-code/inference.py"))


def _model(platform: Platform, name: str, **pins: str) -> None:
    with platform.db.write() as session:
        session.add(
            ModelRow(
                id=uuid.uuid4().hex,
                team="risk",
                name=name,
                created_by="mo",
                created_at=utcnow(),
                spec=dict(MODEL, **pins),
            )
        )


def test_register_approve_and_history(teams: Platform, alice: RequestContext) -> None:
    registry = teams.model_registry
    mo = context_for("mo", Grant("MLOpsEngineer", "risk"))
    _model(teams, "xgb-train-1-model")
    _model(teams, "other-model", version_id="v2")
    package = registry.register(alice, "risk", "credit-default", RegisterSpec(model_name="xgb-train-1-model"))
    assert (package.version, package.approval_status, package.model_name) == (
        1,
        "PendingManualApproval",
        "xgb-train-1-model",
    )
    second = registry.register(alice, "risk", "credit-default", RegisterSpec(model_name="other-model"))
    assert second.version == 2
    with pytest.raises(Forbidden, match="cannot approve"):
        registry.update_approval(
            alice, "risk", "credit-default", 1, ApprovalSpec(approval_status="Approved", reason="ok")
        )
    approved = registry.update_approval(
        mo, "risk", "credit-default", 1, ApprovalSpec(approval_status="Approved", reason="AUC 0.78")
    )
    assert [(h.status, h.by, h.reason) for h in approved.approval_history] == [
        ("PendingManualApproval", "alice", "registered"),
        ("Approved", "mo", "AUC 0.78"),
    ]
    with pytest.raises(Conflict):
        registry.update_approval(mo, "risk", "credit-default", 1, ApprovalSpec(approval_status="Approved", reason="x"))
    with pytest.raises(Conflict):
        registry.create_group(alice, "risk", ModelPackageGroupSpec(name="credit-default"))
    with pytest.raises(InvalidInput) as hostile:
        registry.describe_group(alice, "risk", "credit default")
    assert hostile.value.field == "model_package_group_name"
    with pytest.raises(Forbidden):
        registry.list_packages(context_for("mallory", Grant("DataScientist", "fraud")), "risk", "credit-default")
    assert [p.version for p in registry.list_packages(alice, "risk", "credit-default", "Approved")] == [1]
    with teams.db.read() as session:
        assert status_of(session, "risk", MODEL)[0] == "Approved"
        assert status_of(session, "risk", dict(MODEL, version_id="v2"))[0] == "PendingManualApproval"
        assert status_of(session, "risk", dict(MODEL, version_id="v3"))[0] == "Unregistered"


FOUR_EYES = """
@id("four-eyes")
@message("a model version is approved by someone other than who registered it")
forbid (principal, action == Action::"UpdateModelPackageApproval", resource)
when { resource.owner == principal.name };
"""


def test_a_team_policy_can_ask_for_four_eyes(teams: Platform, admin: RequestContext, alice: RequestContext) -> None:
    registry = teams.model_registry
    mo = context_for("mo", Grant("MLOpsEngineer", "risk"))
    _model(teams, "credit-model")
    teams.policies.attach(admin, "risk", "four-eyes", FOUR_EYES)
    own = registry.register(mo, "risk", "credit-default", RegisterSpec(model_name="credit-model"))
    approve = ApprovalSpec(approval_status="Approved", reason="fine")
    with pytest.raises(Forbidden, match="someone other than who registered it"):
        registry.update_approval(mo, "risk", "credit-default", own.version, approve)
    with pytest.raises(Forbidden):
        registry.register(
            mo, "risk", "credit-default", RegisterSpec(model_name="credit-model", approval_status="Approved")
        )
    theirs = registry.register(alice, "risk", "credit-default", RegisterSpec(model_name="credit-model"))
    assert registry.update_approval(mo, "risk", "credit-default", theirs.version, approve).approval_status == "Approved"
