"""Every route of the app, called as a caller with no role, as a PlatformAdmin and with a
malformed body, leaves exactly one audit event whose verdict matches the answer."""

from __future__ import annotations

import re
import uuid

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocketDisconnect

from strongroom.api.app import ROUTERS, create_app
from strongroom.api.routers import system
from strongroom.audit.log import AuditFilter
from strongroom.core.context import Grant
from strongroom.platform import Platform
from tests.support import context_for

ADMIN = context_for("admin", Grant("PlatformAdmin"))


def _routes(routes: list[object]) -> list[object]:
    flat: list[object] = []
    for route in routes:
        inner = getattr(route, "routes", None) or getattr(getattr(route, "router", None), "routes", None)
        flat.extend(_routes(inner) if inner and not isinstance(route, Route) else [route])
    return flat


def _calls(app: object) -> list[tuple[str, str, bool]]:
    """(method, concrete path, takes a JSON body) for every route, raw streaming routes included."""
    calls = []
    routes = [r for router in (*ROUTERS, system.document) for r in router.routes] + _routes(app.routes)  # type: ignore[attr-defined]
    for route in routes:
        if not isinstance(route, Route):
            continue  # WebSocket routes: test_every_websocket_route_refuses_with_exactly_one_denial
        path = re.sub(r"\{[^}:]+:path\}", "x/y", route.path)
        path = re.sub(r"\{[^}]+\}", "x1", path)
        if path.startswith("/git/"):
            path = "/git/x1/x1.git/info/refs"
        for method in sorted((route.methods or {"GET"}) - {"HEAD", "OPTIONS"}):
            body = isinstance(route, APIRoute) and route.body_field is not None
            calls.append((method, path, body))
    return calls


def _verdict_fits(status: int, decision: str, outcome: str) -> bool:
    if status in (401, 403):
        return decision == "Deny"
    if status < 300:
        return decision == "Allow" and outcome == "success"
    if status < 400:  # a redirect (``/notebooks/<team>/<name>`` -> ``.../``) decides nothing
        return outcome == str(status)
    return decision in ("Allow", "Invalid", "Deny") and outcome not in ("success", "")


@pytest.mark.timeout(600)
def test_every_route_leaves_exactly_one_fitting_event(platform: Platform, admin_token: str) -> None:
    platform.identity.create_user(ADMIN, "nobody")
    nobody = platform.identity.create_token(ADMIN, "walk", user="nobody").secret
    app = create_app(platform)
    calls = _calls(app)
    assert len(calls) > 80 and any(p.startswith("/git/") for _, p, _ in calls)
    wrong: list[str] = []
    with TestClient(
        app, base_url="https://testserver", raise_server_exceptions=False, follow_redirects=False
    ) as client:
        for method, path, takes_body in calls:
            cases = [("no role", nobody, {}), ("admin", admin_token, {})]
            if takes_body:
                cases.append(("malformed", admin_token, None))
            for label, token, body in cases:
                request_id = uuid.uuid4().hex
                headers = {"Authorization": f"Bearer {token}", "X-Request-Id": request_id}
                if body is None:
                    answer = client.request(method, path, content=b"{not json", headers=headers)
                else:
                    answer = client.request(method, path, json=body if takes_body else None, headers=headers)
                events = platform.audit_log.query(AuditFilter(request_id=request_id, limit=10))
                seen = [(e.action, e.decision, e.outcome) for e in events]
                if len(events) != 1 or not _verdict_fits(answer.status_code, events[0].decision, events[0].outcome):
                    wrong.append(f"{label} {method} {path} -> {answer.status_code}: {seen}")
    assert wrong == [], "\n".join(wrong)


def test_every_websocket_route_refuses_with_exactly_one_denial(platform: Platform, admin_token: str) -> None:
    """The WebSocket routes (the notebook proxy's kernels and terminals) with no token, a caller with
    no role and a PlatformAdmin (who may not open team notebooks): each refused with one denial."""
    platform.identity.create_user(ADMIN, "nobody")
    nobody = platform.identity.create_token(ADMIN, "walk", user="nobody").secret
    app = create_app(platform)
    sockets = [r for r in _routes(app.routes) if isinstance(r, WebSocketRoute)]
    assert sockets
    with TestClient(app, base_url="https://testserver") as client:
        for route in sockets:
            path = re.sub(r"\{[^}]+\}", "x1", route.path.replace("{path:path}", "api/kernels/k/channels"))
            for token in ("", nobody, admin_token):
                request_id = uuid.uuid4().hex
                headers = {"X-Request-Id": request_id} | ({"Authorization": f"Bearer {token}"} if token else {})
                with pytest.raises(WebSocketDisconnect) as closed, client.websocket_connect(path, headers=headers):
                    pass
                assert closed.value.code == 1008
                events = platform.audit_log.query(AuditFilter(request_id=request_id, limit=10))
                assert [(e.action, e.decision) for e in events] == [("OpenNotebook", "Deny")], (path, token[:6])
