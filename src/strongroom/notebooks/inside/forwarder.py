"""A loopback HTTP forwarder inside the notebook's sandbox: ``127.0.0.1:<port>`` -> the platform socket.

git and pip speak HTTP over TCP only, and the sandbox's only way out is the platform's Unix
socket. This forwarder listens on the sandbox's *own* loopback (its network namespace has no
other interface), forwards ``/git/``, ``/pypi/`` and ``/api/`` requests to the socket, and adds
``Authorization: Bearer <execution token>`` read fresh from the token file the platform keeps
refreshed, so no credential is ever written into ``.git/config`` or pip's configuration.

It is a convenience, not a boundary: the platform authorizes every request it forwards.
Standard library only (it runs in the notebook's Python).
"""

from __future__ import annotations

import http.client
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ALLOWED_PREFIXES = ("/git/", "/pypi/", "/api/")
_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade", "host"}
_CHUNK = 64 * 1024


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("strongroom", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "strongroom-forwarder"
    socket_path = ""
    token_file = ""

    def log_message(self, format: str, *args: object) -> None:
        return None  # request lines may name private repositories; keep them out of the logs

    def _body(self) -> bytes:
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                parts.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(parts)
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length else b""

    def _forward(self) -> None:
        if not self.path.startswith(ALLOWED_PREFIXES):
            self.send_error(404, "only /git/, /pypi/ and /api/ are forwarded to the platform")
            return
        body = self._body()
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP and k.lower() != "authorization"}
        try:
            token = Path(self.token_file).read_text().strip()
        except OSError:
            token = ""
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if body or self.command in ("POST", "PUT", "PATCH"):
            headers["Content-Length"] = str(len(body))
        upstream = _UnixConnection(self.socket_path, timeout=600)
        try:
            upstream.request(self.command, self.path, body=body or None, headers=headers)
            response = upstream.getresponse()
            self.send_response(response.status, response.reason)
            length = response.getheader("content-length")
            for name, value in response.getheaders():
                if name.lower() not in _HOP and name.lower() != "content-length":
                    self.send_header(name, value)
            if length is not None:
                self.send_header("Content-Length", length)
            else:
                self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            while chunk := response.read1(_CHUNK) if self.command != "HEAD" else b"":
                if length is not None:
                    self.wfile.write(chunk)
                else:
                    self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            if length is None and self.command != "HEAD":
                self.wfile.write(b"0\r\n\r\n")
        except OSError as exc:
            self.send_error(502, f"the platform socket did not answer: {exc}")
        finally:
            upstream.close()

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _forward


def serve(port: int, socket_path: str, token_file: str) -> ThreadingHTTPServer:
    """Start the forwarder on ``127.0.0.1:port`` in a daemon thread and return the server."""
    handler = type("Handler", (_Handler,), {"socket_path": socket_path, "token_file": token_file})
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="strongroom-forwarder", daemon=True).start()
    return server
