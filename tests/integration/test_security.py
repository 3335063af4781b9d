"""Secrets never at rest in plaintext; the audit chain holds under concurrency; state survives kill -9."""

from __future__ import annotations

import signal
import socket
import ssl
import threading
import time
from pathlib import Path

import pytest

from strongroom.core.config import Config
from strongroom.core.errors import InvalidInput
from strongroom.identity.tokens import parse_api_token
from tests.support import RunningServer, start_server


def _all_bytes(root: Path) -> list[tuple[Path, bytes]]:
    return [(p, p.read_bytes()) for p in root.rglob("*") if p.is_file()]


def _dump_postgres(url: str) -> bytes:
    """Every text value in the platform's PostgreSQL schema (for the byte scan)."""
    from sqlalchemy import create_engine, inspect, text
    from sqlalchemy.pool import NullPool

    engine = create_engine(url, poolclass=NullPool)
    chunks: list[bytes] = []
    try:
        with engine.connect() as conn:
            for table in inspect(conn).get_table_names():
                query = text(f'SELECT * FROM "{table}"')  # noqa: S608 - names come from the inspector
                for row in conn.execute(query):
                    chunks.append(repr(tuple(row)).encode())
    finally:
        engine.dispose()
    return b"\n".join(chunks)


def test_no_token_in_plaintext_in_database_logs_or_audit(server: RunningServer) -> None:
    s = server.session()
    s.teams.create("risk")
    s.users.create("alice")
    s.teams.add_member("risk", "alice", "DataScientist")
    issued = s.tokens.create("laptop", user="alice")
    alice = server.session(issued.secret)
    session_token = alice.assume_role("DataScientist", "risk")
    server.sessions.append(session_token)
    session_token.whoami()
    secrets = [server.admin_token, issued.secret, session_token._token]
    # a token pasted into a stored field is refused, not stored
    with pytest.raises(InvalidInput) as pasted:
        s.users.create("bob", display_name=f"my token {issued.secret}")
    assert pasted.value.field == "display_name"
    server.stop()
    haystack = [data for _, data in _all_bytes(server.config.home)]
    if server.config.database_url:
        haystack.append(_dump_postgres(server.config.database_url))
    for secret in secrets:
        needle = secret.encode()
        # an API token's secret part on its own (it may itself contain "_"); session tokens whole
        secret_part = parse_api_token(secret)[1].encode() if secret.startswith("sr_tok_") else needle
        for blob in haystack:
            assert needle not in blob and secret_part not in blob


def test_private_keys_are_not_on_disk_in_the_clear(initialized: tuple[Config, str]) -> None:
    config, _ = initialized
    for path, data in _all_bytes(config.home):
        assert b"BEGIN PRIVATE KEY" not in data, path
        assert b"BEGIN EC PRIVATE KEY" not in data, path
    assert (config.home / "root.key").stat().st_mode & 0o077 == 0


def test_concurrent_clients_keep_one_linear_chain(server: RunningServer) -> None:
    """8 clients x 500 requests (reads and writes, allowed and denied) leave a valid chain."""
    admin = server.session()
    admin.teams.create("risk")
    admin.users.create("alice")
    admin.teams.add_member("risk", "alice", "DataScientist")
    alice_token = admin.tokens.create("laptop", user="alice").secret
    before = admin.audit.verify().head_seq
    errors: list[BaseException] = []

    def client(index: int) -> None:
        try:
            session = server.session(alice_token if index % 2 else server.admin_token)
            for i in range(500):
                if index % 2:
                    if i % 5 == 0:
                        try:
                            session.teams.create(f"nope-{index}-{i}")  # denied, audited
                        except Exception as exc:
                            assert getattr(exc, "status", 0) == 403
                    else:
                        session.teams.describe("risk")
                elif i % 10 == 0:
                    session.users.create(f"u-{index}-{i}")
                else:
                    session.whoami()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]
    report = admin.audit.verify()
    assert report.ok, report.problem
    assert report.head_seq - before >= 8 * 500


def test_kill_9_then_restart_keeps_all_state(server: RunningServer) -> None:
    s = server.session()
    s.teams.create("risk")
    s.users.create("alice")
    s.teams.add_member("risk", "alice", "DataScientist")
    token = s.tokens.create("laptop", user="alice").secret
    head = s.audit.verify().head_seq
    assert server.stop(signal.SIGKILL) == -signal.SIGKILL
    restarted = start_server(server.config, server.admin_token)
    try:
        s2 = restarted.session()
        assert [t.name for t in s2.teams.list()] == ["risk"]
        assert restarted.session(token).whoami().user == "alice"
        report = s2.audit.verify()
        assert report.ok, report.problem
        assert report.head_seq > head
    finally:
        restarted.stop()


def test_graceful_shutdown_on_sigterm_signs_a_final_checkpoint(server: RunningServer) -> None:
    s = server.session()
    s.teams.create("risk")
    assert server.stop(signal.SIGTERM) == 0
    assert not (server.config.run_dir / "server.json").exists()
    from strongroom.platform import Platform

    platform = Platform(server.config)
    try:
        head, _ = platform.audit_log.head()
        last = platform.audit_log.last_checkpoint()
        assert last is not None and last.seq == head
    finally:
        platform.close()


def test_sigterm_does_not_wait_for_a_client_holding_an_idle_keep_alive_connection(server: RunningServer) -> None:
    context = ssl.create_default_context(cafile=str(server.ca))
    with context.wrap_socket(
        socket.create_connection(("127.0.0.1", server.port), timeout=10), server_hostname="localhost"
    ) as sock:
        sock.sendall(b"GET /api/v1/status HTTP/1.1\r\nHost: localhost\r\n\r\n")
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += sock.recv(65536)
        assert b"connection: close" not in answer.lower()  # kept alive, and the client reads no more
        started = time.monotonic()
        assert server.stop(signal.SIGTERM) == 0
        stopped = time.monotonic() - started
    assert stopped < 5, f"the server took {stopped:.1f} s to stop"


@pytest.mark.parametrize("count", [3])
def test_revoked_and_expired_tokens_stop_working(server: RunningServer, count: int) -> None:
    from strongroom.core.errors import Unauthenticated

    s = server.session()
    s.users.create("alice")
    issued = [s.tokens.create(f"t{i}", user="alice") for i in range(count)]
    s.tokens.revoke(issued[0].token.id)
    with pytest.raises(Unauthenticated, match="revoked"):
        server.session(issued[0].secret).whoami()
    assert server.session(issued[1].secret).whoami().user == "alice"
    s.users.disable("alice")
    with pytest.raises(Unauthenticated, match="disabled"):
        server.session(issued[2].secret).whoami()
