"""Models and the registry, an endpoint's charts, monitors and the admin pages: each role sees only
the controls it may use, a forged request is refused by the guard and audited, hostile text renders
literally, lists paginate, and every action lands through the same service the API calls."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from strongroom.core.context import Grant
from strongroom.demo.data import credit_default
from strongroom.monitor.constraints import suggest_constraints
from strongroom.monitor.models import ScheduleSpec
from strongroom.monitor.statistics import compute_statistics
from strongroom.platform import Platform
from strongroom.serving.models import EndpointConfigSpec, EndpointSpec, ModelSpec
from strongroom.serving.registry_models import RegisterSpec
from tests.integration.console.conftest import ADMIN, Browser, audited_actions, signed_in
from tests.support import context_for

pytestmark = pytest.mark.timeout(600)

HOSTILE = "<script>alert(1)</script> {{7*7}}"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt; {{7*7}}"
ALICE = context_for("alice", Grant("DataScientist", "risk"))
OMAR = context_for("omar", Grant("MLOpsEngineer", "risk"))
DORA = context_for("dora", Grant("DataScienceAdmin", "risk"))


@dataclass
class Deployed:
    platform: Platform
    omar: Browser
    alice: Browser
    dora: Browser


@pytest.fixture
def deployed(console_platform: Platform, new_browser: Callable[[], Browser]) -> Deployed:
    """Team risk with an MLOps engineer and its admin, a key, a bucket, a model registered as version 1
    of ``credit-default`` (by the data scientist) and an endpoint capturing to the bucket."""
    p = console_platform
    for user, role in (("omar", "MLOpsEngineer"), ("dora", "DataScienceAdmin")):
        p.identity.create_user(ADMIN, user)
        p.identity.add_member(ADMIN, "risk", user, role)
    p.kms.create_key(ADMIN, "risk", "default", "risk team key")
    p.storage.create_bucket(DORA, "risk", "risk-models")
    p.storage.put_object(ALICE, "risk-models", "models/model.tar.gz", [b"not read by these pages"])
    p.serving.create_model(
        OMAR, "risk", ModelSpec(name="credit-xgb", model_data="sr://risk-models/models/model.tar.gz")
    )
    p.model_registry.register(
        ALICE, "risk", "credit-default", RegisterSpec(model_name="credit-xgb", description=HOSTILE)
    )
    config = {
        "name": "credit-cfg",
        "ProductionVariants": [{"VariantName": "AllTraffic", "ModelName": "credit-xgb"}],
        "DataCaptureConfig": {"DestinationS3Uri": "sr://risk-models/capture"},
    }
    p.serving.create_endpoint_config(OMAR, "risk", EndpointConfigSpec.model_validate(config))
    p.serving.create_endpoint(
        OMAR, "risk", EndpointSpec.model_validate({"name": "credit-ep", "EndpointConfigName": "credit-cfg"})
    )
    return Deployed(
        p,
        signed_in(p, new_browser, "omar"),
        signed_in(p, new_browser, "alice"),
        signed_in(p, new_browser, "dora"),
    )


def test_a_data_scientist_sees_no_approval_form_and_a_forged_approval_is_refused(deployed: Deployed) -> None:
    alice, omar = deployed.alice, deployed.omar
    listing = alice.get("/console/registry")
    assert listing.status_code == 200 and 'href="/console/registry/risk/credit-default"' in listing.text
    versions = alice.get("/console/registry/risk/credit-default?status=PendingManualApproval")
    assert "version 1" in versions.text and ESCAPED in versions.text and "<script>alert" not in versions.text
    page = alice.get("/console/registry/risk/credit-default/1")
    assert page.status_code == 200 and "PendingManualApproval" in page.text
    assert "approval-form" not in page.text and "Approve version 1" not in page.text

    forged = alice.post(
        "/console/registry/risk/credit-default/1/approval", {"approval_status": "Approved", "reason": "ok"}
    )

    assert forged.status_code == 403 and "UpdateModelPackageApproval" in forged.text
    assert audited_actions(deployed.platform, forged.headers["x-request-id"]) == [
        ("UpdateModelPackageApproval", "Deny")
    ]
    assert 'id="approval-form"' in omar.get("/console/registry/risk/credit-default/1").text
    assert omar.post("/console/registry/risk/credit-default/1/approval", csrf=False).status_code == 403


def test_the_mlops_engineer_approves_with_a_required_reason_kept_in_the_history(deployed: Deployed) -> None:
    omar = deployed.omar
    omar.get("/console/registry/risk/credit-default/1")
    blank = omar.post(
        "/console/registry/risk/credit-default/1/approval", {"approval_status": "Approved", "reason": " "}
    )
    assert blank.status_code == 422 and "give the reason" in blank.text and 'aria-invalid="true"' in blank.text
    assert deployed.platform.model_registry.describe(OMAR, "risk", "credit-default", 1).approval_status == (
        "PendingManualApproval"
    )

    done = omar.post(
        "/console/registry/risk/credit-default/1/approval", {"approval_status": "Approved", "reason": HOSTILE}
    )
    assert done.status_code == 303 and done.headers["location"] == "/console/registry/risk/credit-default/1"
    # the registry's own event (its lineage records follow, as through the API)
    assert audited_actions(deployed.platform, done.headers["x-request-id"])[0] == (
        "UpdateModelPackageApproval",
        "Allow",
    )
    page = omar.get("/console/registry/risk/credit-default/1")
    history = re.search(r'<table id="approval-history">(.*?)</table>', page.text, re.S)
    assert history is not None
    rows = re.findall(
        r"<tr><td>[^<]+</td><td>(\w+)</td><td>(\w+)</td><td>(\w+)</td><td>([^<]*)</td></tr>", history.group(1)
    )
    assert rows == [
        ("PendingManualApproval", "alice", "DataScientist", ESCAPED),
        ("Approved", "omar", "MLOpsEngineer", ESCAPED),
    ]
    assert '<strong id="approval-status" class="status-Approved">Approved</strong>' in page.text
    again = omar.post(
        "/console/registry/risk/credit-default/1/approval", {"approval_status": "Approved", "reason": "twice"}
    )
    assert again.status_code == 409 and "already Approved" in again.text

    models = omar.get("/console/models")
    assert 'href="/console/models/risk/credit-xgb"' in models.text and "page 1 of 1 (1 in all)" in models.text
    model = omar.get("/console/models/risk/credit-xgb")
    assert model.status_code == 200 and "sr://risk-models/models/model.tar.gz" in model.text


def test_the_endpoint_page_draws_counts_and_latency_per_variant_and_polls(deployed: Deployed) -> None:
    # The data plane's own counters (what each invocation records), fed as the relay would.
    stats = deployed.platform.serving.stats
    for model_seconds in (0.0008, 0.003, 0.003, 0.004, 0.02):
        stats.record("risk", "credit-ep", "AllTraffic", 200, model_seconds, model_seconds + 0.0004)
    stats.record("risk", "credit-ep", "AllTraffic", 415, 0.0, 0.0001)
    stats.record("risk", "credit-ep", "AllTraffic", 500, 0.0, 0.0002)
    alice = deployed.alice

    listing = alice.get("/console/endpoints")
    assert 'href="/console/endpoints/risk/credit-ep"' in listing.text
    page = alice.get("/console/endpoints/risk/credit-ep")
    assert page.status_code == 200 and "AllTraffic" in page.text and "sr://risk-models/capture" in page.text
    assert page.text.count("<svg ") == 3 and "<script" not in page.text.split("</head>", 1)[1]
    assert "2xx: 5; 4xx: 1; 5xx: 1" in page.text  # the counts chart's accessible description
    assert "≤1ms: 1; ≤5ms: 3; ≤25ms: 1" in page.text  # model latency histogram
    assert "<td>7</td><td>1</td><td>1</td>" in page.text

    fragment = alice.client.get("/console/endpoints/risk/credit-ep/metrics", headers={"HX-Request": "true"})
    assert fragment.status_code == 200 and 'hx-trigger="every 5s"' in fragment.text and "<html" not in fragment.text
    assert audited_actions(deployed.platform, fragment.headers["x-request-id"]) == [("ViewConsolePage", "Allow")]
    assert "default-src 'none'" in fragment.headers["content-security-policy"]


def test_another_team_sees_no_endpoint_model_or_monitor(deployed: Deployed, new_browser: Callable[[], Browser]) -> None:
    p = deployed.platform
    p.identity.create_team(ADMIN, "fraud")
    p.identity.create_user(ADMIN, "eve")
    p.identity.add_member(ADMIN, "fraud", "eve", "MLOpsEngineer")
    eve = signed_in(p, new_browser, "eve")
    for path in (
        "/console/endpoints/risk/credit-ep",
        "/console/endpoints/risk/credit-ep/metrics",
        "/console/models/risk/credit-xgb",
        "/console/registry/risk/credit-default/1",
    ):
        refused = eve.get(path)
        assert refused.status_code in (403, 404), path
        assert audited_actions(p, refused.headers["x-request-id"]) == [("ViewConsolePage", "Deny")], path
    assert "credit-xgb" not in eve.get("/console/models").text


def _monitored(deployed: Deployed) -> tuple[str, str]:
    """A schedule on the endpoint and one finished execution with violations, its outputs in the
    bucket as the monitoring job writes them; returns the execution id and the report's bytes."""
    p = deployed.platform
    frame = credit_default(400, seed=3)[["LIMIT_BAL", "EDUCATION", "AGE"]].rename(columns={"AGE": HOSTILE})
    statistics = compute_statistics([frame])
    constraints = suggest_constraints(statistics)
    constraints.monitoring_config.distribution_constraints.comparison_threshold = 0.2
    p.storage.put_object(ALICE, "risk-models", "baseline/statistics.json", [json.dumps(statistics.to_json()).encode()])
    p.storage.put_object(
        ALICE, "risk-models", "baseline/constraints.json", [json.dumps(constraints.to_json()).encode()]
    )
    spec = ScheduleSpec(
        name="credit-drift",
        endpoint="credit-ep",
        output_uri="sr://risk-models/reports",
        statistics_uri="sr://risk-models/baseline/statistics.json",
        constraints_uri="sr://risk-models/baseline/constraints.json",
        schedule_cron_expression="cron(0 * ? * * *)",
    )
    p.monitoring.create_schedule(OMAR, "risk", spec)
    execution = p.monitoring.run_now(OMAR, "risk", "credit-drift")
    violations = [
        {"feature_name": "LIMIT_BAL", "constraint_check_type": "baseline_drift_check",
         "description": "Baseline drift distance: 0.51 exceeds threshold: 0.2"},
        {"feature_name": HOSTILE, "constraint_check_type": "data_type_check", "description": HOSTILE},
    ]  # fmt: skip
    prefix = execution.output_uri.split("/", 3)[3]
    p.storage.put_object(
        ALICE, "risk-models", f"{prefix}/constraint_violations.json", [json.dumps({"violations": violations}).encode()]
    )
    report = "<!doctype html><title>drift</title><style>h1{color:red}</style><h1>LIMIT_BAL drifted</h1>"
    p.storage.put_object(ALICE, "risk-models", f"{prefix}/report.html", [report.encode()])
    p.monitoring_runner._finish(
        execution.id,
        "CompletedWithViolations",
        "2 violation(s) in 400 rows",
        400,
        [{k: v[k] for k in ("feature_name", "constraint_check_type")} for v in violations],
        {"LIMIT_BAL": 0.51, "EDUCATION": 0.05, HOSTILE: 0.12},
    )
    return execution.id, report


def test_monitors_show_executions_violations_the_drift_plot_and_the_sandboxed_report(deployed: Deployed) -> None:
    execution_id, report = _monitored(deployed)
    omar = deployed.omar
    listing = omar.get("/console/monitors")
    assert 'href="/console/monitors/risk/credit-drift"' in listing.text and "cron(0 * ? * * *)" in listing.text
    schedule = omar.get("/console/monitors/risk/credit-drift")
    assert "CompletedWithViolations" in schedule.text and f"/executions/{execution_id}" in schedule.text

    page = omar.get(f"/console/monitors/risk/credit-drift/executions/{execution_id}")
    assert page.status_code == 200 and "<script>alert" not in page.text
    table = re.search(r'<table id="violations">(.*?)</table>', page.text, re.S)
    assert table is not None
    assert "<tr><td>LIMIT_BAL</td><td>baseline_drift_check</td><td>Baseline drift distance: 0.51" in table.group(1)
    assert f"<tr><td>{ESCAPED}</td><td>data_type_check</td><td>{ESCAPED}</td></tr>" in table.group(1)
    drift = re.search(r'<svg id="drift".*?</svg>', page.text, re.S)
    assert drift is not None and "threshold 0.2" in drift.group(0) and 'class="threshold"' in drift.group(0)
    assert 'class="bar flagged"' in drift.group(0) and drift.group(0).count('class="bar flagged"') == 1
    assert f"{ESCAPED}: 0.120" in drift.group(0)

    shown = omar.client.get(f"/console/monitors/risk/credit-drift/executions/{execution_id}/report")
    assert shown.status_code == 200 and shown.text == report
    assert shown.headers["content-type"] == "text/html; charset=utf-8"
    policy = shown.headers["content-security-policy"]
    assert "sandbox" in policy and "default-src 'none'" in policy and "script-src" not in policy
    assert shown.headers["x-frame-options"] == "DENY" and shown.headers["x-content-type-options"] == "nosniff"

    # The team's admin reads schedules but not the bucket: the checks without their descriptions, no report.
    dora = deployed.dora
    partial = dora.get(f"/console/monitors/risk/credit-drift/executions/{execution_id}")
    assert partial.status_code == 200 and "your role may not read" in partial.text
    assert "<tr><td>LIMIT_BAL</td><td>baseline_drift_check</td><td></td></tr>" in partial.text
    refused = dora.client.get(f"/console/monitors/risk/credit-drift/executions/{execution_id}/report")
    assert refused.status_code == 403
    assert audited_actions(deployed.platform, refused.headers["x-request-id"]) == [("ViewConsolePage", "Deny")]
    assert omar.get("/console/monitors/risk/credit-drift/executions/not-an-id").status_code == 422


def test_the_mlops_engineer_stops_and_starts_a_schedule_and_a_data_scientist_cannot(deployed: Deployed) -> None:
    _monitored(deployed)
    alice, omar = deployed.alice, deployed.omar
    page = alice.get("/console/monitors/risk/credit-drift")
    assert page.status_code == 200 and "Stop credit-drift" not in page.text
    forged = alice.post("/console/monitors/risk/credit-drift/stop")
    assert forged.status_code == 403
    assert audited_actions(deployed.platform, forged.headers["x-request-id"]) == [("StopMonitoringSchedule", "Deny")]

    assert "Stop credit-drift" in omar.get("/console/monitors/risk/credit-drift").text
    assert omar.post("/console/monitors/risk/credit-drift/stop").status_code == 303
    assert deployed.platform.monitoring.describe_schedule(OMAR, "risk", "credit-drift").status == "Stopped"
    assert "Start credit-drift" in omar.get("/console/monitors/risk/credit-drift").text
    assert omar.post("/console/monitors/risk/credit-drift/start").status_code == 303
    assert deployed.platform.monitoring.describe_schedule(OMAR, "risk", "credit-drift").status == "Scheduled"


def test_the_platform_admin_creates_a_team_adds_members_issues_and_revokes_a_token(
    console_platform: Platform, new_browser: Callable[[], Browser]
) -> None:
    p = console_platform
    admin = signed_in(p, new_browser, "admin")
    page = admin.get("/console/admin")
    assert all(f'id="{form}"' in page.text for form in ("create-team", "create-user", "issue-token"))

    too_long = admin.post("/console/admin/teams", {"name": "fraud", "description": "x" * 1025})
    assert too_long.status_code == 422 and "longer than 1024" in too_long.text  # as the API's body limit
    made = admin.post("/console/admin/teams", {"name": "fraud", "description": HOSTILE})
    assert made.status_code == 303 and made.headers["location"] == "/console/admin/teams/fraud"
    assert admin.post("/console/admin/users", {"name": "nina", "display_name": HOSTILE}).status_code == 303
    assert (
        admin.post("/console/admin/teams/fraud/members", {"user": "nina", "role": "DataScientist"}).status_code == 303
    )
    team = admin.get("/console/admin/teams/fraud")
    assert ESCAPED in team.text and "<tr><td>nina</td><td>DataScientist</td>" in team.text
    assert "Remove nina as DataScientist" in team.text
    assert [(m.user, m.role) for m in p.identity.describe_team(ADMIN, "fraud")[1]] == [("nina", "DataScientist")]

    issued = admin.post("/console/admin/tokens", {"user": "nina", "name": "laptop", "ttl_days": "7"})
    assert issued.status_code == 200 and "location" not in issued.headers
    secret = re.search(r'<output id="issued-secret" class="secret">(sr_[^<]+)</output>', issued.text)
    assert secret is not None and issued.headers["cache-control"] == "no-store"
    assert p.identity.authenticate(secret.group(1)).user == "nina"
    user = admin.get("/console/admin/users/nina")
    assert "laptop" in user.text and secret.group(1) not in user.text and ESCAPED in user.text
    token_id = re.search(r"/console/admin/users/nina/tokens/(tok_[0-9a-f]+)/revoke", user.text)
    assert token_id is not None
    assert admin.post(f"/console/admin/users/nina/tokens/{token_id.group(1)}/revoke").status_code == 303
    assert "revoked" in admin.get("/console/admin/users/nina").text

    removed = admin.post("/console/admin/teams/fraud/members/remove", {"user": "nina", "role": "DataScientist"})
    assert removed.status_code == 303 and p.identity.describe_team(ADMIN, "fraud")[1] == []
    assert audited_actions(p, removed.headers["x-request-id"]) == [("RemoveTeamMember", "Allow")]


def test_team_keys_rotate_and_policies_attach_and_detach(
    deployed: Deployed, new_browser: Callable[[], Browser]
) -> None:
    p = deployed.platform
    dora = deployed.dora
    keys = dora.get("/console/admin/teams/risk/keys")
    rotate = re.search(r'action="(/console/admin/teams/risk/keys/key-[0-9a-f]+/rotate)"', keys.text)
    assert rotate is not None and "1 of 1" in keys.text
    assert dora.post(rotate.group(1)).status_code == 303
    assert p.kms.describe_key(DORA, "risk", "default").primary_version == 2
    assert 'id="add-member"' in dora.get("/console/admin/teams/risk").text  # the team's admin adds members

    policies = dora.get("/console/admin/teams/risk/policies")
    assert policies.status_code == 200 and 'id="attach-policy"' not in policies.text
    rule = 'forbid (principal, action == Action::"DeleteEndpoint", resource) when { context.team == "risk" };'
    forged = dora.post("/console/admin/teams/risk/policies", {"name": "keep-endpoints", "policy": rule})
    assert forged.status_code == 403
    assert audited_actions(p, forged.headers["x-request-id"]) == [("AttachTeamPolicy", "Deny")]

    admin = signed_in(p, new_browser, "admin")
    admin.get("/console/admin/teams/risk/policies")
    broken = admin.post(
        "/console/admin/teams/risk/policies", {"name": "keep-endpoints", "policy": "forbid (", "description": HOSTILE}
    )
    assert broken.status_code == 422 and "forbid (</textarea>" in broken.text and ESCAPED in broken.text
    attached = admin.post("/console/admin/teams/risk/policies", {"name": "keep-endpoints", "policy": rule})
    assert attached.status_code == 303
    shown = dora.get("/console/admin/teams/risk/policies")
    assert "keep-endpoints" in shown.text and "Action::&#34;DeleteEndpoint&#34;" in shown.text
    assert admin.post("/console/admin/teams/risk/policies/keep-endpoints/detach").status_code == 303
    assert [a.name for a in p.policies.list(ADMIN, "risk")] == []


def test_a_data_scientist_has_no_admin_controls_and_forged_admin_actions_are_refused(
    console_platform: Platform, new_browser: Callable[[], Browser]
) -> None:
    alice = signed_in(console_platform, new_browser, "alice")
    page = alice.get("/console/admin")
    assert page.status_code == 200 and '<form class="stack"' not in page.text
    assert "Remove alice" not in alice.get("/console/admin/teams/risk").text
    for path, fields, action in (
        ("/console/admin/teams", {"name": "shadow"}, "CreateTeam"),
        ("/console/admin/teams/risk/members", {"user": "alice", "role": "MLOpsEngineer"}, "AddTeamMember"),
        ("/console/admin/tokens", {"user": "ava", "name": "stolen"}, "CreateApiToken"),
    ):
        forged = alice.post(path, fields)
        assert forged.status_code == 403, path
        assert audited_actions(console_platform, forged.headers["x-request-id"]) == [(action, "Deny")], path
    assert alice.post("/console/admin/teams", {"name": "shadow"}, csrf=False).status_code == 403
    assert [t.name for t in console_platform.identity.list_teams(ADMIN)] == ["risk"]


def test_a_group_of_many_versions_pages_and_keeps_its_filter(deployed: Deployed) -> None:
    for _ in range(26):
        deployed.platform.model_registry.register(
            ALICE, "risk", "credit-default", RegisterSpec(model_name="credit-xgb")
        )
    alice = deployed.alice
    first = alice.get("/console/registry/risk/credit-default?status=PendingManualApproval")
    assert first.text.count(">version ") == 25 and "page 1 of 2 (27 in all)" in first.text
    assert ">version 27<" in first.text and ">version 2<" not in first.text  # newest first
    following = re.search(r'href="([^"]+)" rel="next"', first.text)
    assert following is not None and following.group(1).endswith("?page=2&amp;status=PendingManualApproval")
    second = alice.get(following.group(1).replace("&amp;", "&"))
    assert second.text.count(">version ") == 2 and ">version 1<" in second.text
    assert "No version Approved." in alice.get("/console/registry/risk/credit-default?status=Approved").text
    assert alice.get("/console/registry/risk/credit-default?status=<script>").status_code == 422
