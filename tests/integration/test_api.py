"""API conventions against a real server: problem+json, nothing half-done, idempotency,
every route authenticated, every request audited."""

from __future__ import annotations

import signal
import ssl
import time
import uuid

import httpx
import pytest

from strongroom.core.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthenticated
from tests.support import RunningServer


def _client(server: RunningServer, token: str | None = None) -> httpx.Client:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(
        base_url=server.url, verify=ssl.create_default_context(cafile=str(server.ca)), headers=headers, timeout=30
    )


def _state(server: RunningServer) -> tuple[list[str], list[str]]:
    s = server.session()
    return sorted(u.name for u in s.users.list()), sorted(t.name for t in s.teams.list())


def test_unauthenticated_requests_get_401_problems(server: RunningServer) -> None:
    with _client(server) as anon, _client(server, "sr_tok_0000000000000000_nope") as bad:
        for client in (anon, bad):
            response = client.post("/api/v1/teams", json={"name": "sneaky"})
            assert response.status_code == 401
            assert response.headers["content-type"] == "application/problem+json"
            body = response.json()
            assert body["type"].endswith("/unauthenticated") and body["detail"]
            assert response.headers["www-authenticate"].startswith("Bearer")
    assert "sneaky" not in _state(server)[1]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"name": "Bad Name"}, "name"),
        ({"name": "x" * 100}, "name"),
        ({}, "name"),
        ({"name": "ok-team", "colour": "red"}, "colour"),
        ({"name": 12}, "name"),
    ],
)
def test_malformed_requests_name_the_field_and_change_nothing(server: RunningServer, payload: dict, field: str) -> None:
    before = _state(server)
    with _client(server, server.admin_token) as client:
        response = client.post("/api/v1/teams", json=payload)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["field"] == field
    assert _state(server) == before


def test_broken_json_and_oversized_bodies(server: RunningServer) -> None:
    before = _state(server)
    with _client(server, server.admin_token) as client:
        broken = client.post("/api/v1/teams", content=b"{not json", headers={"content-type": "application/json"})
        assert broken.status_code == 422 and broken.headers["content-type"] == "application/problem+json"
        huge = client.post(
            "/api/v1/teams", content=b"x" * (17 * 1024 * 1024), headers={"content-type": "application/json"}
        )
        assert huge.status_code == 413
        assert huge.json()["type"].endswith("/payload-too-large")
    assert _state(server) == before


def test_errors_map_to_sdk_exceptions(server: RunningServer) -> None:
    s = server.session()
    s.teams.create("risk")
    with pytest.raises(Conflict) as conflict:
        s.teams.create("risk")
    assert conflict.value.field == "name"
    with pytest.raises(NotFound):
        s.teams.describe("nope")
    with pytest.raises(InvalidInput):
        s.teams.add_member("risk", "admin", "Wizard")
    s.users.create("bob")
    s.teams.add_member("risk", "bob", "DataScientist")
    bob = server.session(s.tokens.create("cli", user="bob").secret)
    with pytest.raises(Forbidden) as denied:
        bob.teams.create("bobs-team")
    assert "CreateTeam" in denied.value.detail
    bob.close()
    with pytest.raises(Unauthenticated):
        server.session("srs_garbage.garbage").whoami()


def test_denials_never_reveal_existence(server: RunningServer) -> None:
    s = server.session()
    s.teams.create("risk")
    s.teams.create("fraud")
    s.users.create("carol")
    s.teams.add_member("risk", "carol", "DataScientist")
    carol = server.session(s.tokens.create("cli", user="carol").secret)
    answers = []
    for team in ("fraud", "does-not-exist"):
        with pytest.raises(Forbidden) as denied:
            carol.teams.describe(team)
        answers.append(denied.value.detail.replace(team, "TEAM"))
    assert answers[0] == answers[1]


def test_idempotent_creates(server: RunningServer) -> None:
    s = server.session()
    key = uuid.uuid4().hex
    first = s.teams.create("idem", idempotency_key=key)
    again = s.teams.create("idem", idempotency_key=key)
    assert first == again
    with pytest.raises(Conflict, match="Idempotency-Key"):
        s.teams.create("other", idempotency_key=key)
    assert [t.name for t in s.teams.list()].count("idem") == 1


def test_every_route_requires_authentication(server: RunningServer) -> None:
    """Walk the OpenAPI route table: no route answers anything but 401 without a token."""
    with _client(server, server.admin_token) as client:
        spec = client.get("/api/openapi.json").json()
    with _client(server) as anon:
        for path, methods in spec["paths"].items():
            concrete = path.replace("{", "").replace("}", "")
            for method in methods:
                response = anon.request(method.upper(), concrete, json={})
                assert response.status_code == 401, (method, path, response.status_code)


def test_every_authenticated_route_goes_through_the_guard(server: RunningServer) -> None:
    """Each route, called with a token, leaves exactly one guard-written audit event."""
    s = server.session()
    s.teams.create("risk")
    s.users.create("victim")
    s.keys.create("risk", "default")
    with _client(server, server.admin_token) as client:
        spec = client.get("/api/openapi.json").json()
        for path, methods in spec["paths"].items():
            concrete = (
                path.replace("{team}", "risk")
                .replace("{bucket}", "risk-data")
                .replace("{key}", "default")
                .replace("{alias}", "default")
                .replace("{name}", "victim")
                .replace("{user}", "victim")
                .replace("{role}", "Auditor")
                .replace("{token_id}", "tok_0000000000000000")
                .replace("{sha}", "abcdef12")
                .replace("{product}", "notebook")
                .replace("{experiment}", "victim")
                .replace("{trial}", "victim")
                .replace("{component}", "victim")
                .replace("{metric}", "loss")
            )
            for method in methods:
                request_id = uuid.uuid4().hex
                response = client.request(method.upper(), concrete, json={}, headers={"x-request-id": request_id})
                assert response.headers["x-request-id"] == request_id
                events = s.audit.query(request_id=request_id)
                for _ in range(50):  # requests no service handled are audited just after the response
                    if events:
                        break
                    time.sleep(0.05)
                    events = s.audit.query(request_id=request_id)
                assert len(events) == 1, (method, path, response.status_code)
                if response.status_code != 422:  # body validation happens before the service is reached
                    assert not events[0].action.startswith("HTTP "), (method, path, events[0].action)


def test_every_request_is_audited_including_failures(server: RunningServer) -> None:
    s = server.session()
    with _client(server) as anon:
        anon.get("/api/v1/teams", headers={"x-request-id": "anon-1"})
        anon.get("/api/v1/nowhere", headers={"x-request-id": "anon-2"})
    [unauth] = s.audit.query(request_id="anon-1")
    assert unauth.principal == "anonymous" and unauth.decision == "Deny" and unauth.outcome == "401"
    [missing] = s.audit.query(request_id="anon-2")
    assert missing.outcome == "404"


def test_a_forwarded_for_header_does_not_change_the_audited_source(server: RunningServer) -> None:
    s = server.session()
    with _client(server) as anon:  # from 127.0.0.1, which uvicorn trusts for X-Forwarded-* by default
        headers = {"x-request-id": "spoof-1", "x-forwarded-for": "203.0.113.9", "x-forwarded-proto": "http"}
        anon.get("/api/v1/teams", headers=headers)
    [event] = s.audit.query(request_id="spoof-1")
    assert event.source == "127.0.0.1"


def test_pagination(server: RunningServer) -> None:
    s = server.session()
    for i in range(5):
        s.users.create(f"user-{i}")
    with _client(server, server.admin_token) as client:
        first = client.get("/api/v1/users", params={"limit": 2}).json()
        assert len(first["items"]) == 2 and first["next_page_token"]
        second = client.get("/api/v1/users", params={"limit": 2, "page_token": first["next_page_token"]}).json()
        assert {u["name"] for u in first["items"]}.isdisjoint(u["name"] for u in second["items"])
        bad = client.get("/api/v1/users", params={"page_token": "!!!"})
        assert bad.status_code == 422 and bad.json()["field"] == "page_token"
    assert len(s.users.list()) == 6


def test_sigusr1_logs_threads_and_waiting_tasks_and_the_server_keeps_serving(server: RunningServer) -> None:
    server.process.send_signal(signal.SIGUSR1)
    deadline = time.monotonic() + 10
    log = ""
    while time.monotonic() < deadline:
        log = server.log_path.read_text(errors="replace")
        if "waits in" in log and "Thread 0x" in log:
            break
        time.sleep(0.1)
    assert "Thread 0x" in log  # faulthandler: every thread's stack
    assert "waits in serve" in log  # the uvicorn servers' tasks, with where they wait
    assert server.session().whoami().user == "admin"
