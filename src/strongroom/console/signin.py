"""Signing in (an API token exchanged once for a session), switching role, signing out."""

from __future__ import annotations

import hmac
import secrets

from starlette.requests import Request
from starlette.responses import Response

from strongroom.console import web
from strongroom.core.context import Principal
from strongroom.core.errors import Forbidden, StrongroomError, Unauthenticated
from strongroom.guard.connection import CONSOLE_COOKIE, request_context
from strongroom.policy.engine import Target


def signin_form(request: Request, status: int = 200, error: str = "") -> Response:
    """The sign-in page, with a fresh sign-in CSRF token (a cookie and the same value in the form)."""
    token = secrets.token_urlsafe(24)
    oidc = web.platform_of(request).oidc
    name = oidc.display_name if oidc is not None else ""
    response = web.render(request, "signin.html", status, who=None, error=error, signin_token=token, oidc=name)
    response.headers["set-cookie"] = web.cookie_header(web.LOGIN_COOKIE, token, 600)
    return response


def check_signin_token(request: Request, form: web.Form) -> None:
    """The sign-in form came from our own page (login CSRF: nobody signs a browser in as someone else)."""
    web.same_origin(request)
    expected = request.cookies.get(web.LOGIN_COOKIE, "")
    given = form.get("signin_token")
    if not expected or not given or not hmac.compare_digest(expected.encode(), given.encode()):
        raise Forbidden("the sign-in form expired; reload the page and sign in again", field="signin_token")


def signed_in(request: Request, cookie: str) -> Response:
    """Go to the console with the new session cookie (and the sign-in cookie dropped)."""
    response = web.redirect(request, "/console/")
    ttl = int(web.platform_of(request).console_sessions.ttl.total_seconds())
    response.headers.append("set-cookie", web.cookie_header(CONSOLE_COOKIE, cookie, ttl))
    response.headers.append("set-cookie", web.cookie_header(web.LOGIN_COOKIE, "", 0))
    return response


async def signin_page(request: Request) -> Response:
    """The sign-in page: anyone may see it (decided and audited as ``ViewConsoleSignIn``)."""
    guard = web.platform_of(request).guard
    ctx = request_context(request, Principal.anonymous())

    def view() -> None:
        with guard.begin(ctx, "ViewConsoleSignIn", Target("console-page", "", "signin")):
            pass

    await web.run(view)
    return signin_form(request)


async def signin(request: Request) -> Response:
    """Exchange an API token for a console session. A wrong token is refused (and audited)."""
    platform = web.platform_of(request)
    try:
        form = await web.read_form(request)
        check_signin_token(request, form)
        token = form.get("token").strip()
        if not token:
            raise Unauthenticated("paste your API token (sr_...)")
        principal = await web.run(lambda: platform.identity.authenticate(token))
        request.scope.setdefault("state", {})["principal"] = principal
        ctx = request_context(request, principal)
        cookie = await web.run(lambda: platform.console_sessions.open(ctx, via="token"))
    except StrongroomError as error:
        return signin_form(request, error.status, error.detail)
    return signed_in(request, cookie)


@web.page
async def home(request: Request) -> Response:
    who = await web.caller(request)

    def view() -> None:
        with web.viewing(request, who, "home"):
            pass

    await web.run(view)
    return web.render(request, "home.html", who=who)


@web.page
async def switch_role(request: Request) -> Response:
    who, form = await web.action(request)
    sessions = web.platform_of(request).console_sessions
    await web.run(lambda: sessions.switch_role(who.ctx, who.session, form.get("acting_as")))
    return web.redirect(request, "/console/")


@web.page
async def signout(request: Request) -> Response:
    who, _ = await web.action(request)
    sessions = web.platform_of(request).console_sessions
    await web.run(lambda: sessions.close(who.ctx, who.session))
    response = web.redirect(request, "/console/signin")
    response.headers.append("set-cookie", web.cookie_header(CONSOLE_COOKIE, "", 0))
    return response


async def root(request: Request) -> Response:
    return web.redirect(request, "/console/")
