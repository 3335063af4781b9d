"""A console in process: the real app (every middleware, the guard, the audit log) over a fresh
platform, and browsers (TestClients with their own cookie jars) signed in as the workshop's people."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from strongroom.api.app import create_app
from strongroom.audit.log import AuditFilter
from strongroom.core.context import Grant
from strongroom.platform import Platform
from tests.support import context_for

ADMIN = context_for("admin", Grant("PlatformAdmin"))
BASE = "https://localhost:8443"  # the public URL the console trusts in these tests


class Browser:
    """One browser: its cookies, and the CSRF token of the last page it loaded."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.csrf = ""

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        answer = self.client.get(path, **kwargs)
        found = re.search(r'name="csrf_token" value="([^"]+)"', answer.text)
        if found:
            self.csrf = found.group(1)
        return answer

    def sign_in(self, token: str) -> httpx.Response:
        page = self.client.get("/console/signin")
        signin_token = re.search(r'name="signin_token" value="([^"]+)"', page.text)
        assert signin_token is not None
        return self.client.post(
            "/console/signin", data={"token": token, "signin_token": signin_token.group(1)}, follow_redirects=False
        )

    def post(
        self, path: str, data: dict[str, str] | None = None, *, csrf: bool = True, **kwargs: Any
    ) -> httpx.Response:
        fields = dict(data or {})
        if csrf:
            fields["csrf_token"] = self.csrf
        return self.client.post(path, data=fields, follow_redirects=False, **kwargs)


@pytest.fixture
def console_platform(platform: Platform) -> Platform:
    platform.identity.create_team(ADMIN, "risk")
    platform.identity.create_user(ADMIN, "alice")
    platform.identity.add_member(ADMIN, "risk", "alice", "DataScientist")
    platform.catalog.create_portfolio(ADMIN, "risk", "workshop", "", ["notebook"], ["DataScientist"])
    platform.identity.create_user(ADMIN, "ava")
    platform.identity.grant_platform_role(ADMIN, "ava", "Auditor")
    return platform


@pytest.fixture
def new_browser(console_platform: Platform) -> Iterator[Callable[[], Browser]]:
    app = create_app(console_platform)
    app.state.public_url = BASE  # `strongroom up` sets the bound port's URL; the tests' port is 0
    clients: list[TestClient] = []

    def _new() -> Browser:
        client = TestClient(app, base_url=BASE, follow_redirects=False)
        client.__enter__()
        clients.append(client)
        return Browser(client)

    yield _new
    for client in clients:
        client.__exit__(None, None, None)


def token_of(platform: Platform, user: str, name: str = "console") -> str:
    return platform.identity.create_token(ADMIN, name, user=user).secret


def signed_in(platform: Platform, new_browser: Callable[[], Browser], user: str) -> Browser:
    """A browser with ``user``'s console session, on the console's home page."""
    browser = new_browser()
    browser.sign_in(token_of(platform, user))
    browser.get("/console/")
    return browser


def audited_actions(platform: Platform, request_id: str) -> list[tuple[str, str]]:
    """The (action, decision) pairs the audit log holds for one request."""
    return [(e.action, e.decision) for e in platform.audit_log.query(AuditFilter(request_id=request_id, limit=10))]
