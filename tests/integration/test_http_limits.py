"""HTTP limits on every listener: header size and count, header deadline, body idle deadline.

Loopback only, bounded in time and count. The server runs with a 2 s header deadline and body
idle deadline (``STRONGROOM_HTTP_*``) so the deadlines are observed quickly.
"""

from __future__ import annotations

import json
import socket
import ssl
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from strongroom.core.config import Config
from tests.support import RunningServer, start_server

DEADLINE = 2.0
MiB = 1024 * 1024


@pytest.fixture
def limited(initialized: tuple[Config, str], request: pytest.FixtureRequest) -> Iterator[RunningServer]:
    config, token = initialized
    deadline = getattr(request, "param", DEADLINE)
    env = {
        "STRONGROOM_HTTP_HEADER_TIMEOUT_SECONDS": str(deadline),
        "STRONGROOM_HTTP_BODY_IDLE_TIMEOUT_SECONDS": str(DEADLINE),
    }
    running = start_server(config, token, env=env)
    try:
        yield running
    finally:
        running.stop()


def _tls(server: RunningServer) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(server.ca))


def _rss_peak_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def _answer(sock: socket.socket) -> bytes:
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except (ConnectionResetError, ssl.SSLError, TimeoutError):
        pass
    return data


def _connect(server: RunningServer, timeout: float = 10) -> socket.socket:
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=timeout)
    return _tls(server).wrap_socket(raw, server_hostname="localhost")


def test_64_mib_of_headers_is_refused_at_once_with_flat_memory(limited: RunningServer) -> None:
    pid = limited.process.pid
    before = _rss_peak_kib(pid)
    started = time.monotonic()
    sent = 0
    with _connect(limited) as sock:
        sock.sendall(b"GET /api/v1/status HTTP/1.1\r\nHost: localhost\r\nX-Pad: ")
        try:
            chunk = b"a" * MiB
            for _ in range(64):
                sock.sendall(chunk)
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, TimeoutError):
            pass
        elapsed = time.monotonic() - started
    assert elapsed < DEADLINE, f"the server kept reading headers for {elapsed:.1f} s"
    assert sent < 16 * MiB, f"the server accepted {sent} bytes of one header before closing"
    growth = _rss_peak_kib(pid) - before
    assert growth < 16 * 1024, f"server peak RSS grew by {growth} KiB"


@pytest.mark.parametrize(
    ("head", "detail"),
    [
        (b"X-Pad: " + b"a" * 70_000 + b"\r\n", b"request head over 65536 bytes"),
        (b"".join(b"X-H%d: v\r\n" % i for i in range(150)), b"more than 100 headers"),
    ],
    ids=["size", "count"],
)
def test_oversized_heads_get_431_before_authentication(limited: RunningServer, head: bytes, detail: bytes) -> None:
    with _connect(limited) as sock:
        sock.sendall(b"GET /api/v1/teams HTTP/1.1\r\nHost: localhost\r\n" + head + b"\r\n")
        answer = _answer(sock)
    # 431, not the 401 the application would give a request without a token: refused before auth
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert detail in answer


@pytest.mark.parametrize(("count", "status"), [(100, b"401"), (101, b"431")])
def test_the_header_count_limit_is_exact(limited: RunningServer, count: int, status: bytes) -> None:
    extra = b"".join(b"X-H%d: v\r\n" % i for i in range(count - 1))  # plus Host
    with _connect(limited) as sock:
        sock.sendall(b"GET /api/v1/teams HTTP/1.1\r\nHost: localhost\r\n" + extra + b"\r\n")
        answer = _answer_head(sock)
    assert answer.startswith(b"HTTP/1.1 " + status), answer[:100]


def _answer_head(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_the_unix_socket_listener_has_the_same_limits(limited: RunningServer) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(limited.socket)
        sock.sendall(b"GET /api/v1/status HTTP/1.1\r\nHost: x\r\n" + b"X-Pad: " + b"a" * 70_000 + b"\r\n\r\n")
        assert _answer(sock).startswith(b"HTTP/1.1 431 ")
        started = time.monotonic()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(limited.socket)
        sock.sendall(b"GET /api/v1/status HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        answer = _answer(sock)
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert DEADLINE - 0.5 < time.monotonic() - started < DEADLINE + 2


def test_a_stalled_request_body_is_cut_off(limited: RunningServer) -> None:
    with _connect(limited) as sock:
        sock.sendall(b"PUT /api/v1/buckets/b/objects/k HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000\r\n\r\nabc")
        started = time.monotonic()
        _answer(sock)  # ends when the server closes (after the app's 401, or at the body deadline)
        assert time.monotonic() - started < DEADLINE + 3


def _latencies(url: str, ca: Path, token: str, seconds: float) -> list[float]:
    out = []
    with httpx.Client(
        verify=ssl.create_default_context(cafile=str(ca)), headers={"Authorization": f"Bearer {token}"}
    ) as client:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            started = time.perf_counter()
            client.get(f"{url}/api/v1/status").raise_for_status()
            out.append(time.perf_counter() - started)
    return out


def _p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98]


# The attacker runs in its own process, so that its 500 sockets do not compete for this
# process's interpreter with the client whose latency is measured.
_SLOWLORIS = r"""
import asyncio, json, ssl, sys, time

port, ca, count = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
context = ssl.create_default_context(cafile=ca)
ready, closed = [], []

async def one(gate):
    async with gate:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context, server_hostname="localhost")
    writer.write(b"GET /api/v1/status HTTP/1.1\r\nHost: localhost\r\n")
    await writer.drain()
    ready.append(1)
    if len(ready) == count:
        print("connected", time.monotonic(), flush=True)
    try:
        for _ in range(30):  # one header byte a second; the server must close first
            await asyncio.sleep(1)
            if reader.at_eof():
                break
            writer.write(b"X")
            await writer.drain()
        await asyncio.wait_for(reader.read(), 5)
    except (ConnectionError, ssl.SSLError, asyncio.TimeoutError):
        pass
    closed.append(time.monotonic())
    writer.close()

async def main():
    gate = asyncio.Semaphore(50)  # pace the handshakes
    await asyncio.gather(*(one(gate) for _ in range(count)))

asyncio.run(main())
print(json.dumps(closed), flush=True)
"""


SLOW_DEADLINE = 6.0  # long enough to sample another client's latency while all 500 are held


@pytest.mark.timeout(180)
@pytest.mark.parametrize("limited", [SLOW_DEADLINE], indirect=True)
def test_500_slowloris_sockets_are_closed_at_the_deadline_and_others_are_served(limited: RunningServer) -> None:
    url, ca, token = limited.url, limited.ca, limited.admin_token
    _latencies(url, ca, token, 1.0)  # warm up
    idle = _latencies(url, ca, token, 5.0)

    # A few sockets that never even start TLS count against the same deadline.
    bare = [socket.create_connection(("127.0.0.1", limited.port), timeout=10) for _ in range(20)]
    command = [sys.executable, "-c", _SLOWLORIS, str(limited.port), str(ca), "500"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as attack:
        assert attack.stdout is not None
        line = attack.stdout.readline()
        assert line.startswith("connected"), "could not open 500 connections"
        opened = float(line.split()[1])
        loaded = _latencies(url, ca, token, SLOW_DEADLINE - 1.0)  # while all 500 are held open
        closed_at = json.loads(attack.stdout.readline())
        attack.wait(30)
    assert len(closed_at) == 500
    latest = max(closed_at) - opened
    assert latest < SLOW_DEADLINE + 3, f"the last slowloris socket was closed {latest:.1f} s after all were open"
    for sock in bare:
        assert _answer(sock) == b""  # closed by the server: the handshake deadline
        sock.close()

    idle_p99, loaded_p99 = _p99(idle), _p99(loaded)
    print(
        f"http-limits: 500 slowloris all closed {latest:.1f} s after all were open (deadline {SLOW_DEADLINE:g} s); "
        f"other client p99 idle={idle_p99 * 1000:.1f} ms, with 500 held={loaded_p99 * 1000:.1f} ms"
    )
    # Slowloris starving the server shows as seconds of latency or timeouts. The 20 ms beside the 2x
    # is the scheduler: under `make test` another test worker shares the two cores with the attacker
    # process and this client (one suite run measured 7.9 ms idle, 15.8 ms held; alone, the held p99
    # is at or under the idle one).
    assert loaded_p99 <= 2 * idle_p99 + 0.020, (idle_p99, loaded_p99)


@pytest.mark.timeout(120)
def test_with_two_api_processes_the_same_limits_hold(initialized: tuple[Config, str]) -> None:
    """``up --workers 2`` accepts its HTTPS connections itself (spreading them over the processes):
    the handshake deadline and the head limits must hold there as they do with one process."""
    config, token = initialized
    env = {"STRONGROOM_HTTP_HEADER_TIMEOUT_SECONDS": str(DEADLINE)}
    two = start_server(config, token, env=env, args=("--workers", "2"))
    try:
        silent = [socket.create_connection(("127.0.0.1", two.port), timeout=10) for _ in range(4)]
        opened = time.monotonic()
        with _connect(two) as sock:
            sock.sendall(b"GET /api/v1/teams HTTP/1.1\r\nHost: localhost\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n")
            assert _answer(sock).startswith(b"HTTP/1.1 431 ")
        for sock in silent:
            assert _answer(sock) == b""  # closed by the server, having never started TLS
            sock.close()
        assert time.monotonic() - opened < DEADLINE + 3
        answer = httpx.get(f"{two.url}/api/v1/teams", headers={"authorization": f"Bearer {token}"}, verify=_tls(two))
        assert answer.status_code == 200
    finally:
        assert two.stop() == 0, two.log()
