"""The default policies, as a table: role x action x (own team, other team)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import cedarpy
import pytest

from strongroom.core.context import Grant, Principal
from strongroom.core.errors import ConfigurationError, InvalidInput
from strongroom.policy.engine import PolicyEngine, Target, TeamFacts

PA, AU, DSA, DS, ML = "PlatformAdmin", "Auditor", "DataScienceAdmin", "DataScientist", "MLOpsEngineer"
TEAM_ROLES = (DSA, DS, ML)
ALL_ROLES = (PA, AU, *TEAM_ROLES)

# action -> roles allowed on their own team's resources (platform roles: on any team)
EXPECTED: dict[str, set[str]] = {
    "CreateUser": {PA},
    "DisableUser": {PA},
    "ListUsers": {PA, AU},
    "DescribeUser": {PA, AU},
    "CreateTeam": {PA},
    "SetGuardrailExemptions": {PA},
    "DescribeTeam": {PA, AU, DSA, DS, ML},
    "AddTeamMember": {PA, DSA},
    "RemoveTeamMember": {PA, DSA},
    "AttachTeamPolicy": {PA},
    "DetachTeamPolicy": {PA},
    "ListTeamPolicies": {PA, AU, DSA},
    "SimulatePolicy": {PA, AU},
    "ReadAuditLog": {PA, AU},
    "VerifyAuditLog": {PA, AU},
    "ReadMetrics": {PA, AU},
    "CreateProcessingJob": {DS},
    "CreateTrainingJob": {DS},
    "CreateTransformJob": {DS},
    "CreateModel": {ML},
    "CreateEndpoint": {ML},
    "DeleteEndpoint": {ML},
    "UpdateEndpoint": {ML},  # blue-green; the endpoint guardrail keeps data scientists out
    "DescribeModel": {DSA, DS, ML},
    "ListModels": {DSA, DS, ML},
    "DeleteModel": {ML},
    "CreateEndpointConfig": {ML},
    "DeleteEndpointConfig": {ML},
    "DescribeEndpointConfig": {DSA, DS, ML},
    "ListEndpointConfigs": {DSA, DS, ML},
    "DescribeEndpoint": {DSA, DS, ML},
    "ListEndpoints": {DSA, DS, ML},
    # data scientists call their team's endpoints; they cannot create or delete them
    "InvokeEndpoint": {DS, ML},
    # no user token writes capture data: only an endpoint's own execution role (tested in
    # tests/unit/serving) may
    "PutCaptureData": set(),
    # the model registry: who trains registers, who deploys approves (tests/unit/serving/test_registry.py)
    "CreateModelPackageGroup": {DSA, DS, ML},
    "CreateModelPackage": {DSA, DS, ML},
    "DescribeModelPackageGroup": {DSA, DS, ML, AU},
    "ListModelPackageGroups": {DSA, DS, ML, AU},
    "DescribeModelPackage": {DSA, DS, ML, AU},
    "ListModelPackages": {DSA, DS, ML, AU},
    "UpdateModelPackageApproval": {DSA, ML},
    "CreateRepository": {DSA, DS},
    "DeleteRepository": {DSA, DS},
    "ListRepositories": {DSA, DS, ML, AU},
    "DescribeRepository": {DSA, DS, ML, AU},
    "GetCommit": {DSA, DS, ML, AU},
    "ListCommits": {DSA, DS, ML, AU},
    "GitPull": {DSA, DS, ML},
    "GitPush": {DSA, DS, ML},
    "DescribeJob": {DSA, DS, ML},
    "ListJobs": {DSA, DS, ML},
    "GetJobLogs": {DS, ML},
    "StopJob": {DSA, DS},
    "InterruptJob": {DSA, DS},
    "RegisterRuntime": {PA},
    # keys: platform admins and team admins manage them; only team members use them
    "CreateKey": {PA, DSA},
    "EnableKey": {PA, DSA},
    "DisableKey": {PA, DSA},
    "UpdateKeyRotation": {PA, DSA},
    "CreateAlias": {PA, DSA},
    "DeleteAlias": {PA, DSA},
    "PutKeyPolicy": {PA, DSA},
    "RotateKey": {PA, DSA},
    "ScheduleKeyDeletion": {PA},
    "CancelKeyDeletion": {PA},
    "DescribeKey": {PA, AU, DSA, DS, ML},
    "ListKeys": {PA, AU, DSA, DS, ML},
    "GetKeyPolicy": {PA, AU, DSA},
    "GenerateDataKey": {DS},
    "Decrypt": {DS, ML},
    # buckets: metadata is visible to platform roles, data never is
    "CreateBucket": {DSA, DS},
    "DeleteBucket": {DSA},
    "PutBucketPolicy": {DSA},
    "DeleteBucketPolicy": {DSA},
    "ListBuckets": {PA, AU, DSA, DS, ML},
    "DescribeBucket": {PA, AU, DSA, DS, ML},
    "GetBucketPolicy": {AU, DSA, DS},
    "PutObject": {DS},
    "DeleteObject": {DS},
    "CopyObject": {DS},
    "PutObjectTags": {DS},
    "GetObject": {DS, ML},
    "HeadObject": {DS, ML},
    "GetObjectTags": {DS, ML},
    "ListObjects": {DSA, DS, ML},
    "ListObjectVersions": {DSA, DS, ML},
    # experiments and lineage: the team's DataScientist and MLOpsEngineer write; the Auditor reads all teams'
    "CreateExperiment": {DS, ML},
    "UpdateExperiment": {DS, ML},
    "DeleteExperiment": {DS, ML},
    "CreateTrial": {DS, ML},
    "DeleteTrial": {DS, ML},
    "AssociateTrialComponent": {DS, ML},
    "DisassociateTrialComponent": {DS, ML},
    "CreateTrialComponent": {DS, ML},
    "UpdateTrialComponent": {DS, ML},
    "DeleteTrialComponent": {DS, ML},
    "BatchWriteTrialComponents": {DS, ML},
    "CreateLineageArtifact": {DS, ML},
    "CreateLineageAction": {DS, ML},
    "CreateLineageContext": {DS, ML},
    "AddLineageAssociation": {DS, ML},
    "DeleteLineageAssociation": {DS, ML},
    "DescribeExperiment": {AU, DS, ML},
    "ListExperiments": {AU, DS, ML},
    "DescribeTrial": {AU, DS, ML},
    "ListTrials": {AU, DS, ML},
    "DescribeTrialComponent": {AU, DS, ML},
    "ListTrialComponents": {AU, DS, ML},
    "SearchTrialComponents": {AU, DS, ML},
    "DescribeLineageEntity": {AU, DS, ML},
    "ListLineageEntities": {AU, DS, ML},
    "QueryLineage": {AU, DS, ML},
    # catalog: platform admins and team admins manage portfolios; launches need a portfolio grant
    "ListProducts": {PA, AU, DSA, DS, ML},
    "DescribeProduct": {PA, AU, DSA, DS, ML},
    "CreatePortfolio": {PA, DSA},
    "DeletePortfolio": {PA, DSA},
    "AssociateProductWithPortfolio": {PA, DSA},
    "DisassociateProductFromPortfolio": {PA, DSA},
    "GrantPortfolioAccess": {PA, DSA},
    "RevokePortfolioAccess": {PA, DSA},
    "ListPortfolios": {PA, AU, DSA, DS, ML},
    "DescribePortfolio": {PA, AU, DSA, DS, ML},
    "LaunchProduct": {PA, DSA, DS, ML},
    "UpdateProvisionedProduct": {PA, DSA},  # and a DataScientist's own (owner test below)
    "TerminateProvisionedProduct": {PA, DSA},
    "ListProvisionedProducts": {PA, AU, DSA, DS, ML},
    "DescribeProvisionedProduct": {PA, AU, DSA, DS, ML},
    # notebooks: only the catalog creates them; the owner and the team's admins open them
    "CreateNotebook": set(),
    "UpdateNotebook": set(),
    "DeleteNotebook": set(),
    "ListNotebooks": {PA, AU, DSA, DS, ML},
    "DescribeNotebook": {PA, AU, DSA, DS, ML},
    "StartNotebook": {PA, DSA},
    "StopNotebook": {PA, DSA},
    "OpenNotebook": {DSA},
    "CreatePresignedNotebookUrl": {DSA},
    "UsePackageIndex": {DSA, DS, ML},
    # model monitoring: the MLOpsEngineer creates and runs monitors; the team reads them
    "CreateMonitoringJob": {ML},
    "CreateMonitoringSchedule": {ML},
    "DeleteMonitoringSchedule": {ML},
    "StopMonitoringSchedule": {ML},
    "StartMonitoringSchedule": {ML},
    "StartMonitoringExecution": {ML},
    "DescribeMonitoringSchedule": {DSA, DS, ML},
    "ListMonitoringSchedules": {DSA, DS, ML},
    "ListMonitoringExecutions": {DSA, DS, ML},
    # a team's own alert webhook: its DataScienceAdmin sets it; its MLOpsEngineers read it
    "PutTeamAlertWebhook": {DSA},
    "DeleteTeamAlertWebhook": {DSA},
    "DescribeTeamAlertWebhook": {DSA, ML},
}
SAFE_WORKLOAD = {
    "network_isolation": True,
    "volume_kms_key": "srn:strongroom:risk:key/risk-key",
    "product_granted": True,
}


@pytest.fixture(scope="module")
def engine() -> PolicyEngine:
    return PolicyEngine.shipped()


def principal(role: str) -> Principal:
    team = "" if role in (PA, AU) else "risk"
    return Principal(user="u", token_kind="api", grants=(Grant(role, team),))


def test_every_concrete_action_is_in_the_table(engine: PolicyEngine) -> None:
    concrete = {a for a in engine.actions if not a.endswith("Actions")}
    self_service = {
        "ListTeams",
        "CreateApiToken",
        "ListApiTokens",
        "RevokeApiToken",
        "AssumeRole",
        "WhoAmI",
        # the web console: a user's own session, and viewing its pages (each page's reads are checked)
        "OpenConsoleSession",
        "CloseConsoleSession",
        "SwitchConsoleRole",
        "ViewConsolePage",
        "DescribeRolePermissions",
        "ViewConsoleSignIn",  # anyone, signed in or not (test_only_the_sign_in_page_is_open_to_anyone)
        "GetPlatformStatus",
        "CreateExecutionToken",
        "BootstrapPlatform",
        "RecoverPlatformAdmin",  # `strongroom admin recover`, on the host with the root key
        "DestroyKey",  # the platform's lifecycle worker only
        # the platform's job scheduler and detective controls only
        "StartJob",
        "RecordJobProgress",
        "FinishJob",
        "RaiseAlert",
        "UpdateEndpointStatus",  # the platform's serving worker only
        "UpdateMonitoringExecution",  # the platform's monitoring scheduler only
        "ListRuntimes",  # every role holder, to see what they may run on (test_role_holders_only)
        "GetApiDocument",
    }
    assert concrete - self_service == set(EXPECTED)


@pytest.mark.parametrize("action", sorted(EXPECTED))
@pytest.mark.parametrize("role", ALL_ROLES)
@pytest.mark.parametrize("resource_team", ["risk", "fraud"])
def test_role_matrix(engine: PolicyEngine, action: str, role: str, resource_team: str) -> None:
    target = Target("thing", resource_team, "x")
    decision = engine.decide(principal(role), action, target, SAFE_WORKLOAD)
    own_team = resource_team == "risk" or role in (PA, AU)
    expected = role in EXPECTED[action] and own_team
    assert decision.allowed == expected, (action, role, resource_team, decision)
    if role in TEAM_ROLES and resource_team == "fraud":
        assert "guardrail-team-boundary" in decision.policies


@pytest.mark.parametrize("action", ["ListRuntimes", "GetApiDocument"])
def test_role_holders_only(engine: PolicyEngine, action: str) -> None:
    """Runtimes (interpreter paths, package versions) and the API document: any role, but not none."""
    target = Target("platform", "", "x", owner="u")
    for role in ALL_ROLES:
        assert engine.decide(principal(role), action, target).allowed, role
    roleless = Principal(user="u", token_kind="api", grants=())
    assert not engine.decide(roleless, action, target).allowed


@pytest.mark.parametrize(
    "action", ["CreateProcessingJob", "CreateTrainingJob", "CreateTransformJob", "CreateMonitoringJob"]
)
def test_network_isolation_guardrail(engine: PolicyEngine, action: str) -> None:
    target = Target("job", "risk", "j")
    role = ML if action == "CreateMonitoringJob" else DS
    for context in ({"volume_kms_key": "k"}, {"volume_kms_key": "k", "network_isolation": False}):
        decision = engine.decide(principal(role), action, target, context)
        assert not decision.allowed
        assert decision.policies == ("guardrail-network-isolation",)
        assert "network isolation" in decision.explain()


def test_volume_key_guardrail(engine: PolicyEngine) -> None:
    decision = engine.decide(
        principal(DS), "CreateTrainingJob", Target("job", "risk", "j"), {"network_isolation": True}
    )
    assert not decision.allowed and decision.policies == ("guardrail-volume-kms-key",)
    empty = engine.decide(
        principal(DS),
        "CreateTrainingJob",
        Target("job", "risk", "j"),
        {"network_isolation": True, "volume_kms_key": ""},
    )
    assert not empty.allowed


@dataclass
class Source:
    """A policy source holding fixed facts per team, as identity, policy, kms and storage do."""

    facts: dict[str, TeamFacts]
    asked: list[str] = field(default_factory=list)

    def policy_facts(self, team: str) -> TeamFacts:
        self.asked.append(team)
        return self.facts.get(team, TeamFacts())


def engine_with(**facts: TeamFacts) -> PolicyEngine:
    local = PolicyEngine.shipped()
    local.register_source(Source(dict(facts)))
    return local


def test_facts_come_from_the_registered_sources_until_invalidated() -> None:
    local = PolicyEngine.shipped()
    exemptions = Source({"risk": TeamFacts(exemptions=frozenset({"network-isolation"}))})
    policies = Source({"risk": TeamFacts(policies={"open": "permit (principal, action, resource);"})})
    local.register_source(exemptions)
    local.register_source(policies)
    ctx = {"network_isolation": False, "volume_kms_key": "k"}
    for _ in range(3):
        assert local.decide(principal(DS), "CreateTrainingJob", Target("job", "risk", "j"), ctx).allowed
    assert exemptions.asked == ["risk"] and policies.asked == ["risk"]  # asked once, then cached
    exemptions.facts["risk"] = TeamFacts()
    assert local.decide(principal(DS), "CreateTrainingJob", Target("job", "risk", "j"), ctx).allowed
    local.invalidate("risk")
    assert not local.decide(principal(DS), "CreateTrainingJob", Target("job", "risk", "j"), ctx).allowed
    assert exemptions.asked == ["risk", "risk"]


def test_a_question_asked_again_is_answered_without_cedar_until_facts_are_dropped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    closed = "forbid (principal, action, resource);"
    source = Source({"risk": TeamFacts()})
    local = PolicyEngine.shipped()
    local.register_source(source)
    asked: list[int] = []
    real = cedarpy.is_authorized_batch

    def counting(*args: Any, **kwargs: Any) -> Any:
        asked.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(cedarpy, "is_authorized_batch", counting)
    target = Target("trial-component", "risk", "*")
    for _ in range(3):
        assert local.decide(principal(DS), "BatchWriteTrialComponents", target).allowed
    assert len(asked) == 1
    assert not local.decide(principal(DS), "CreateEndpoint", Target("endpoint", "risk", "e")).allowed
    assert not local.decide(principal(DS), "BatchWriteTrialComponents", Target("trial-component", "fraud", "*")).allowed
    assert len(asked) == 3  # another action, another team: asked afresh
    source.facts["risk"] = TeamFacts(policies={"closed": closed})
    local.invalidate("risk")
    assert not local.decide(principal(DS), "BatchWriteTrialComponents", target).allowed
    source.facts["risk"] = TeamFacts()
    local.invalidate_all()
    assert local.decide(principal(DS), "BatchWriteTrialComponents", target).allowed
    assert len(asked) == 5
    ctx = {"network_isolation": True, "volume_kms_key": "k"}
    for _ in range(2):
        local.decide(principal(DS), "CreateTrainingJob", Target("job", "risk", "j"), ctx)
    assert len(asked) == 7  # a question with a context is never kept


def test_exemption_lifts_only_that_guardrail_for_that_team(engine: PolicyEngine) -> None:
    local = engine_with(risk=TeamFacts(exemptions=frozenset({"network-isolation"})))
    ctx = {"network_isolation": False, "volume_kms_key": "k"}
    assert local.decide(principal(DS), "CreateTrainingJob", Target("job", "risk", "j"), ctx).allowed
    assert not local.decide(
        principal(DS), "CreateTrainingJob", Target("job", "risk", "j"), {"network_isolation": False}
    ).allowed
    other = Principal("v", "api", (Grant(DS, "fraud"),))
    assert not local.decide(other, "CreateTrainingJob", Target("job", "fraud", "j"), ctx).allowed


def test_data_scientist_cannot_create_endpoints_even_with_a_team_policy() -> None:
    local = engine_with(risk=TeamFacts(policies={"open": "permit (principal, action, resource);"}))
    decision = local.decide(principal(DS), "CreateEndpoint", Target("endpoint", "risk", "e"))
    assert not decision.allowed
    assert "guardrail-no-endpoint-by-data-scientist" in decision.policies


def test_team_policy_applies_only_to_its_team() -> None:
    local = engine_with(
        risk=TeamFacts(
            policies={
                "ds-status": '@id("ds-simulate")\npermit (principal, action == Action::"SimulatePolicy", resource);'
            }
        )
    )
    assert local.decide(principal(DS), "SimulatePolicy", Target("policy", "risk", "s")).allowed
    assert (
        "team:risk:ds-status:ds-simulate"
        in local.decide(principal(DS), "SimulatePolicy", Target("policy", "risk", "s")).policies
    )
    fraud_ds = Principal("v", "api", (Grant(DS, "fraud"),))
    assert not local.decide(fraud_ds, "SimulatePolicy", Target("policy", "fraud", "s")).allowed


def test_invalid_team_policies_are_rejected(engine: PolicyEngine) -> None:
    with pytest.raises(InvalidInput, match="parse"):
        engine.validate_team_policy("risk", "bad", "permit (principal, action, resource")
    with pytest.raises(InvalidInput, match="schema"):
        engine.validate_team_policy("risk", "bad", 'permit (principal, action == Action::"NoSuchAction", resource);')
    with pytest.raises(InvalidInput, match="schema"):
        engine.validate_team_policy(
            "risk", "bad", "permit (principal, action, resource) when { resource.colour == 1 };"
        )


def test_execution_role_cannot_touch_identity(engine: PolicyEngine) -> None:
    admin_exec = Principal("u", "execution", (Grant(DSA, "risk"),), scope="srn:strongroom:risk:notebook/nb")
    decision = engine.decide(admin_exec, "AddTeamMember", Target("team", "risk", "risk"))
    assert not decision.allowed and "guardrail-execution-role-no-iam" in decision.policies
    assert engine.decide(principal(DSA), "AddTeamMember", Target("team", "risk", "risk")).allowed


def test_shared_tag_allows_cross_team_read_only_for_shared_read_actions(engine: PolicyEngine) -> None:
    fraud_ds = Principal("v", "api", (Grant(DS, "fraud"),))
    tagged = Target("object", "risk", "o", tags={"shared": "true"})
    decision = engine.decide(fraud_ds, "CreateTrainingJob", tagged, SAFE_WORKLOAD)
    assert not decision.allowed  # not a shared-read action: the boundary still holds


def test_unknown_action_is_a_programming_error(engine: PolicyEngine) -> None:

    with pytest.raises(ConfigurationError):
        engine.decide(principal(PA), "LaunchMissiles", Target("x", "", "y"))


OWNED = [
    "UpdateProvisionedProduct",
    "TerminateProvisionedProduct",
    "StartNotebook",
    "StopNotebook",
    "OpenNotebook",
    "CreatePresignedNotebookUrl",
]


@pytest.mark.parametrize("role", [DS, ML])
@pytest.mark.parametrize("action", OWNED)
def test_team_members_manage_only_their_own_notebooks_and_launches(
    engine: PolicyEngine, action: str, role: str
) -> None:
    alice = Principal("alice", "api", (Grant(role, "risk"),))
    assert engine.decide(alice, action, Target("notebook", "risk", "nb", owner="alice")).allowed
    assert not engine.decide(alice, action, Target("notebook", "risk", "nb", owner="bob")).allowed
    other_team = Principal("alice", "api", (Grant(role, "fraud"),))
    assert not engine.decide(other_team, action, Target("notebook", "risk", "nb", owner="alice")).allowed


def test_launch_needs_a_portfolio_grant(engine: PolicyEngine) -> None:
    target = Target("provisioned-product", "risk", "nb", owner="u")
    denied = engine.decide(principal(DS), "LaunchProduct", target, {"product_granted": False})
    assert not denied.allowed and denied.policies == ("guardrail-catalog-portfolio",)
    assert "portfolio" in denied.explain()
    assert engine.decide(principal(DS), "LaunchProduct", target, {"product_granted": True}).allowed


def test_catalog_launch_role_is_only_for_the_platform(engine: PolicyEngine) -> None:
    launch_role = Grant("CatalogProvisioner", "risk")
    system = Principal("catalog", "system", (launch_role,))
    for action in ("CreateTeam", "CreateKey", "CreateBucket", "CreateRepository", "CreateNotebook", "AttachTeamPolicy"):
        assert engine.decide(system, action, Target("x", "risk", "y")).allowed, action
    for action in ("PutObject", "GetObject", "Decrypt", "CreateUser", "LaunchProduct"):
        assert not engine.decide(system, action, Target("x", "risk", "y")).allowed, action
    borrowed = Principal("mallory", "api", (launch_role,))  # a user token can never act as the launch role
    assert not engine.decide(borrowed, "CreateBucket", Target("bucket", "risk", "b")).allowed


def test_only_the_sign_in_page_is_open_to_anyone(engine: PolicyEngine) -> None:
    anonymous = Principal.anonymous()
    assert engine.decide(anonymous, "ViewConsoleSignIn", Target("console-page", "", "signin")).allowed
    assert not engine.decide(anonymous, "ViewConsoleSignIn", Target("console-page", "", "audit")).allowed
    assert not engine.decide(anonymous, "ViewConsolePage", Target("console-page", "", "home", owner="u")).allowed


def test_mlops_engineer_makes_data_keys_of_its_team_keys_only(engine: PolicyEngine) -> None:
    """Its monitoring jobs' logs are encrypted under a data key the job service makes as the caller."""
    own = engine.decide(principal(ML), "GenerateDataKey", Target("key", "risk", "k1"))
    other = engine.decide(principal(ML), "GenerateDataKey", Target("key", "fraud", "k2"))
    assert own.allowed and "monitoring-engineer-job-log-keys" in own.policies
    assert not other.allowed
    assert not engine.decide(principal(ML), "PutObject", Target("object", "risk", "b/k")).allowed


def test_a_monitoring_job_writes_its_outputs_but_no_user_token_does(engine: PolicyEngine) -> None:
    target = Target("object", "risk", "risk-models/reports/statistics.json")
    job = Principal(user="u", token_kind="execution", grants=(Grant(ML, "risk"),), scope="srn:strongroom:risk:job/m-1")
    assert engine.decide(job, "PutObject", target).allowed
    elsewhere = Principal(
        user="u", token_kind="execution", grants=(Grant(ML, "risk"),), scope="srn:strongroom:fraud:job/m"
    )
    assert not engine.decide(elsewhere, "PutObject", Target("object", "fraud", "f/k")).allowed
    assert not engine.decide(principal(ML), "PutObject", target).allowed


def test_mlops_engineer_puts_edited_constraints_and_nothing_else(engine: PolicyEngine) -> None:
    edited = Target("object", "risk", "risk-models/credit/edited/constraints.json")
    assert engine.decide(principal(ML), "PutObject", edited).allowed
    assert not engine.decide(
        principal(ML), "PutObject", Target("object", "risk", "risk-data/constraints.json.csv")
    ).allowed
    assert not engine.decide(principal(ML), "PutObject", Target("object", "fraud", "f/constraints.json")).allowed
    assert not engine.decide(principal(ML), "DeleteObject", edited).allowed


@pytest.mark.parametrize("role", ALL_ROLES)
@pytest.mark.parametrize("resource_team", ["risk", "fraud"])
def test_a_batch_of_decisions_is_the_role_matrix(engine: PolicyEngine, role: str, resource_team: str) -> None:
    """``decide_many`` (the console's "my access" table) says what ``decide`` says, action by action."""
    actions = sorted(EXPECTED)
    target = Target("thing", resource_team, "x")
    decisions = engine.decide_many(principal(role), actions, target, SAFE_WORKLOAD)
    assert [d.action for d in decisions] == actions
    own_team = resource_team == "risk" or role in (PA, AU)
    assert {d.action for d in decisions if d.allowed} == {a for a in actions if role in EXPECTED[a] and own_team}
    for decision in decisions:
        alone = engine.decide(principal(role), decision.action, target, SAFE_WORKLOAD)
        assert (decision.grant, set(decision.policies), set(decision.messages)) == (
            alone.grant,
            set(alone.policies),
            set(alone.messages),
        )  # Cedar reports the determining policies as a set


def test_a_batch_tries_the_next_grant_only_for_what_the_first_denied(
    engine: PolicyEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    import cedarpy

    batches: list[int] = []
    real = cedarpy.is_authorized_batch

    def counted(requests: list[dict[str, object]], *args: object, **kwargs: object) -> object:
        batches.append(len(requests))
        return real(requests, *args, **kwargs)

    monkeypatch.setattr(cedarpy, "is_authorized_batch", counted)
    both = Principal(user="u", token_kind="api", grants=(Grant(DS, "risk"), Grant(ML, "risk")))
    decisions = engine.decide_many(
        both, ["CreateProcessingJob", "CreateEndpoint"], Target("x", "risk", "y"), SAFE_WORKLOAD
    )
    assert [(d.allowed, d.grant) for d in decisions] == [(True, Grant(DS, "risk")), (True, Grant(ML, "risk"))]
    assert batches == [2, 1]
    with pytest.raises(ConfigurationError):
        engine.decide_many(both, ["CreateProcessingJob", "NoSuchAction"], Target("x", "risk", "y"))
