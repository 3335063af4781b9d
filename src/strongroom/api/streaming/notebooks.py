"""The notebook proxy: ``/notebooks/<team>/<name>/...`` (HTTP and WebSocket, streamed) -> Jupyter's socket.

Every request and every WebSocket session is authenticated (a platform token in
``Authorization: Bearer``, or the notebook's browser session cookie) and authorized
(``OpenNotebook``: the owner and the team's DataScienceAdmins). Audit events are at the level of
evidence, each written before anything is forwarded (fail closed: 503 when the log cannot be
written): a session's open (a fresh decision, which then covers that session's reads for a few
seconds), every request that is not a read (kernel and terminal starts, file writes), and each
WebSocket's connect and close (with the bytes each way). Refusals are always recorded. The user's
credentials never reach Jupyter: the proxy strips them and adds the per-launch secret Jupyter
trusts instead (``strongroom.notebooks.inside.jupyter_auth``).

``/notebooks/<team>/<name>/_signin?token=...`` redeems a single-use pre-signed URL: it sets a
Secure, HttpOnly, SameSite=Strict session cookie scoped to the notebook's path and redirects to
the notebook without the token (``Referrer-Policy: no-referrer``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import anyio
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect
from websockets.asyncio.client import unix_connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from strongroom.api.problems import problem
from strongroom.core.context import Principal, RequestContext
from strongroom.core.errors import NotFound, StrongroomError, Unavailable
from strongroom.core.names import NAME_PATTERN
from strongroom.guard.connection import authenticate, presented_token, request_context
from strongroom.notebooks.spawner import Live
from strongroom.notebooks.upstream import UpstreamError, UpstreamPool

if TYPE_CHECKING:
    from strongroom.guard import Ticket
    from strongroom.notebooks.service import NotebookService

COOKIE = "strongroom-notebook"
_HOP = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
}
_STRIP_REQUEST = _HOP | {"authorization", "cookie"}
_WS_STRIP = _STRIP_REQUEST | {
    "content-length",
    "host",
    "origin",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-extensions",
    "sec-websocket-protocol",
}
log = logging.getLogger(__name__)
_INTERNAL = re.compile(r"^x-strongroom-", re.I)
# Jupyter answers a kernel's WebSocket handshake only once the kernel does, waiting up to 60 s.
_UPSTREAM_OPEN_TIMEOUT = 75.0
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def _names(connection: HTTPConnection) -> tuple[str, str]:
    team, name = connection.path_params["team"], connection.path_params["name"]
    if not NAME_PATTERN.fullmatch(team) or not NAME_PATTERN.fullmatch(name):
        raise NotFound("no such notebook")
    return team, name


async def _audit_refusal(connection: HTTPConnection, team: str, name: str, error: StrongroomError, via: str) -> None:
    """Record a refused request (no token, bad session, used sign-in link) without any credential in it."""
    platform = connection.app.state.platform
    principal = connection.scope.get("state", {}).get("principal") or Principal.anonymous()
    context = request_context(connection, principal)
    await anyio.to_thread.run_sync(
        lambda: platform.guard.record_unhandled(
            principal,
            "OpenNotebook",
            f"srn:strongroom:{team}:notebook/{name}",
            error.status,
            request_id=context.request_id,
            source=context.source,
            user_agent=context.user_agent,
            params={"via": via},
            team=team,
            error=error,
        )
    )


async def _authenticate(connection: HTTPConnection, team: str, name: str) -> tuple[Principal, bool, float]:
    """``(principal, bearer, cookie_expiry)``: a platform token, else the notebook's session cookie."""
    platform = connection.app.state.platform
    expires = 0.0

    async def from_cookie() -> Principal | None:
        nonlocal expires
        cookie = connection.cookies.get(COOKIE, "")
        notebook_id = platform.notebooks.notebook_id(team, name) if cookie else None
        if not notebook_id:
            return None
        principal, expires = await anyio.to_thread.run_sync(
            platform.notebooks.principal_from_cookie, cookie, notebook_id
        )
        return principal

    principal = await authenticate(
        connection,
        platform.identity,
        cookie=from_cookie,
        hint="sign in to this notebook with `strongroom notebooks open`, or send a platform token",
    )
    return principal, bool(presented_token(connection)), expires


async def _admit(connection: HTTPConnection, via: str) -> tuple[str, str, Principal, bool, float]:
    """``(team, name, principal, bearer, cookie_expiry)`` of a proxied connection; a refusal is
    recorded (without any credential in it) and raised."""
    team = name = ""
    try:
        team, name = _names(connection)
        principal, bearer, expires = await _authenticate(connection, team, name)
    except StrongroomError as exc:
        await _audit_refusal(connection, team, name, exc, via)
        raise
    return team, name, principal, bearer, expires


# Reads (static assets, listings) are covered by the session's open event; anything else
# (kernel and terminal starts, file writes, deletes) is evidence and gets an event of its own.
_READS = frozenset({"GET", "HEAD", "OPTIONS"})


async def _authorize_open(
    notebooks: NotebookService, ctx: RequestContext, team: str, name: str, params: dict[str, str], *, evidence: bool
) -> Ticket:
    """A read covered by a recent session-open decision on the event loop; otherwise a fresh
    decision (policy, and an event when the ticket is finished) in a thread."""
    if not evidence:
        covered = notebooks.reuse_decision(ctx, team, name, params)
        if covered is not None:
            return covered
    return await anyio.to_thread.run_sync(notebooks.authorize_open, ctx, team, name, params)


def _upstream_headers(
    connection: HTTPConnection, live: Live, principal: Principal, bearer: bool, strip: set[str]
) -> dict[str, str]:
    headers = {k: v for k, v in connection.headers.items() if k.lower() not in strip and not _INTERNAL.match(k)}
    cookies = [
        part.strip()
        for part in connection.headers.get("cookie", "").split(";")
        if part.strip() and not part.strip().startswith(COOKIE + "=")
    ]
    if cookies:
        headers["cookie"] = "; ".join(cookies)
    headers.update(live.upstream_headers(principal.user, bearer))
    return headers


def _raw_path(connection: HTTPConnection) -> str:
    """The path as the client sent it (still percent-encoded), so file names survive the hop."""
    raw = connection.scope.get("raw_path")
    return raw.decode("latin-1") if raw else quote(connection.url.path)


def _pool(live: Live) -> UpstreamPool:
    key = id(asyncio.get_running_loop())
    pool = live.clients.get(key)
    if pool is None:
        pool = UpstreamPool(live.socket_path)
        live.clients[key] = pool
    return pool


def _cookie_header(value: str, team: str, name: str, max_age: int) -> str:
    return f"{COOKIE}={value}; Path=/notebooks/{team}/{name}/; Max-Age={max_age}; Secure; HttpOnly; SameSite=Strict"


async def signin(request: Request) -> Response:
    """Redeem a pre-signed URL once: session cookie, then a redirect without the token."""
    try:
        team, name = _names(request)
    except NotFound as exc:
        return problem(request, exc)
    platform = request.app.state.platform
    token = request.query_params.get("token", "")
    ctx = request_context(request, Principal.anonymous())
    try:
        cookie = await anyio.to_thread.run_sync(platform.notebooks.redeem, ctx, team, name, token)
    except StrongroomError as exc:
        if not platform.guard.handled():
            await _audit_refusal(request, team, name, exc, "pre-signed URL")
        return problem(request, exc)
    ttl = int(platform.notebooks.session_ttl.total_seconds())
    return Response(
        status_code=303,
        headers={
            "location": f"/notebooks/{team}/{name}/lab",
            "set-cookie": _cookie_header(cookie, team, name, ttl),
            "referrer-policy": "no-referrer",
            "cache-control": "no-store",
        },
    )


async def add_slash(request: Request) -> Response:
    return Response(status_code=307, headers={"location": request.url.path + "/"})


_BUFFERED_BODY_LIMIT = 256 * 1024


async def proxy_http(request: Request) -> Response:
    """Forward one HTTP request to the notebook's Jupyter, streaming both bodies."""
    notebooks = request.app.state.platform.notebooks
    try:
        team, name, principal, bearer, expires = await _admit(request, "proxy")
    except StrongroomError as exc:
        return problem(request, exc)
    ctx = request_context(request, principal)
    path = request.url.path
    params = {"method": request.method, "path": path[:256]}
    try:
        ticket = await _authorize_open(notebooks, ctx, team, name, params, evidence=request.method not in _READS)
        live = notebooks.route(team, name)
        if live is None:
            exists = await anyio.to_thread.run_sync(notebooks.notebook_id, team, name)
            error: StrongroomError = (
                Unavailable(f"notebook {team}/{name} is not running; start it with `strongroom notebooks start`")
                if exists
                else NotFound(f"team {team} has no notebook {name!r}")
            )
            await anyio.to_thread.run_sync(ticket.finish, error)
            return problem(request, error)
        # Recorded before anything is forwarded: no event, no request (fail closed, 503).
        await anyio.to_thread.run_sync(ticket.finish)
    except StrongroomError as exc:  # denied (audited), or the audit log cannot be written
        return problem(request, exc)
    headers = _upstream_headers(request, live, principal, bearer, _STRIP_REQUEST)
    has_body = request.method in ("POST", "PUT", "PATCH", "DELETE")
    target = _raw_path(request) + (f"?{request.url.query}" if request.url.query else "")
    try:
        upstream = await _pool(live).request(
            request.method, target, list(headers.items()), request.stream() if has_body else None
        )
    except (UpstreamError, OSError) as exc:
        return problem(request, Unavailable(f"the notebook server did not answer: {type(exc).__name__}"))
    raw = [(k, v) for k, v in upstream.headers if k.decode("latin-1") not in _HOP]
    if not bearer and expires - time.time() < notebooks.session_ttl.total_seconds() / 2:
        fresh = notebooks.session_cookie(
            principal.user,
            principal.grants[0].role,
            principal.grants[0].team,
            live.notebook_id,
            parent=principal.parent_token,
        )
        ttl = int(notebooks.session_ttl.total_seconds())
        raw.append((b"set-cookie", _cookie_header(fresh, team, name, ttl).encode()))

    async def body() -> AsyncIterator[bytes]:
        try:
            async for chunk in upstream.body():
                yield chunk
        finally:
            await upstream.aclose()

    response: Response
    if _small_body(upstream.headers):
        # Most Jupyter API answers are small: one plain response costs the event loop less than
        # a stream (no disconnect-watching task group, fewer writes).
        response = Response(b"".join([chunk async for chunk in body()]), status_code=upstream.status_code)
    else:
        response = StreamingResponse(body(), status_code=upstream.status_code)
    response.raw_headers = raw
    return response


def _small_body(headers: list[tuple[bytes, bytes]]) -> bool:
    for key, value in headers:
        if key.lower() == b"content-length":
            return value.isdigit() and int(value) <= _BUFFERED_BODY_LIMIT
    return False


async def proxy_websocket(websocket: WebSocket) -> None:
    """Bridge one WebSocket (kernels, terminals) to Jupyter; authorized and audited as one session."""
    notebooks = websocket.app.state.platform.notebooks
    try:
        team, name, principal, bearer, _ = await _admit(websocket, "websocket")
    except StrongroomError:
        await websocket.close(code=1008)
        return
    ctx = request_context(websocket, principal)
    path = websocket.url.path
    params = {"method": "WEBSOCKET", "path": path[:256], "phase": "connect"}
    try:
        ticket = await anyio.to_thread.run_sync(notebooks.authorize_open, ctx, team, name, params)
        live = notebooks.route(team, name)
        if live is None:
            await anyio.to_thread.run_sync(ticket.finish, Unavailable("the notebook is not running"))
            await websocket.close(code=1013)
            return
        await anyio.to_thread.run_sync(ticket.finish)  # the connect event, before any byte is bridged
    except StrongroomError:  # denied (audited), or the audit log cannot be written
        await websocket.close(code=1008)
        return
    headers = _upstream_headers(websocket, live, principal, bearer, _WS_STRIP)
    host = websocket.headers.get("host", "localhost")
    query = f"?{websocket.url.query}" if websocket.url.query else ""
    failure: StrongroomError | None = None
    counted = {"bytes_in": 0, "bytes_out": 0}
    # Revoking the credentials this socket stands on closes it (notebooks.sockets, from another thread).
    loop = asyncio.get_running_loop()
    revoked: asyncio.Future[str] = loop.create_future()

    def close(reason: str) -> None:
        def settle() -> None:
            if not revoked.done():
                revoked.set_result(reason)

        loop.call_soon_threadsafe(settle)

    try:
        with notebooks.sockets.holding(notebooks.watch(ticket, live.notebook_id, close)):
            async with unix_connect(
                live.socket_path,
                f"ws://{host}{_raw_path(websocket)}{query}",
                additional_headers=headers,
                origin=websocket.headers.get("origin"),
                subprotocols=websocket.scope.get("subprotocols") or None,
                max_size=None,
                compression=None,
                ping_interval=None,
                open_timeout=_UPSTREAM_OPEN_TIMEOUT,
            ) as upstream:
                await websocket.accept(subprotocol=upstream.subprotocol)
                await _pump(websocket, upstream, counted, revoked)
    except InvalidStatus as exc:
        failure = Unavailable(f"Jupyter refused the WebSocket: HTTP {exc.response.status_code}")
        await websocket.close(code=1008)
    except (OSError, ConnectionClosed) as exc:
        failure = Unavailable(f"the notebook server closed the WebSocket: {type(exc).__name__}")
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await websocket.close(code=1011)
    finally:
        if failure is not None:
            log.warning("notebooks: WebSocket %s of %s/%s: %s", path, team, name, failure)
        closing = {**params, "phase": "close", **{k: str(v) for k, v in counted.items()}}
        try:
            await anyio.to_thread.run_sync(notebooks.record_socket_close, ctx, team, name, closing, failure)
        except StrongroomError as exc:
            log.warning("notebooks: the close of WebSocket %s of %s/%s: %s", path, team, name, exc)


async def _pump(websocket: WebSocket, upstream: Any, counted: dict[str, int], revoked: asyncio.Future[str]) -> None:
    async def client_to_upstream() -> None:
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                if message.get("bytes") is not None:
                    counted["bytes_in"] += len(message["bytes"])
                    await upstream.send(message["bytes"])
                elif message.get("text") is not None:
                    counted["bytes_in"] += len(message["text"].encode())
                    await upstream.send(message["text"])
        except (WebSocketDisconnect, ConnectionClosed):
            pass
        finally:
            await upstream.close()

    async def upstream_to_client() -> None:
        try:
            async for message in upstream:
                if isinstance(message, bytes):
                    counted["bytes_out"] += len(message)
                    await websocket.send_bytes(message)
                else:
                    counted["bytes_out"] += len(message.encode())
                    await websocket.send_text(message)
        except ConnectionClosed:
            pass
        finally:
            with contextlib.suppress(RuntimeError, WebSocketDisconnect):
                await websocket.close()

    tasks = [asyncio.create_task(client_to_upstream()), asyncio.create_task(upstream_to_client())]
    waiting: list[asyncio.Future[Any]] = [*tasks, revoked]
    await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
    for task in tasks:
        if task.done():
            continue
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    if revoked.done():
        await upstream.close()
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await websocket.close(code=1008, reason=revoked.result()[:120])


def routes() -> list[BaseRoute]:
    return [
        Route("/notebooks/{team}/{name}/_signin", signin, methods=["GET"]),
        Route("/notebooks/{team}/{name}", add_slash, methods=METHODS),
        Route("/notebooks/{team}/{name}/{path:path}", proxy_http, methods=METHODS),
        WebSocketRoute("/notebooks/{team}/{name}/{path:path}", proxy_websocket),
    ]
