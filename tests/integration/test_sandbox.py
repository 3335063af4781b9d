"""Real bubblewrap sandboxes: what a program inside can and cannot do, and how the runner ends it.

Network safety: every network attempt below runs *inside* the sandbox, and the script first
checks that loopback is its only interface; if not, it exits before any connect.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from strongroom.sandbox import (
    Limits,
    Mount,
    OutputLine,
    SandboxResult,
    SandboxRunner,
    SandboxSpec,
    SandboxStatus,
    StopReason,
    discover,
)
from strongroom.sandbox.runner import _descendants

MiB = 1024 * 1024


def _alive(pid: int, settle: float = 5.0) -> bool:
    """Whether ``pid`` still runs; a process being torn down by the kernel gets ``settle`` seconds."""
    deadline = time.monotonic() + settle
    while True:
        try:
            state = Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0]
        except OSError:
            return False
        if state in (b"Z", b"X"):
            return False
        if time.monotonic() > deadline:
            return True
        time.sleep(0.05)


def _bwrap_works() -> bool:
    try:
        SandboxRunner.preflight()
        return (
            subprocess.run(["/usr/bin/bwrap", "--unshare-all", "--ro-bind", "/", "/", "true"], check=False).returncode
            == 0
        )
    except Exception:
        return False


pytestmark = pytest.mark.skipif(
    not _bwrap_works(),
    reason="bubblewrap is missing or cannot create namespaces here "
    "(make setup installs it; it needs root or unprivileged user namespaces)",
)


@pytest.fixture(scope="module")
def runner() -> SandboxRunner:
    return SandboxRunner()


@pytest.fixture(scope="module")
def python_env():  # type: ignore[no-untyped-def]
    return discover()


def run_python(
    runner: SandboxRunner, python_env: object, code: str, **kwargs: object
) -> tuple[SandboxResult, list[OutputLine]]:
    lines: list[OutputLine] = []
    spec = SandboxSpec(command=("python", "-c", code), python=python_env, **kwargs)  # type: ignore[arg-type]
    return runner.run(spec, lines.append), lines


def stdout(lines: list[OutputLine]) -> str:
    return "\n".join(line.text for line in lines if line.stream == "stdout")


@pytest.fixture
def host_listener() -> Iterator[int]:
    """A TCP server on the host's loopback: the sandbox must not reach it."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
                conn.close()
            except TimeoutError:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        server.close()


NETWORK_PROBE = """
import json, socket, sys, urllib.request
interfaces = [l.split(':')[0].strip() for l in open('/proc/net/dev').read().splitlines()[2:]]
if interfaces != ['lo']:
    print(json.dumps({'unsafe': interfaces})); sys.exit(3)   # never try a connect with a real interface
results = {'interfaces': interfaces}
def attempt(name, fn):
    try:
        fn(); results[name] = 'connected'
    except Exception as exc:
        results[name] = type(exc).__name__ + ': ' + str(exc)
attempt('tcp_1.1.1.1', lambda: socket.create_connection(('1.1.1.1', 443), timeout=3).close())
attempt('https', lambda: urllib.request.urlopen('https://pypi.org/simple/', timeout=3).read())
attempt('postgres', lambda: socket.create_connection(('127.0.0.1', 5432), timeout=3).close())
attempt('host_listener', lambda: socket.create_connection(('127.0.0.1', PORT), timeout=3).close())
print(json.dumps(results))
"""


def test_no_network_not_even_the_hosts_loopback(runner: SandboxRunner, python_env: object, host_listener: int) -> None:
    # The host's listener really is reachable from the host: the probe below is not vacuous.
    socket.create_connection(("127.0.0.1", host_listener), timeout=3).close()
    result, lines = run_python(runner, python_env, NETWORK_PROBE.replace("PORT", str(host_listener)))
    assert result.status is SandboxStatus.COMPLETED, (result, lines)
    probe = json.loads(stdout(lines))
    assert probe["interfaces"] == ["lo"]
    for name in ("tcp_1.1.1.1", "https", "postgres", "host_listener"):
        assert probe[name] != "connected", name
    assert "unreachable" in probe["tcp_1.1.1.1"].lower()
    assert "refused" in probe["postgres"].lower()


def test_non_root_read_only_system_private_tmp(
    runner: SandboxRunner, python_env: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STRONGROOM_HOST_SECRET", "must-not-leak")
    host_marker = Path("/tmp") / f"sr-host-{secrets.token_hex(4)}"
    host_marker.write_text("host")
    try:
        code = f"""
import json, os
def writable(path):
    try:
        with open(path, 'w') as f: f.write('x')
        return True
    except OSError as exc:
        return exc.strerror
print(json.dumps({{
    'uid': os.getuid(), 'gid': os.getgid(), 'euid': os.geteuid(),
    'usr': writable('/usr/evil'), 'etc': writable('/etc/passwd'), 'venv': writable({python_env.executable!r} + '-x'),
    'home': writable(os.path.expanduser('~/notes.txt')), 'tmp': writable('/tmp/x'),
    'host_tmp_visible': os.path.exists({str(host_marker)!r}), 'root_visible': os.path.exists('/root/.bashrc'),
    'env_leak': 'STRONGROOM_HOST_SECRET' in os.environ,
    'cap_eff': open('/proc/self/status').read().split('CapEff:')[1].split()[0],
}}))
"""
        result, lines = run_python(runner, python_env, code)
    finally:
        host_marker.unlink()
    assert result.status is SandboxStatus.COMPLETED, (result, lines)
    seen = json.loads(stdout(lines))
    assert seen["uid"] != 0 and seen["euid"] != 0 and seen["gid"] != 0
    assert seen["cap_eff"] == "0000000000000000"
    assert seen["usr"] is not True and seen["etc"] is not True and seen["venv"] is not True
    assert seen["home"] is True and seen["tmp"] is True
    assert not seen["host_tmp_visible"] and not seen["root_visible"] and not seen["env_leak"]


def _host_files_containing(marker: bytes, since: float) -> list[str]:
    found = []
    for top in ("/tmp", "/var/tmp", "/dev/shm"):
        for dirpath, _, files in os.walk(top):
            for name in files:
                path = os.path.join(dirpath, name)
                try:
                    stat = os.lstat(path)
                    if not os.path.isfile(path) or stat.st_mtime < since or stat.st_size > 256 * MiB:
                        continue
                    with open(path, "rb") as handle:
                        if marker in handle.read():
                            found.append(path)
                except OSError:
                    continue
    return found


def test_scratch_is_size_limited_tmpfs_and_leaves_nothing_on_the_host(
    runner: SandboxRunner, python_env: object
) -> None:
    since = time.time() - 1
    marker = f"SCRATCH-{secrets.token_hex(16)}"
    code = f"""
import json, os
marker = {marker!r}.encode()
with open('/opt/ml/scratch/data.bin', 'wb') as f:
    f.write(marker * 1000)
with open('/tmp/copy.bin', 'wb') as f:
    f.write(marker)
fs = os.statvfs('/opt/ml/scratch')
try:
    with open('/opt/ml/scratch/big.bin', 'wb') as f:
        for _ in range(32):
            f.write(b'\\0' * (1024 * 1024))
    overflow = 'wrote 32 MiB'
except OSError as exc:
    overflow = exc.strerror
print(json.dumps({{'size': fs.f_blocks * fs.f_frsize, 'overflow': overflow,
                   'read_back': open('/opt/ml/scratch/data.bin', 'rb').read(len(marker)) == marker}}))
"""
    result, lines = run_python(runner, python_env, code, scratch_size_bytes=16 * MiB)
    assert result.status is SandboxStatus.COMPLETED, (result, lines)
    seen = json.loads(stdout(lines))
    assert seen["size"] == 16 * MiB
    assert seen["read_back"] is True
    assert seen["overflow"] == "No space left on device"
    assert _host_files_containing(marker.encode(), since) == []


def test_bind_mounts_and_the_api_socket(runner: SandboxRunner, python_env: object, tmp_path: Path) -> None:
    inputs, outputs = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    outputs.mkdir()
    (inputs / "rows.csv").write_text("1,2,3\n")
    sock_path = tmp_path / "api.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(sock_path))
    server.listen(1)
    received: list[bytes] = []

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            received.append(conn.recv(100))
            conn.sendall(b"pong")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    code = """
import os, socket
rows = open('/opt/ml/input/data/train/rows.csv').read()
try:
    open('/opt/ml/input/data/train/new.csv', 'w')
    input_writable = True
except OSError:
    input_writable = False
open('/opt/ml/output/result.txt', 'w').write('sum=' + str(sum(map(int, rows.split(',')))))
client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
client.connect(os.environ['STRONGROOM_SOCKET'])
client.sendall(b'ping')
print(client.recv(100).decode(), input_writable)
"""
    try:
        result, lines = run_python(
            runner,
            python_env,
            code,
            mounts=(
                Mount(str(inputs), "/opt/ml/input/data/train"),
                Mount(str(outputs), "/opt/ml/output", writable=True),
            ),
            socket=str(sock_path),
        )
        thread.join(10)
    finally:
        server.close()
    assert result.status is SandboxStatus.COMPLETED, (result, lines)
    assert stdout(lines) == "pong False"
    assert received == [b"ping"]
    assert (outputs / "result.txt").read_text() == "sum=6"


def test_max_runtime_stops_every_process(runner: SandboxRunner, python_env: object) -> None:
    code = """
import subprocess, time
child = subprocess.Popen(['sleep', '600'])
print('child', child.pid, flush=True)
time.sleep(600)
"""
    lines: list[OutputLine] = []
    spec = SandboxSpec(
        command=("python", "-c", code), python=python_env, limits=Limits(max_runtime_seconds=1, stop_grace_seconds=1)
    )  # type: ignore[arg-type]
    process = runner.start(spec, lines.append)
    result = process.wait(60)
    assert result.status is SandboxStatus.STOPPED
    assert result.reason_code is StopReason.MAX_RUNTIME
    assert "maximum runtime of 1 s" in result.reason
    assert any(line.stream == "platform" and "maximum runtime" in line.text for line in lines)
    assert process.sandbox_pid is not None
    assert not _alive(process.sandbox_pid)  # gone, or a zombie waiting for the host's init to reap it
    assert [pid for pid in _descendants(process.sandbox_pid) if _alive(pid)] == []


def test_interruption_sends_sigterm_with_a_notice(runner: SandboxRunner, python_env: object) -> None:
    code = """
import signal, sys, time
def on_term(*_):
    print('saving checkpoint', flush=True)
    sys.exit(75)
signal.signal(signal.SIGTERM, on_term)
print('ready', flush=True)
time.sleep(600)
"""
    ready = threading.Event()
    lines: list[OutputLine] = []

    def collect(line: OutputLine) -> None:
        lines.append(line)
        if line.text == "ready":
            ready.set()

    spec = SandboxSpec(command=("python", "-c", code), python=python_env, limits=Limits(stop_grace_seconds=20))  # type: ignore[arg-type]
    process = runner.start(spec, collect)
    assert ready.wait(60)
    process.interrupt("spot capacity reclaimed")
    result = process.wait(60)
    assert result.status is SandboxStatus.INTERRUPTED
    assert result.exit_code == 75
    texts = [line.text for line in lines]
    assert texts.index("saving checkpoint") > next(i for i, t in enumerate(texts) if "interruption notice" in t)


def test_memory_limit_kills_a_hog_with_a_clear_reason(runner: SandboxRunner, python_env: object) -> None:
    result, lines = run_python(
        runner,
        python_env,
        "hog = bytearray(1024 * 1024 * 1024)\nprint('allocated')",
        limits=Limits(memory_bytes=256 * MiB),
    )
    assert result.status is SandboxStatus.FAILED
    assert result.reason_code is StopReason.OUT_OF_MEMORY
    assert "memory limit of 256 MiB" in result.reason
    assert "allocated" not in stdout(lines)


def test_file_size_limit(runner: SandboxRunner, python_env: object) -> None:
    code = "open('/opt/ml/scratch/f', 'wb').write(b'x' * (4 * 1024 * 1024))"
    result, _ = run_python(runner, python_env, code, limits=Limits(file_size_bytes=MiB))
    assert result.reason_code is StopReason.FILE_SIZE_LIMIT


def test_failures_say_why(runner: SandboxRunner, python_env: object) -> None:
    result, _ = run_python(runner, python_env, "import sys\nprint('bad input row 7', file=sys.stderr)\nsys.exit(2)")
    assert (result.status, result.reason_code, result.exit_code) == (SandboxStatus.FAILED, StopReason.NON_ZERO_EXIT, 2)
    assert "bad input row 7" in result.reason
    missing = runner.run(SandboxSpec(command=("no-such-program",)))
    assert missing.reason_code is StopReason.SETUP_FAILED
    assert "no-such-program" in missing.reason
