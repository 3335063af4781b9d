"""ASGI middleware: request ids, body-size limits, handler timeouts, security headers, and the
audit fallback that records every request the services did not (malformed, unauthenticated,
unknown routes), so that every call is in the audit log.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Callable
from typing import Any

import anyio

from strongroom.api.problems import PROBLEM_JSON, problem_body
from strongroom.core.errors import PayloadTooLarge, StrongroomError, Timeout
from strongroom.guard import Guard

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Any]
Send = Callable[[Message], Any]
ASGIApp = Callable[[Scope, Receive, Send], Any]

_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
SECURITY_HEADERS = [
    (b"strict-transport-security", b"max-age=31536000"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
]


class _BodyTooLarge(Exception):
    pass


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return ""


async def _send_problem(send: Send, error: StrongroomError, request_id: str, path: str) -> None:
    body = json.dumps(problem_body(error, path, request_id)).encode()
    headers = [
        (b"content-type", PROBLEM_JSON.encode()),
        (b"content-length", str(len(body)).encode()),
        (b"x-request-id", request_id.encode()),
        *SECURITY_HEADERS,
    ]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class PlatformMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        guard: Guard,
        max_body: int,
        timeout: float,
        unlimited_prefixes: tuple[str, ...] = (),
        audit_unhandled: bool = True,
    ) -> None:
        self.app = app
        self.guard = guard
        self.max_body = max_body
        self.timeout = timeout
        self.unlimited_prefixes = unlimited_prefixes
        self.audit_unhandled = audit_unhandled

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = _header(scope, b"x-request-id")
        request_id = incoming if _REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        path = scope.get("path", "")
        with self.guard.connection():
            await self._serve(scope, receive, send, request_id, path)

    async def _serve(self, scope: Scope, receive: Receive, send: Send, request_id: str, path: str) -> None:
        status_holder = {"status": 0}
        limited = not path.startswith(self.unlimited_prefixes) if self.unlimited_prefixes else True

        try:
            declared = _header(scope, b"content-length")
            if limited and declared.isdigit() and int(declared) > self.max_body:
                status_holder["status"] = 413
                await _send_problem(
                    send,
                    PayloadTooLarge(f"the request body is {declared} bytes; the limit is {self.max_body} bytes"),
                    request_id,
                    path,
                )
                return

            received = 0
            loop = asyncio.get_running_loop()
            # Settled when the handler ends, its answer starts, or the handler timeout passes:
            # one future and one timer per request (no waiter task, no asyncio.wait).
            settled: asyncio.Future[bool] = loop.create_future()  # True: the timeout passed first

            def settle(timed_out: bool) -> None:
                if not settled.done():
                    settled.set_result(timed_out)

            async def limited_receive() -> Message:
                nonlocal received
                message = await receive()
                if limited and message.get("type") == "http.request":
                    received += len(message.get("body", b""))
                    if received > self.max_body:
                        raise _BodyTooLarge
                return dict(message)

            async def tracking_send(message: Message) -> None:
                if message["type"] == "http.response.start":
                    status_holder["status"] = message["status"]
                    # Record requests no service audited before the client sees the answer.
                    await self._audit_if_unrecorded(scope, request_id, message["status"])
                    headers = list(message.get("headers", []))
                    headers.append((b"x-request-id", request_id.encode()))
                    present = {k.lower() for k, _ in headers}
                    headers.extend(h for h in SECURITY_HEADERS if h[0] not in present)
                    message = {**message, "headers": headers}
                    settle(False)
                await send(message)

            task = loop.create_task(self.app(scope, limited_receive, tracking_send))
            task.add_done_callback(lambda _: settle(False))
            # Streaming uploads answer only once the whole body is in: no handler timeout there.
            timer = loop.call_later(self.timeout, settle, True) if limited else None
            try:
                timed_out = await settled
            finally:
                if timer is not None:
                    timer.cancel()
            if timed_out:
                task.cancel()
                status_holder["status"] = 504
                await _send_problem(
                    send,
                    Timeout(f"the request took longer than {self.timeout:g} s and was abandoned"),
                    request_id,
                    path,
                )
                return
            try:
                await task
            except _BodyTooLarge:
                if not status_holder["status"]:  # the answer had not started
                    status_holder["status"] = 413
                    await _send_problem(
                        send, PayloadTooLarge(f"the request body exceeds {self.max_body} bytes"), request_id, path
                    )
        finally:
            await self._audit_if_unrecorded(scope, request_id, status_holder["status"])

    async def _audit_if_unrecorded(self, scope: Scope, request_id: str, status: int) -> None:
        if not self.guard.handled() and self.audit_unhandled:
            await anyio.to_thread.run_sync(self._audit_unhandled, scope, request_id, status)

    def _audit_unhandled(self, scope: Scope, request_id: str, status: int) -> None:
        """Record a request no service audited (rejected before reaching one)."""
        route = scope.get("route")
        template = getattr(route, "path", None) or scope.get("path", "")
        client = scope.get("client")
        self.guard.record_unhandled(
            scope.get("state", {}).get("principal"),
            f"HTTP {scope.get('method', '')} {template}",
            str(scope.get("path", "")),
            status,
            request_id=request_id,
            source=f"{client[0]}" if client else "unix-socket",
            user_agent=_header(scope, b"user-agent"),
            params={"query": scope.get("query_string", b"").decode("latin-1")[:512]},
        )
