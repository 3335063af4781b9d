"""Single sign-on against a real OpenID Connect provider over HTTPS (tests/oidc_provider.py):
authorization code with PKCE, the ID token verified, the operator's claim mapping applied, and
everyone unmapped refused."""

from __future__ import annotations

import ssl
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from strongroom.api.app import create_app
from strongroom.audit.log import AuditFilter
from strongroom.core.config import Config
from strongroom.guard.connection import CONSOLE_COOKIE
from strongroom.platform import Platform
from tests.integration.console.conftest import ADMIN, BASE
from tests.oidc_provider import RunningProvider

# module fixtures start servers, train models and sandboxes: more than the suite's 120 s on a busy machine
pytestmark = pytest.mark.timeout(600)


@pytest.fixture
def idp(tmp_path: Path) -> Iterator[RunningProvider]:
    running = RunningProvider(tmp_path)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def sso(initialized: tuple[Config, str], idp: RunningProvider) -> Iterator[tuple[Platform, TestClient]]:
    config, _ = initialized
    provider = idp.provider
    configured = config.model_copy(
        update={
            "oidc_issuer": provider.issuer,
            "oidc_client_id": provider.client_id,
            "oidc_client_secret": SecretStr(provider.client_secret),
            "oidc_ca_file": str(provider.ca),
            "oidc_display_name": "Bank SSO",
            "oidc_groups_claim": "groups",
            "oidc_group_roles": {"risk-data-scientists": ["DataScientist@risk"], "auditors": ["Auditor"]},
        }
    )
    platform = Platform(configured)
    platform.identity.create_team(ADMIN, "risk")
    platform.identity.create_user(ADMIN, "alice")
    platform.identity.add_member(ADMIN, "risk", "alice", "DataScientist")
    platform.identity.add_member(ADMIN, "risk", "alice", "MLOpsEngineer")
    app = create_app(platform)
    app.state.public_url = BASE
    try:
        with TestClient(app, base_url=BASE, follow_redirects=False) as client:
            yield platform, client
    finally:
        platform.close()


def _through_the_provider(client: TestClient, idp: RunningProvider) -> httpx.Response:
    """Click "Sign in with Bank SSO", let the provider sign the user in, follow it back."""
    assert "Sign in with Bank SSO" in client.get("/console/signin").text
    start = client.get("/console/oidc/start")
    assert start.status_code == 303
    location = start.headers["location"]
    assert location.startswith(idp.provider.issuer + "/authorize?")
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))
    assert query["code_challenge_method"] == "S256" and query["redirect_uri"] == BASE + "/console/oidc/callback"
    assert "SameSite=Lax" in start.headers["set-cookie"] and "HttpOnly" in start.headers["set-cookie"]
    answer = httpx.get(location, verify=ssl.create_default_context(cafile=str(idp.provider.ca)))
    assert answer.status_code == 302
    back = answer.headers["location"]
    assert back.startswith(BASE + "/console/oidc/callback?")
    return client.get(back[len(BASE) :])


def test_a_mapped_user_signs_in_with_only_the_roles_their_groups_allow(
    sso: tuple[Platform, TestClient], idp: RunningProvider
) -> None:
    platform, client = sso
    idp.provider.user = {"sub": "u-1001", "preferred_username": "alice", "groups": ["risk-data-scientists", "staff"]}

    done = _through_the_provider(client, idp)

    assert done.status_code == 303 and done.headers["location"] == "/console/"
    assert idp.provider.redeemed  # the code was redeemed at the token endpoint, with the PKCE verifier
    assert any(
        c.startswith(CONSOLE_COOKIE + "=") and "SameSite=Strict" in c for c in done.headers.get_list("set-cookie")
    )
    home = client.get("/console/")
    assert home.status_code == 200 and "<li>DataScientist@risk</li>" in home.text
    assert "MLOpsEngineer@risk" not in home.text  # held, but no group of hers maps to it
    events = platform.audit_log.query(AuditFilter(request_id=done.headers["x-request-id"], limit=5))
    assert [(e.action, e.decision, e.principal) for e in events] == [("OpenConsoleSession", "Allow", "alice")]
    assert events[0].params["via"] == "oidc" and events[0].params["subject"] == "u-1001"


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"sub": "u-2", "preferred_username": "mallory", "groups": ["risk-data-scientists"]}, "not a Strongroom user"),
        ({"sub": "u-1001", "preferred_username": "alice", "groups": ["staff"]}, "no group that maps"),
        ({"sub": "u-3", "preferred_username": "<script>", "groups": ["auditors"]}, "names no Strongroom user"),
    ],
)
def test_an_unmapped_user_gets_no_access(
    sso: tuple[Platform, TestClient], idp: RunningProvider, claims: dict[str, object], reason: str
) -> None:
    platform, client = sso
    idp.provider.user = claims
    refused = _through_the_provider(client, idp)
    assert refused.status_code == 401 and reason in refused.text
    assert CONSOLE_COOKIE not in refused.headers.get("set-cookie", "")
    assert client.get("/console/").headers["location"] == "/console/signin"
    events = platform.audit_log.query(AuditFilter(request_id=refused.headers["x-request-id"], limit=5))
    assert [e.decision for e in events] == ["Deny"]


def test_a_callback_this_browser_did_not_start_or_a_replayed_code_is_refused(
    sso: tuple[Platform, TestClient], idp: RunningProvider
) -> None:
    _, client = sso
    idp.provider.user = {"sub": "u-1001", "preferred_username": "alice", "groups": ["risk-data-scientists"]}
    start = client.get("/console/oidc/start")
    answer = httpx.get(start.headers["location"], verify=ssl.create_default_context(cafile=str(idp.provider.ca)))
    back = urllib.parse.urlsplit(answer.headers["location"])
    params = dict(urllib.parse.parse_qsl(back.query))

    forged = client.get("/console/oidc/callback?" + urllib.parse.urlencode({**params, "state": "attacker"}))
    assert forged.status_code == 401 and "does not match" in forged.text

    with TestClient(client.app, base_url=BASE, follow_redirects=False) as other_browser:
        stranger = other_browser.get(f"{back.path}?{back.query}")  # no flow cookie: not this browser's sign-in
        assert stranger.status_code == 401 and CONSOLE_COOKIE not in stranger.headers.get("set-cookie", "")
