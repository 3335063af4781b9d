"""Single sign-on pages: off to the identity provider, and back with an authorization code."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from strongroom.console import web
from strongroom.console.signin import signed_in, signin_form
from strongroom.core.context import Principal
from strongroom.core.errors import NotFound, StrongroomError, Unauthenticated
from strongroom.guard.connection import request_context
from strongroom.identity.oidc import FLOW_SECONDS, OidcClient

FLOW_COOKIE = "__Host-strongroom-oidc"
CALLBACK = "/console/oidc/callback"


def _client(request: Request) -> OidcClient:
    client = web.platform_of(request).oidc
    if client is None:
        raise NotFound("single sign-on is not configured on this platform")
    return client


def _flow_cookie(value: str, max_age: int) -> str:
    # Lax, not Strict: the provider's redirect back is a navigation from another site, and a
    # Strict cookie would not come along. It holds only this sign-in's state, nonce and verifier.
    return f"{FLOW_COOKIE}={value}; Path=/; Max-Age={max_age}; Secure; HttpOnly; SameSite=Lax"


async def start(request: Request) -> Response:
    """Send the browser to the identity provider (authorization code + PKCE)."""
    try:
        client = _client(request)
        callback = request.app.state.public_url + CALLBACK  # the configured public URL, never a header
        url, flow = await web.run(lambda: client.begin(callback))
    except StrongroomError as error:
        return signin_form(request, error.status, error.detail)
    response = web.secured(Response(status_code=303, headers={"location": url}))
    response.headers["set-cookie"] = _flow_cookie(flow, FLOW_SECONDS)
    return response


async def callback(request: Request) -> Response:
    """Back from the provider: check the answer, verify the ID token, map it, open a session."""
    platform = web.platform_of(request)
    try:
        client = _client(request)
        if request.query_params.get("error"):
            raise Unauthenticated(f"the identity provider refused the sign-in: {request.query_params['error'][:100]}")
        flow = request.cookies.get(FLOW_COOKIE, "")
        state, code = request.query_params.get("state", ""), request.query_params.get("code", "")
        redirect = request.app.state.public_url + CALLBACK
        mapped = await web.run(lambda: client.finish(flow, state, code, redirect))
        principal = Principal(user=mapped.user, token_kind="session", grants=())
        request.scope.setdefault("state", {})["principal"] = principal
        ctx = request_context(request, principal)
        params = {"issuer": client.issuer, "subject": mapped.subject}
        cookie = await web.run(
            lambda: platform.console_sessions.open(ctx, via="oidc", allowed=mapped.allowed, params=params)
        )
    except StrongroomError as error:
        response = signin_form(request, error.status, error.detail)
        response.headers.append("set-cookie", _flow_cookie("", 0))
        return response
    response = signed_in(request, cookie)
    response.headers.append("set-cookie", _flow_cookie("", 0))
    return response
