"""Helpers for tests: a real server process, PostgreSQL schemas, in-process contexts."""

from __future__ import annotations

import http.server
import json
import signal
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from strongroom.core import launcher, pki
from strongroom.core.config import Config
from strongroom.core.context import Grant, Principal, RequestContext
from strongroom.core.launcher import ServerProcess
from strongroom.sdk.session import Session


@dataclass
class PostgresSchema:
    """A throwaway schema in the test database; ``url`` points the platform at it."""

    base_url: str
    name: str

    @property
    def url(self) -> str:
        separator = "&" if "?" in self.base_url else "?"
        return f"{self.base_url}{separator}options={quote(f'-csearch_path={self.name}')}"

    def _execute(self, statement: str) -> None:
        engine = create_engine(self.base_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.execute(text(statement))
        finally:
            engine.dispose()

    def create(self) -> None:
        self._execute(f'CREATE SCHEMA "{self.name}"')

    def drop(self) -> None:
        self._execute(f'DROP SCHEMA IF EXISTS "{self.name}" CASCADE')


@dataclass
class RunningServer(ServerProcess):
    """A `strongroom up` child process plus the admin token and the SDK sessions a test opened."""

    admin_token: str = ""
    sessions: list[Session] = field(default_factory=list)

    def session(self, token: str | None = None) -> Session:
        session = Session(url=self.url, token=token or self.admin_token, ca=self.ca)
        self.sessions.append(session)
        return session

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        for session in self.sessions:
            session.close()
        self.sessions.clear()
        return super().stop(sig, timeout)


def start_server(
    config: Config,
    admin_token: str,
    timeout: float = 60.0,
    env: dict[str, str] | None = None,
    args: tuple[str, ...] = (),
) -> RunningServer:
    """Start `strongroom up` for ``config`` (``env``: extra STRONGROOM_* settings; ``args``: options
    of `up`) and wait until it serves."""
    started = launcher.start(config, timeout=timeout, env=env, args=args)
    server = RunningServer(started.config, started.process, started.info, started.log_path, admin_token)
    SERVERS.append(server)
    return server


SERVERS: list[RunningServer] = []
"""Every server the tests started, so that a failing test's report can show their logs."""


def server_log_tails(lines: int = 80) -> list[tuple[str, str]]:
    """``(title, last lines)`` of the log of every server still running."""
    tails = []
    for server in SERVERS:
        if server.process.poll() is not None:
            continue
        try:
            text = server.log_path.read_text(errors="replace")
        except OSError:
            continue
        tails.append((f"strongroom server log {server.log_path}", "\n".join(text.splitlines()[-lines:])))
    return tails


def context_for(user: str, *grants: Grant, token_kind: str = "api") -> RequestContext:
    """An in-process request context (unit tests that call services directly)."""
    return RequestContext(principal=Principal(user=user, token_kind=token_kind, grants=grants))  # type: ignore[arg-type]


def endpoint_workers_of(server_pid: int) -> list[int]:
    """Host pids of this server's endpoint worker processes (checked by ancestry, not by name alone)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if b"strongroom.serving.inside.worker" not in cmdline or b"bwrap" in cmdline.split(b"\0")[0]:
            continue
        pid = int(entry.name)
        while pid > 1:
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                break
            pid = int(next(line.split()[1] for line in status.splitlines() if line.startswith("PPid:")))
            if pid == server_pid:
                found.append(int(entry.name))
                break
    return found


@dataclass
class AlertReceiver:
    """An HTTPS receiver on localhost (a certificate of the platform CA): the JSON bodies POSTed to ``url``."""

    url: str
    received: list[dict[str, object]] = field(default_factory=list)


@contextmanager
def alert_receiver(config: Config, folder: Path, path: str = "/alerts") -> Iterator[AlertReceiver]:
    from strongroom.core.rootkey import load_root_key

    root = load_root_key(config.home)
    cert, key = folder / "hook.pem", folder / "hook.key"
    pki.issue_leaf(
        pki.TlsFiles.in_dir(config.tls_dir),
        root,
        common_name="hook",
        dns_names=["localhost"],
        ip_addresses=["127.0.0.1"],
        cert_path=cert,
        key_path=key,
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key, password=pki.key_password(root, key.name))
    received: list[dict[str, object]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["content-length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield AlertReceiver(f"https://localhost:{server.server_address[1]}{path}", received)
    finally:
        server.shutdown()
        server.server_close()
