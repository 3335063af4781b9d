"""Authentication of every connection (API call, WebSocket, git, pip index, notebook proxy) into
one ``RequestContext``: the one place a credential is read from a request."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

import anyio
from starlette.requests import HTTPConnection

from strongroom.core.context import Principal, RequestContext
from strongroom.core.errors import InvalidInput, Unauthenticated

_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9._:-]{1,128}")


class TokenResolver(Protocol):
    """What authentication needs from identity: a token's principal (raises ``Unauthenticated``)."""

    def cached_principal(self, token: str) -> Principal | None: ...

    def authenticate(self, token: str) -> Principal: ...


def presented_token(connection: HTTPConnection, *, basic: bool = False) -> str:
    """The token in ``Authorization: Bearer`` (or, with ``basic``, the password of HTTP Basic,
    as git sends it); empty if none."""
    scheme, _, value = connection.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        return value.strip()
    if basic and scheme.lower() == "basic" and value.strip():
        try:
            _, _, password = base64.b64decode(value.strip()).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return ""
        return password
    return ""


async def authenticate(
    connection: HTTPConnection,
    identity: TokenResolver,
    *,
    basic: bool = False,
    cookie: Callable[[], Awaitable[Principal | None]] | None = None,
    hint: str = "send your token as 'Authorization: Bearer <token>'",
) -> Principal:
    """The caller of ``connection``: its token's principal (a recently seen token from memory on
    the event loop, otherwise looked up in a thread), else the ``cookie`` session if one is given.

    The principal is kept on the connection so a refusal after this point names the caller.
    Raises ``Unauthenticated`` with ``hint`` when no credential is presented.
    """
    token = presented_token(connection, basic=basic)
    principal: Principal | None = None
    if token:
        principal = identity.cached_principal(token) or await anyio.to_thread.run_sync(identity.authenticate, token)
    elif cookie is not None:
        principal = await cookie()
    if principal is None:
        raise Unauthenticated(hint)
    connection.scope.setdefault("state", {})["principal"] = principal
    return principal


def request_context(connection: HTTPConnection, principal: Principal, *, idempotent: bool = False) -> RequestContext:
    """The ``RequestContext`` of an authenticated connection: request id, source, user agent and,
    with ``idempotent``, the ``Idempotency-Key`` (checked)."""
    request_id = connection.scope.get("state", {}).get("request_id") or connection.headers.get("x-request-id", "")
    key = connection.headers.get("idempotency-key", "") if idempotent else ""
    if key and not _IDEMPOTENCY_KEY.fullmatch(key):
        raise InvalidInput("Idempotency-Key must be 1-128 characters of A-Z a-z 0-9 . _ : -", field="Idempotency-Key")
    client = connection.client
    source = client.host if client and client.host else "unix-socket"
    agent = connection.headers.get("user-agent", "")[:256]
    if _REQUEST_ID.fullmatch(request_id or ""):
        return RequestContext(principal, request_id, source, agent, key)
    return RequestContext(principal, source=source, user_agent=agent, idempotency_key=key)


CONSOLE_COOKIE = "__Host-strongroom-console"


class _HoldsPrincipal(Protocol):
    @property
    def principal(self) -> Principal: ...


S = TypeVar("S", bound=_HoldsPrincipal)


async def console_session(connection: HTTPConnection, resolve: Callable[[str], S]) -> S:
    """The web console's caller: its session cookie, resolved by ``resolve`` (in a thread).

    Only the cookie counts: a bearer token is not a console credential (the console's forms are
    protected by the session's CSRF token, which a bearer caller has none of). Raises
    ``Unauthenticated`` when there is no cookie or it no longer stands.
    """
    secret = connection.cookies.get(CONSOLE_COOKIE, "")
    if not secret:
        raise Unauthenticated("sign in to the console")
    found = await anyio.to_thread.run_sync(resolve, secret)
    connection.scope.setdefault("state", {})["principal"] = found.principal
    return found
