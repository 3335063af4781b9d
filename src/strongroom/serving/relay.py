"""Invocations from every API process of ``strongroom up --workers N`` reach the one pool of
endpoint workers, owned by the process that runs the background workers.

That process listens on a private Unix socket (``run/serving.sock``, mode 0600, in the 0700 run
directory; sandboxes never see it). Another API process has already authenticated, authorized
and audited the call (``ServingService.invoke``); it relays only the scoring: team, endpoint,
variant, content type and body go in, the answer (or the problem that stopped it) comes back.
Capture records are written by the owner, into the one spool per endpoint.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import logging
import os
import socketserver
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpcore

from strongroom.core.errors import (
    InvalidInput,
    PayloadTooLarge,
    StrongroomError,
    Unavailable,
    UnsupportedMediaType,
)

log = logging.getLogger(__name__)

Score = Callable[[str, str, bytes, str, str, str], tuple[bytes, str]]
_ERRORS: dict[int, type[StrongroomError]] = {
    e.status: e for e in (InvalidInput, PayloadTooLarge, UnsupportedMediaType, Unavailable)
}
_TIMEOUT = {"timeout": {"connect": 5.0, "read": 60.0, "write": 30.0, "pool": 30.0}}


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    score: Score


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        try:
            answer, out_type = self.server.score(
                self.headers.get("X-Team", ""),
                self.headers.get("X-Endpoint", ""),
                body,
                self.headers.get("Content-Type", ""),
                self.headers.get("X-Target-Variant", ""),
                self.headers.get("X-Explain", ""),
            )
            status = 200
        except StrongroomError as exc:
            answer, out_type, status = json.dumps(exc.to_problem()).encode(), "application/problem+json", exc.status
        except Exception as exc:  # the relaying process answers 503; the cause is logged here
            log.exception("serving relay: scoring failed")
            problem = Unavailable(f"the endpoint could not score the request: {type(exc).__name__}").to_problem()
            answer, out_type, status = json.dumps(problem).encode(), "application/problem+json", 503
        self.send_response(status)
        self.send_header("Content-Type", out_type)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def address_string(self) -> str:
        return "api-process"

    def log_message(self, format: str, *args: Any) -> None:
        return None


class RelayServer:
    """The owner's side: scores relayed invocations with ``score`` until ``close``."""

    def __init__(self, path: Path, score: Score) -> None:
        path.unlink(missing_ok=True)
        old = os.umask(0o177)
        try:
            self._server = _Server(str(path), _Handler)
        finally:
            os.umask(old)
        self._server.score = score
        self.path = path
        self._thread = threading.Thread(target=self._server.serve_forever, name="serving-relay", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


class RelayClient:
    """Another API process's side: hands the scoring to the owner."""

    def __init__(self, path: Path) -> None:
        self._pool = httpcore.ConnectionPool(uds=str(path), max_connections=64)

    def __call__(
        self, team: str, name: str, body: bytes, content_type: str, target_variant: str, explain: str = ""
    ) -> tuple[bytes, str]:
        headers = [
            (b"Content-Type", content_type.encode("latin-1")),
            (b"X-Team", team.encode()),
            (b"X-Endpoint", name.encode()),
            (b"X-Target-Variant", target_variant.encode()),
            (b"X-Explain", explain.encode()),
        ]
        try:
            answer = self._pool.request(
                "POST", "http://relay/invocations", headers=headers, content=body, extensions=_TIMEOUT
            )
        except (httpcore.NetworkError, httpcore.ProtocolError, httpcore.TimeoutException) as exc:
            raise Unavailable(
                f"endpoint {team}/{name}: the process that runs the endpoints does not answer; retry shortly"
            ) from exc
        out_type = next((v.decode() for k, v in answer.headers if k.lower() == b"content-type"), "")
        if answer.status == 200:
            return answer.content, out_type
        problem = json.loads(answer.content)
        error = _ERRORS.get(answer.status, Unavailable)
        extra = {k: v for k, v in problem.items() if k not in ("type", "title", "status", "detail", "field")}
        raise error(str(problem.get("detail", "")), field=problem.get("field"), **extra)

    def close(self) -> None:
        self._pool.close()
