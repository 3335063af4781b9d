"""Probes answer without a token and without data; /metrics needs a role and counts what happened."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from strongroom.api.app import create_app
from strongroom.core.context import Grant, RequestContext
from strongroom.platform import Platform
from tests.support import context_for


@pytest.fixture
def client(platform: Platform) -> Iterator[TestClient]:
    with TestClient(create_app(platform), base_url="https://testserver") as c:
        yield c


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_probes_need_no_token_and_leave_no_audit_event(platform: Platform, client: TestClient) -> None:
    before = platform.audit_log.head()

    alive = client.get("/healthz")
    ready = client.get("/readyz")

    assert alive.status_code == 200 and alive.json() == {"status": "alive"}
    # in-process: nobody started the background workers, so the platform is not ready
    assert ready.status_code == 503
    assert ready.json() == {
        "status": "not ready",
        "checks": {"database": "ok", "audit": "ok", "workers": "failing"},
    }
    # load balancers probe with HEAD as well: the same status, no body, still no audit event
    head_alive, head_ready = client.head("/healthz"), client.head("/readyz")
    assert (head_alive.status_code, head_alive.content) == (200, b"")
    assert (head_ready.status_code, head_ready.content) == (503, b"")
    assert platform.audit_log.head() == before
    runner = platform.worker_runner()
    runner.start()
    try:
        assert client.get("/readyz").json() == {
            "status": "ready",
            "checks": {"database": "ok", "audit": "ok", "workers": "ok"},
        }
    finally:
        runner.stop()


def test_metrics_need_a_platform_role(platform: Platform, client: TestClient, admin_token: str) -> None:
    admin = RequestContext(principal=platform.identity.authenticate(admin_token))
    platform.identity.create_team(admin, "risk")
    platform.identity.create_user(admin, "alice")
    platform.identity.add_member(admin, "risk", "alice", "DataScientist")
    alice = platform.identity.create_token(admin, "laptop", user="alice").secret

    assert client.get("/metrics").status_code == 401
    denied = client.get("/metrics", headers=_bearer(alice))
    assert denied.status_code == 403 and denied.headers["content-type"].startswith("application/problem+json")
    scraped = client.get("/metrics", headers=_bearer(admin_token))
    assert scraped.status_code == 200 and scraped.headers["content-type"].startswith("text/plain")
    assert 'strongroom_http_requests_total{method="GET",route="/metrics",status="403"} 1.0' in scraped.text


def test_metrics_count_requests_decisions_jobs_and_stored_bytes(
    platform: Platform, client: TestClient, admin_token: str
) -> None:
    admin = context_for("admin", Grant("PlatformAdmin"))
    platform.identity.create_team(admin, "risk")
    platform.kms.create_key(admin, "risk", "default", "risk data key")
    dsa = context_for("dana", Grant("DataScienceAdmin", "risk"))
    platform.storage.create_bucket(dsa, "risk", "risk-data")
    rows = b"20000,2,2,1,24,2,2,-1,-1,-2,-2,3913,3102,689,0,0,0,0,689,0,0,0,0,1\n" * 100
    platform.storage.put_object(context_for("alice", Grant("DataScientist", "risk")), "risk-data", "train.csv", [rows])
    for _ in range(3):
        client.get("/api/v1/status", headers=_bearer(admin_token))
    client.get("/api/v1/teams/fraud", headers=_bearer(admin_token))

    text = client.get("/metrics", headers=_bearer(admin_token)).text

    assert 'strongroom_http_requests_total{method="GET",route="/api/v1/status",status="200"} 3.0' in text
    assert 'strongroom_http_request_duration_seconds_count{method="GET",route="/api/v1/status"} 3.0' in text
    assert 'strongroom_http_requests_total{method="GET",route="/api/v1/teams/{team}",status="404"} 1.0' in text
    assert 'strongroom_policy_decisions_total{action="PutObject",decision="Allow",outcome="success"} 1.0' in text
    status = 'strongroom_policy_decisions_total{action="GetPlatformStatus",decision="Allow",outcome="success"} 3.0'
    assert status in text
    assert "strongroom_audit_append_duration_seconds_count" in text
    assert f'strongroom_storage_bytes{{team="risk"}} {float(len(rows))}' in text
    assert "# TYPE strongroom_jobs gauge" in text and "# TYPE strongroom_notebooks gauge" in text
    assert "20000,2,2" not in text  # counts, never data


def test_invocations_are_counted_under_their_route(client: TestClient, admin_token: str) -> None:
    """The data plane's route is a bare Starlette route matched before the API's: it still names itself."""
    answer = client.post(
        "/endpoints/risk/no-such-endpoint/invocations",
        content=b"1,2,3",
        headers={**_bearer(admin_token), "Content-Type": "text/csv"},
    )
    assert answer.status_code >= 400  # no such team or endpoint: refused, and still counted

    text = client.get("/metrics", headers=_bearer(admin_token)).text

    route = 'route="/endpoints/{team}/{name}/invocations"'
    assert f'strongroom_http_requests_total{{method="POST",{route},status="{answer.status_code}"}} 1.0' in text
    assert 'route="unmatched"' not in text
