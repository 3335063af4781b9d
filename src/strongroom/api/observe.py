"""The outermost ASGI layer: ``/healthz`` and ``/readyz`` for probes, and the request metrics.

Probes are answered here, before the request id, authentication and audit layers: a load
balancer or a service manager asks every few seconds without a token, and the answers hold no
data (see docs/security.md). Every other HTTP request is timed and counted by route template.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

import anyio

from strongroom.api.middleware import SECURITY_HEADERS, ASGIApp, Message, Receive, Scope, Send
from strongroom.observability.health import readiness

if TYPE_CHECKING:
    from strongroom.core.platform import Platform

PROBES = ("/healthz", "/readyz")


async def _json(send: Send, status: int, body: dict[str, object]) -> None:
    data = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()), *SECURITY_HEADERS]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


class ObservabilityMiddleware:
    def __init__(self, app: ASGIApp, *, platform: Platform) -> None:
        self.app = app
        self.platform = platform

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        if path in PROBES and scope.get("method") in ("GET", "HEAD"):
            await self._probe(path, send)
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
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            seconds = first_byte["seconds"] or time.perf_counter() - started
            self.platform.metrics.request(str(scope.get("method", "")), route, int(first_byte["status"]), seconds)

    async def _probe(self, path: str, send: Send) -> None:
        if path == "/healthz":
            await _json(send, 200, {"status": "alive"})
            return
        checks = await anyio.to_thread.run_sync(readiness, self.platform)
        ready = all(v == "ok" for v in checks.values())
        await _json(send, 200 if ready else 503, {"status": "ready" if ready else "not ready", "checks": checks})
