"""The outermost ASGI layer: ``/healthz`` and ``/readyz`` for probes, and the request metrics.

Probes are answered here, before the request id, authentication and audit layers: a load
balancer or a service manager asks every few seconds without a token, and the answers hold no
data (see docs/security.md). Every other HTTP request is timed and counted by route template.
"""

from __future__ import annotations

import json
import logging
import time
from typing import TYPE_CHECKING

import anyio

from strongroom.api.middleware import SECURITY_HEADERS, ASGIApp, Message, Receive, Scope, Send
from strongroom.health import readiness
from strongroom.observability.logs import ACCESS_LOGGER

if TYPE_CHECKING:
    from strongroom.platform import Platform

PROBES = ("/healthz", "/readyz")
access_log = logging.getLogger(ACCESS_LOGGER)


async def _json(send: Send, status: int, body: dict[str, object], *, head: bool = False) -> None:
    data = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()), *SECURITY_HEADERS]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else data})  # HEAD: the headers only


class ObservabilityMiddleware:
    def __init__(self, app: ASGIApp, *, platform: Platform) -> None:
        self.app = app
        self.platform = platform

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        # HEAD too: load balancers probe with it, and an unrouted HEAD would be an audited 404 each time.
        if path in PROBES and scope.get("method") in ("GET", "HEAD"):
            await self._probe(path, send, head=scope["method"] == "HEAD")
            return
        started = time.perf_counter()
        first_byte = {"status": 0, "seconds": 0.0}

        async def timed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                first_byte["status"] = int(message["status"])
                first_byte["seconds"] = time.perf_counter() - started
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        finally:
            method, status = str(scope.get("method", "")), int(first_byte["status"])
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self.platform.metrics.request(method, route, status, first_byte["seconds"] or time.perf_counter() - started)
            self._access(scope, method, route, status, time.perf_counter() - started)

    @staticmethod
    def _access(scope: Scope, method: str, route: str, status: int, seconds: float) -> None:
        """One access-log record per request; the path without its query (presigned URLs carry signatures)."""
        state = scope.get("state", {})
        principal = state.get("principal")
        client = scope.get("client")
        fields = {
            "request_id": state.get("request_id", ""),
            "principal": principal.user if principal is not None else "anonymous",
            "action": f"{method} {route}",
            "status": status,
            "duration_ms": round(seconds * 1000, 3),
            "source": client[0] if client else "unix-socket",
            "method": method,
            "path": scope.get("path", ""),
        }
        access_log.info("%s %s %s", method, fields["path"], status, extra=fields)

    async def _probe(self, path: str, send: Send, *, head: bool) -> None:
        if path == "/healthz":
            await _json(send, 200, {"status": "alive"}, head=head)
            return
        checks = await anyio.to_thread.run_sync(readiness, self.platform)
        ready = all(v == "ok" for v in checks.values())
        body: dict[str, object] = {"status": "ready" if ready else "not ready", "checks": checks}
        await _json(send, 200 if ready else 503, body, head=head)
