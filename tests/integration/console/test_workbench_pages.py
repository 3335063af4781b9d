"""My access, data, jobs, endpoints and audit pages: each role sees only what it may, a forged
request is refused by the guard and audited, hostile names render literally, lists paginate."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from strongroom.core.context import Grant
from strongroom.platform import Platform
from tests.integration.console.conftest import ADMIN, Browser, audited_actions, signed_in
from tests.support import context_for

# module fixtures start servers, train models and sandboxes: more than the suite's 120 s on a busy machine
pytestmark = pytest.mark.timeout(600)

HOSTILE = "<script>alert(1)</script>/{{7*7}}.csv"


def test_a_data_scientist_has_no_endpoint_create_control_and_a_forged_create_is_refused(
    console_platform: Platform, new_browser: Callable[[], Browser]
) -> None:
    console_platform.identity.create_user(ADMIN, "omar")
    console_platform.identity.add_member(ADMIN, "risk", "omar", "MLOpsEngineer")
    alice = signed_in(console_platform, new_browser, "alice")
    omar = signed_in(console_platform, new_browser, "omar")

    page = alice.get("/console/endpoints")
    assert page.status_code == 200 and "Create endpoint" not in page.text and "create-endpoint" not in page.text
    assert 'id="create-endpoint"' in omar.get("/console/endpoints").text

    forged = alice.post("/console/endpoints", {"team": "risk", "name": "credit-default", "config": "cfg"})

    assert forged.status_code == 403 and "CreateEndpoint" in forged.text
    assert audited_actions(console_platform, forged.headers["x-request-id"]) == [("CreateEndpoint", "Deny")]


def test_my_access_shows_the_execution_role_permissions_and_the_simulator_for_auditors(
    console_platform: Platform, new_browser: Callable[[], Browser]
) -> None:
    alice = signed_in(console_platform, new_browser, "alice")
    page = alice.get("/console/access")
    assert page.status_code == 200
    rows = dict(re.findall(r"<tr><td>(\w+)</td><td>(Allow|Deny)</td>", page.text))
    assert rows["CreateTrainingJob"] == "Allow" and rows["GetObject"] == "Allow"
    assert rows["CreateEndpoint"] == "Deny" and rows["CreateTeam"] == "Deny"
    assert "role-data-scientist" in page.text

    own = alice.get("/console/access?action=GetObject&resource=srn:strongroom:risk:bucket/risk-data")
    assert own.status_code == 200 and "not allowed to SimulatePolicy" in own.text

    ava = signed_in(console_platform, new_browser, "ava")
    simulated = ava.get(
        "/console/access?principal=alice&action=CreateEndpoint&resource=srn:strongroom:risk:endpoint/e"
        "&acting_as=DataScientist@risk"
    )
    assert simulated.status_code == 200 and "<strong>Deny</strong> CreateEndpoint" in simulated.text


def test_objects_with_hostile_keys_render_literally_and_download(
    console_platform: Platform, new_browser: Callable[[], Browser]
) -> None:
    dsa = context_for("dora", Grant("DataScienceAdmin", "risk"))
    console_platform.kms.create_key(ADMIN, "risk", "default", "risk data key")
    console_platform.storage.create_bucket(dsa, "risk", "risk-data")
    writer = context_for("alice", Grant("DataScientist", "risk"))
    rows = b"20000,2,2,1,24,2,2,-1,-1,-2,-2,3913,3102,689,0,0,0,0,689,0,0,0,0,1\n"
    console_platform.storage.put_object(writer, "risk-data", HOSTILE, [rows])
    console_platform.storage.put_object(writer, "risk-data", HOSTILE, [rows * 2])
    alice = signed_in(console_platform, new_browser, "alice")

    listing = alice.get("/console/data/risk-data?prefix=%3Cscript%3Ealert(1)%3C/script%3E/")
    assert listing.status_code == 200
    assert "<script>alert" not in listing.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;/{{7*7}}.csv" in listing.text
    versions = alice.get("/console/data/risk-data/versions", params={"key": HOSTILE})
    assert versions.text.count("Download version") == 2
    link = re.search(r'href="(/console/data/risk-data/download\?[^"]+)"', versions.text)
    assert link is not None
    got = alice.client.get(link.group(1).replace("&amp;", "&"))
    assert got.status_code == 200 and got.content == rows * 2
    assert got.headers["content-disposition"] == 'attachment; filename="__7_7__.csv"'
    assert "default-src 'none'" in got.headers["content-security-policy"]


def test_the_audit_page_is_for_auditors_filters_pages_and_verifies(
    console_platform: Platform, new_browser: Callable[[], Browser]
) -> None:
    alice = signed_in(console_platform, new_browser, "alice")
    refused = alice.get("/console/audit")
    assert refused.status_code == 403
    assert audited_actions(console_platform, refused.headers["x-request-id"]) == [("ViewConsolePage", "Deny")]
    for _ in range(30):
        alice.get("/console/")

    ava = signed_in(console_platform, new_browser, "ava")
    page = ava.get("/console/audit?principal=alice&action=ViewConsolePage")
    assert page.status_code == 200
    assert page.text.count("<td>alice</td>") == 25 and 'rel="next"' in page.text
    following = re.search(r'rel="next" href="([^"]+)"', page.text)
    assert following is not None
    second = ava.get(following.group(1).replace("&amp;", "&"))
    assert 1 <= second.text.count("<td>alice</td>") <= 25 and "principal=alice" in following.group(1)

    verified = ava.post("/console/audit/verify")
    assert verified.status_code == 200 and "The chain is intact" in verified.text


def test_jobs_page_lists_nothing_for_a_new_team_with_pagination(
    console_platform: Platform, new_browser: Callable[[], Browser]
) -> None:
    alice = signed_in(console_platform, new_browser, "alice")
    page = alice.get("/console/jobs")
    assert page.status_code == 200 and "No job." in page.text and "page 1 of 1 (0 in all)" in page.text
    missing = alice.get("/console/jobs/risk/train-xgb")
    assert missing.status_code == 404


def test_a_job_is_listed_described_with_its_log_and_stopped(
    console_platform: Platform, new_browser: Callable[[], Browser]
) -> None:
    from strongroom.jobs.models import JobSpec

    dsa = context_for("dora", Grant("DataScienceAdmin", "risk"))
    writer = context_for("alice", Grant("DataScientist", "risk"))
    console_platform.kms.create_key(dsa, "risk", "risk-key", "risk jobs key")
    console_platform.storage.create_bucket(dsa, "risk", "risk-data", key="risk-key")
    script = console_platform.storage.put_object(writer, "risk-data", "code/prep.py", [b"print('prepared')\n"])
    spec = JobSpec.model_validate(
        {
            "name": "prep-credit",
            "team": "risk",
            "kind": "processing",
            "code": {"source": script.uri},
            "security": {"network_isolation": True, "volume_kms_key": "risk-key"},
            "resources": {"scratch_mb": 256, "max_runtime_seconds": 300},
        }
    )
    console_platform.jobs.create_job(writer, spec)
    alice = signed_in(console_platform, new_browser, "alice")

    listing = alice.get("/console/jobs")
    assert "prep-credit" in listing.text and "<td>processing</td><td>Pending</td>" in listing.text
    detail = alice.get("/console/jobs/risk/prep-credit")
    assert detail.status_code == 200 and "Stop prep-credit" in detail.text
    log = alice.client.get("/console/jobs/risk/prep-credit/log", headers={"HX-Request": "true"})
    assert log.status_code == 200 and 'hx-trigger="every 3s"' in log.text and "(no output yet)" in log.text
    assert audited_actions(console_platform, log.headers["x-request-id"]) == [("ViewConsolePage", "Allow")]

    stopped = alice.post("/console/jobs/risk/prep-credit/stop")
    assert stopped.status_code == 303
    assert console_platform.jobs.describe(writer, "risk", "prep-credit").status == "Stopped"
    assert "Stop prep-credit" not in alice.get("/console/jobs/risk/prep-credit").text


def test_the_audit_export_downloads_json_lines_for_auditors_only(
    console_platform: Platform, new_browser: Callable[[], Browser]
) -> None:
    ava = signed_in(console_platform, new_browser, "ava")
    exported = ava.client.get("/console/audit/export?action=OpenConsoleSession")
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("application/x-ndjson")
    lines = [line for line in exported.text.splitlines() if line]
    assert lines and all('"action":"OpenConsoleSession"' in line for line in lines)
    alice = signed_in(console_platform, new_browser, "alice")
    assert alice.client.get("/console/audit/export").status_code == 403


def test_an_upload_stores_a_tagged_version_and_needs_the_csrf_token(
    console_platform: Platform, new_browser: Callable[[], Browser]
) -> None:
    dsa = context_for("dora", Grant("DataScienceAdmin", "risk"))
    console_platform.kms.create_key(ADMIN, "risk", "default", "risk data key")
    console_platform.storage.create_bucket(dsa, "risk", "risk-data")
    alice = signed_in(console_platform, new_browser, "alice")
    page = alice.get("/console/data/risk-data")
    assert "data-upload" in page.text and '<label for="upload-file">File</label>' in page.text
    rows = b"LIMIT_BAL,SEX,EDUCATION\n20000,2,2\n120000,2,2\n"
    url = "/console/data/risk-data/upload?key=raw/credit.csv"

    forged = alice.client.post(url, content=rows, headers={"content-type": "application/octet-stream"})
    assert forged.status_code == 403
    assert audited_actions(console_platform, forged.headers["x-request-id"]) == [
        ("HTTP POST /console/data/risk-data/upload", "Deny")
    ]

    stored = alice.client.post(
        url,
        content=rows,
        headers={"content-type": "application/octet-stream", "x-csrf-token": alice.csrf, "x-sr-tags": "stage=raw"},
    )
    assert stored.status_code == 200
    writer = context_for("alice", Grant("DataScientist", "risk"))
    head = console_platform.storage.head_object(writer, "risk-data", "raw/credit.csv")
    assert head.version_id == stored.text and head.tags == {"stage": "raw"} and head.size == len(rows)
    assert "stage=raw" in alice.get("/console/data/risk-data?prefix=raw/").text


def test_teams_and_users_are_shown_to_auditors_with_hostile_descriptions_escaped(
    console_platform: Platform, new_browser: Callable[[], Browser]
) -> None:
    console_platform.identity.create_team(ADMIN, "fraud", description="<img src=x onerror=alert(1)> {{7*7}}")
    console_platform.identity.create_user(ADMIN, "eve", display_name="<script>alert('eve')</script>")
    ava = signed_in(console_platform, new_browser, "ava")
    page = ava.get("/console/people")
    assert page.status_code == 200 and "alice (DataScientist)" in page.text
    assert "<img src=x" not in page.text and "&lt;img src=x onerror=alert(1)&gt; {{7*7}}" in page.text
    assert "&lt;script&gt;alert(&#39;eve&#39;)&lt;/script&gt;" in page.text
    alice = signed_in(console_platform, new_browser, "alice")
    assert alice.get("/console/people").status_code == 403
