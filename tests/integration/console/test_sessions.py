"""Console sessions: a token exchanged once for a cookie that is HttpOnly, Secure, SameSite=Strict,
short-lived and revocable; switching role; signing out; CSRF and the security headers."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from strongroom.audit.log import AuditFilter
from strongroom.guard.connection import CONSOLE_COOKIE
from strongroom.platform import Platform
from tests.integration.console.conftest import ADMIN, Browser, token_of

# module fixtures start servers, train models and sandboxes: more than the suite's 120 s on a busy machine
pytestmark = pytest.mark.timeout(600)


def _events(platform: Platform, request_id: str) -> list[tuple[str, str, str]]:
    found = platform.audit_log.query(AuditFilter(request_id=request_id, limit=10))
    return [(e.action, e.decision, e.outcome) for e in found]


def test_the_root_leads_to_sign_in_and_a_token_becomes_a_strict_cookie(
    console_platform: Platform, new_browser: Callable[[], Browser]
) -> None:
    browser = new_browser()
    assert browser.client.get("/").headers["location"] == "/console/"
    assert browser.client.get("/console/").headers["location"] == "/console/signin"

    signed = browser.sign_in(token_of(console_platform, "alice"))

    assert signed.status_code == 303 and signed.headers["location"] == "/console/"
    cookie = next(c for c in signed.headers.get_list("set-cookie") if c.startswith(CONSOLE_COOKIE + "="))
    assert CONSOLE_COOKIE.startswith("__Host-")
    for flag in ("HttpOnly", "Secure", "SameSite=Strict", "Path=/", "Max-Age=3600"):
        assert flag in cookie
    value = cookie.split(";")[0].split("=", 1)[1]
    assert not value.startswith("sr_") and value not in signed.text
    home = browser.get("/console/")
    assert home.status_code == 200
    assert "alice" in home.text and "DataScientist@risk" in home.text and "Switch role" in home.text
    events = _events(console_platform, signed.headers["x-request-id"])
    assert events == [("OpenConsoleSession", "Allow", "success")]


def test_every_page_carries_a_strict_policy_and_no_inline_script(
    console_platform: Platform, new_browser: Callable[[], Browser]
) -> None:
    browser = new_browser()
    for page in (
        browser.client.get("/console/signin"),
        (browser.sign_in(token_of(console_platform, "alice"))),
    ):
        headers = page.headers
        assert "script-src 'self'" in headers["content-security-policy"]
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert "unsafe-inline" not in headers["content-security-policy"]
        assert headers["x-frame-options"] == "DENY"
    home = browser.get("/console/")
    assert "<script>" not in home.text and "<style" not in home.text and "style=" not in home.text
    assert home.text.count("<script ") == 2
    assert '<script src="/console/static/htmx.min.js"></script>' in home.text
    assert '<script src="/console/static/console.js"></script>' in home.text


def test_a_wrong_token_is_refused_and_audited(console_platform: Platform, new_browser: Callable[[], Browser]) -> None:
    browser = new_browser()
    answer = browser.sign_in("sr_tok_0000000000000000_not-a-real-secret")
    assert answer.status_code == 401 and "invalid API token" in answer.text
    assert CONSOLE_COOKIE not in answer.headers.get("set-cookie", "")
    assert [d for _, d, _ in _events(console_platform, answer.headers["x-request-id"])] == ["Deny"]


def test_a_sign_in_form_posted_from_elsewhere_is_refused(
    console_platform: Platform, new_browser: Callable[[], Browser]
) -> None:
    browser = new_browser()
    token = token_of(console_platform, "alice")
    forged = browser.client.post("/console/signin", data={"token": token, "signin_token": "guess"})
    assert forged.status_code == 403
    page = browser.client.get("/console/signin")
    other_site = browser.client.post(
        "/console/signin",
        data={"token": token, "signin_token": browser.client.cookies.get("__Host-strongroom-signin") or ""},
        headers={"Origin": "https://evil.example"},
    )
    assert page.status_code == 200 and other_site.status_code == 403


def test_revoking_the_token_disabling_the_user_or_signing_out_ends_the_session(
    console_platform: Platform, new_browser: Callable[[], Browser]
) -> None:
    identity = console_platform.identity
    first, second, third = new_browser(), new_browser(), new_browser()
    laptop = identity.create_token(ADMIN, "laptop", user="alice")
    first.sign_in(laptop.secret)
    second.sign_in(token_of(console_platform, "alice", "desk"))
    third.sign_in(token_of(console_platform, "alice", "tablet"))
    assert first.get("/console/").status_code == 200

    identity.revoke_token(ADMIN, laptop.token.id)
    assert first.get("/console/").headers["location"] == "/console/signin"
    assert second.get("/console/").status_code == 200  # opened with another token

    stolen = second.client.cookies.get(CONSOLE_COOKIE)
    out = second.post("/console/signout")
    assert out.status_code == 303 and out.headers["location"] == "/console/signin"
    second.client.cookies.set(CONSOLE_COOKIE, stolen or "", domain="localhost")
    assert second.get("/console/").headers["location"] == "/console/signin"

    identity.set_user_disabled(ADMIN, "alice", True)
    assert third.get("/console/").headers["location"] == "/console/signin"


def test_switching_role_narrows_the_session_and_a_role_not_held_is_refused(
    console_platform: Platform, new_browser: Callable[[], Browser]
) -> None:
    console_platform.identity.add_member(ADMIN, "risk", "alice", "MLOpsEngineer")
    browser = new_browser()
    browser.sign_in(token_of(console_platform, "alice"))
    browser.get("/console/")

    switched = browser.post("/console/role", {"acting_as": "MLOpsEngineer@risk"})
    assert switched.status_code == 303
    home = browser.get("/console/")
    assert "Acting as: <strong>MLOpsEngineer@risk</strong>" in home.text
    assert '<option value="MLOpsEngineer@risk" selected>' in home.text

    refused = browser.post("/console/role", {"acting_as": "PlatformAdmin"})
    assert refused.status_code == 403
    assert [d for a, d, _ in _events(console_platform, refused.headers["x-request-id"])] == ["Deny"]

    console_platform.identity.remove_member(ADMIN, "risk", "alice", "MLOpsEngineer")
    assert browser.get("/console/").headers["location"] == "/console/signin"


def test_a_form_without_its_csrf_token_is_refused_and_audited(
    console_platform: Platform, new_browser: Callable[[], Browser]
) -> None:
    browser = new_browser()
    browser.sign_in(token_of(console_platform, "alice"))
    browser.get("/console/")
    forged = browser.post("/console/signout", csrf=False)
    assert forged.status_code == 403 and "CSRF" in forged.text
    assert [d for _, d, _ in _events(console_platform, forged.headers["x-request-id"])] == ["Deny"]
    assert browser.get("/console/").status_code == 200  # still signed in


def test_revoking_my_token_from_the_tokens_page_signs_this_browser_out(
    console_platform: Platform, new_browser: Callable[[], Browser]
) -> None:
    laptop = console_platform.identity.create_token(ADMIN, "laptop", user="alice")
    spare = console_platform.identity.create_token(ADMIN, "spare", user="alice")
    browser = new_browser()
    browser.sign_in(laptop.secret)
    page = browser.get("/console/tokens")
    assert f"<code>{laptop.token.id}</code> (this session)" in page.text and "Revoke spare" in page.text
    assert laptop.secret not in page.text and spare.secret not in page.text

    assert browser.post(f"/console/tokens/{spare.token.id}/revoke").status_code == 303
    assert "Revoke spare" not in browser.get("/console/tokens").text
    assert browser.post(f"/console/tokens/{laptop.token.id}/revoke").status_code == 303
    assert browser.get("/console/tokens").headers["location"] == "/console/signin"
