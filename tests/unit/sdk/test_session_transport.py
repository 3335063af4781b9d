"""The SDK session's JSON transport against a small real HTTP server (Unix socket, or HTTPS with a CA).

The server counts the connections it accepts and records every request it reads, so the tests
check what a platform would see: one kept-alive connection for many calls, a request sent again
only when that is harmless, the current token on every request.
"""

from __future__ import annotations

import http.server
import json
import os
import socket
import socketserver
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from strongroom.core.errors import NotFound, StrongroomError
from strongroom.core.pki import TlsFiles, create_ca, issue_ephemeral
from strongroom.core.rootkey import RootKey
from strongroom.sdk.session import PlatformUnreachable, Session
from strongroom.sdk.transport import encode_query


@dataclass
class Seen:
    """What the server saw: connections accepted and requests read (method, path, headers)."""

    connections: int = 0
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # per connection: the request numbers (1, 2...) to drop: read the request, close without answering
    drop: set[int] = field(default_factory=set)
    # close every connection right after answering (as a keep-alive timeout does)
    close_after_answer: bool = False

    def paths(self, method: str) -> list[str]:
        with self.lock:
            return [p for m, p, _ in self.requests if m == method]


def _handler(seen: Seen) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            self.served = 0
            with seen.lock:
                seen.connections += 1

        def _answer(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            self.served += 1
            with seen.lock:
                seen.requests.append((self.command, self.path, {k.lower(): v for k, v in self.headers.items()}))
            if self.served in seen.drop:
                self.close_connection = True
                return
            if self.path.startswith("/chunked"):  # a streamed answer: chunks, no content-length
                self.send_response(200)
                self.send_header("content-type", "application/json; charset=utf-8")
                self.send_header("transfer-encoding", "chunked")
                self.send_header("vary", "a")
                self.send_header("Vary", "b")
                self.end_headers()
                for chunk in (b'{"items": [', b'"\xc3\xa9", ', b'"x"]}'):
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.write(b"0\r\n\r\n")
                return
            if self.path.startswith("/slow"):
                time.sleep(1.5)
            if self.path.startswith("/missing"):
                status, kind = 404, "application/problem+json"
                payload: Any = {
                    "type": "https://strongroom.dev/problems/not-found",
                    "title": "Not found",
                    "status": 404,
                }
                payload["detail"] = "no such bucket 'b'"
                payload["field"] = "bucket"
            elif self.path.startswith("/broken"):
                status, kind, payload = 502, "text/plain", None
            else:
                status, kind = 200, "application/json"
                payload = {
                    "method": self.command,
                    "path": self.path,
                    "body": json.loads(body) if body else None,
                    "token": self.headers.get("authorization", ""),
                }
            data = b"bad gateway" if payload is None else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("content-type", kind)
            self.send_header("content-length", str(len(data)))
            self.send_header("x-Request-Id", "r-1")
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
            if seen.close_after_answer:
                self.close_connection = True

        do_GET = do_POST = do_PUT = do_DELETE = _answer

        def log_message(self, *args: object) -> None:
            pass

    return Handler


class _UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


class _TlsServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    context: ssl.SSLContext

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = super().get_request()
        return self.context.wrap_socket(sock, server_side=True), address


@dataclass
class Platform:
    seen: Seen
    socket: str = ""
    url: str = ""
    ca: Path | None = None

    def session(self, **kwargs: Any) -> Session:
        kwargs.setdefault("token", "t0")
        if self.socket:
            return Session(socket=self.socket, **kwargs)
        return Session(url=self.url, ca=self.ca, **kwargs)


def _serve(server: socketserver.BaseServer) -> Iterator[None]:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def unix_platform(tmp_path: Path) -> Iterator[Platform]:
    seen = Seen()
    path = str(tmp_path / "api.sock")
    server = _UnixServer(path, _handler(seen))
    for _ in _serve(server):
        yield Platform(seen, socket=path)


@pytest.fixture
def tls_platform(tmp_path: Path) -> Iterator[Platform]:
    seen = Seen()
    files = TlsFiles.in_dir(tmp_path)
    root = RootKey(os.urandom(32))
    create_ca(files, root)
    cert, key = issue_ephemeral(files, root, common_name="api", dns_names=["localhost"], ip_addresses=["127.0.0.1"])
    (tmp_path / "leaf.pem").write_bytes(cert + key)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "leaf.pem")
    server = _TlsServer(("127.0.0.1", 0), _handler(seen))
    server.context = context
    for _ in _serve(server):
        yield Platform(seen, url=f"https://localhost:{server.server_address[1]}", ca=files.ca_cert)


@pytest.fixture(params=["unix", "tls"])
def platform(request: pytest.FixtureRequest) -> Platform:
    chosen: Platform = request.getfixturevalue(f"{request.param}_platform")
    return chosen


def test_many_requests_share_one_kept_alive_connection(platform: Platform) -> None:
    with platform.session() as session:
        answers = [session.request("GET", f"/api/v1/things/{i}").json()["path"] for i in range(20)]
    assert answers == [f"/api/v1/things/{i}" for i in range(20)]
    assert platform.seen.connections == 1


def test_headers_body_and_query_are_what_the_server_reads(platform: Platform) -> None:
    with platform.session() as session:
        response = session.request(
            "POST",
            "/api/v1/things",
            json_body={"name": "é", "n": 1},
            params={"limit": 5, "after": None, "deep": True, "tag": ["a", "b c"]},
            idempotency_key="k-1",
            headers={"X-Extra": "1"},
        )
    assert response.status_code == 200
    assert response.headers["X-REQUEST-ID"] == "r-1" and response.headers.get("content-type") == "application/json"
    assert response.json()["body"] == {"name": "é", "n": 1}
    assert json.loads(response.text)["path"] == "/api/v1/things?limit=5&deep=true&tag=a&tag=b+c"
    _, _, headers = platform.seen.requests[0]
    assert headers["authorization"] == "Bearer t0"
    assert headers["user-agent"] == "strongroom-sdk"
    assert headers["content-type"] == "application/json"
    assert headers["idempotency-key"] == "k-1" and headers["x-extra"] == "1"


def test_query_strings_are_encoded_as_httpx_encoded_them() -> None:
    params: dict[str, Any] = {
        "prefix": "a/b c&d=é",
        "max_keys": 10,
        "flag": False,
        "skip": None,
        "ids": [1, 2],
        "since": "2026-01-01T00:00:00+00:00",
    }
    clean = {k: v for k, v in params.items() if v is not None}
    assert encode_query(params) == str(httpx.QueryParams(clean))


def test_an_idle_connection_the_server_closed_is_replaced(platform: Platform) -> None:
    platform.seen.close_after_answer = True
    with platform.session() as session:
        for i in range(3):
            time.sleep(0.05)  # the server's close reaches the client before the next request
            assert session.request("GET", f"/api/v1/things/{i}").status_code == 200
    assert platform.seen.connections == 3


def test_a_post_without_idempotency_key_is_not_sent_twice(unix_platform: Platform) -> None:
    unix_platform.seen.drop = {2}  # the server closes a kept-alive connection as the POST arrives
    with unix_platform.session() as session:
        session.request("GET", "/api/v1/status")
        with pytest.raises(PlatformUnreachable, match="closed the connection"):
            session.request("POST", "/api/v1/things", json_body={"name": "x"})
        assert session.request("GET", "/api/v1/status").status_code == 200  # the session still works
    assert unix_platform.seen.paths("POST") == ["/api/v1/things"]


def test_a_post_with_idempotency_key_is_sent_once_more_on_a_fresh_connection(platform: Platform) -> None:
    platform.seen.drop = {2}
    with platform.session() as session:
        session.request("GET", "/api/v1/status")
        answer = session.request("POST", "/api/v1/things", json_body={"name": "x"}, idempotency_key="k-7")
    assert answer.json()["body"] == {"name": "x"}
    assert platform.seen.paths("POST") == ["/api/v1/things", "/api/v1/things"]
    assert platform.seen.connections == 2


def test_a_get_is_retried_once_and_only_once(unix_platform: Platform) -> None:
    unix_platform.seen.drop = {2}
    with unix_platform.session() as session:
        session.request("GET", "/api/v1/a")
        assert session.request("GET", "/api/v1/b").json()["path"] == "/api/v1/b"
        unix_platform.seen.drop = {1, 2}  # now the kept-alive and the fresh connection drop it
        with pytest.raises(PlatformUnreachable):
            session.request("GET", "/api/v1/c")
    assert unix_platform.seen.paths("GET").count("/api/v1/c") == 2


def test_eight_threads_get_their_own_answers(platform: Platform) -> None:
    failures: list[str] = []
    with platform.session() as session:

        def work(thread: int) -> None:
            try:
                _work(thread)
            except Exception as exc:  # a thread's exception would otherwise only be printed
                failures.append(repr(exc))

        def _work(thread: int) -> None:
            for i in range(30):
                path = f"/api/v1/things/{thread}-{i}"
                got = session.request(
                    "POST", path, json_body={"t": thread, "i": i}, idempotency_key=f"{thread}-{i}"
                ).json()
                if got["path"] != path or got["body"] != {"t": thread, "i": i}:
                    failures.append(f"{path}: {got}")

        threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert failures == []
    assert len(platform.seen.requests) == 240
    assert platform.seen.connections <= 8


def test_a_refreshed_token_is_used_by_the_next_request(
    unix_platform: Platform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("first\n")
    monkeypatch.setenv("STRONGROOM_TOKEN_FILE", str(token_file))
    with Session(socket=unix_platform.socket) as session:
        assert session.request("GET", "/api/v1/whoami").json()["token"] == "Bearer first"
        token_file.write_text("second\n")
        assert session.request("GET", "/api/v1/whoami").json()["token"] == "Bearer second"


def test_a_slow_answer_times_out(platform: Platform) -> None:
    with platform.session(timeout=0.3) as session:
        started = time.monotonic()
        with pytest.raises(PlatformUnreachable, match="did not answer in time"):
            session.request("POST", "/slow", json_body={}, idempotency_key="k")
        assert time.monotonic() - started < 1.2
    assert platform.seen.paths("POST") == ["/slow"]  # a timeout is never retried


def test_problem_responses_raise_the_matching_error(platform: Platform) -> None:
    with platform.session() as session:
        with pytest.raises(NotFound, match="no such bucket") as caught:
            session.request("GET", "/missing")
        assert caught.value.field == "bucket"
        with pytest.raises(StrongroomError, match="HTTP 502: bad gateway"):
            session.request("GET", "/broken")
        assert session.request("GET", "/api/v1/ok").status_code == 200
    assert platform.seen.connections == 1  # error answers keep the connection


def test_no_platform_listening_is_reported_as_unreachable(tmp_path: Path) -> None:
    gone = pytest.raises(PlatformUnreachable, match=r"platform not running at unix socket .*start it with")
    with Session(socket=tmp_path / "nothing.sock", token="t") as session, gone:
        session.request("GET", "/api/v1/status")
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    port = free.getsockname()[1]
    free.close()
    files = TlsFiles.in_dir(tmp_path)
    create_ca(files, RootKey(os.urandom(32)))
    refused = pytest.raises(PlatformUnreachable, match="Connection refused")
    with Session(url=f"https://127.0.0.1:{port}", token="t", ca=files.ca_cert) as session, refused:
        session.request("GET", "/api/v1/status")


def test_a_server_with_another_ca_is_refused(tls_platform: Platform, tmp_path: Path) -> None:
    other = TlsFiles.in_dir(tmp_path / "other")
    other.ca_cert.parent.mkdir()
    create_ca(other, RootKey(os.urandom(32)))
    untrusted = pytest.raises(PlatformUnreachable, match="CERTIFICATE_VERIFY_FAILED")
    with Session(url=tls_platform.url, token="t", ca=other.ca_cert) as session, untrusted:
        session.request("GET", "/api/v1/status")
    assert tls_platform.seen.requests == []


def test_close_closes_the_kept_alive_connections(unix_platform: Platform) -> None:
    session = unix_platform.session()
    session.request("GET", "/api/v1/status")
    idle = list(session._pool._idle)
    assert len(idle) == 1 and idle[0].sock is not None
    session.close()
    assert idle[0].sock is None


def test_a_chunked_answer_is_read_whole_and_the_connection_kept(platform: Platform) -> None:
    with platform.session() as session:
        answer = session.request("GET", "/chunked")
        assert answer.json() == {"items": ["é", "x"]} and answer.text == '{"items": ["é", "x"]}'
        assert answer.headers["Vary"] == "a, b" and "content-length" not in answer.headers
        assert session.request("GET", "/chunked").status_code == 200
    assert platform.seen.connections == 1
