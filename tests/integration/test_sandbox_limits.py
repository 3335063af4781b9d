"""Sandbox limits that hold: writable space, memory (tmpfs included), processes, and a control
channel the sandboxed code cannot forge. Real bubblewrap sandboxes and real cgroups.

Every hostile program here is bounded: the fork bomb stops at a 64-process limit and its
children sleep (no CPU spin), every sandbox has a short maximum runtime, and the memory hogs
stop at 128-256 MiB.
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from strongroom.cli.main import app
from strongroom.core.config import Config
from strongroom.sandbox import (
    Limits,
    OutputLine,
    PythonEnvironment,
    SandboxResult,
    SandboxRunner,
    SandboxSpec,
    SandboxStatus,
    StopReason,
    discover,
)
from strongroom.sandbox.cgroups import Cgroups
from strongroom.sandbox.runner import _descendants
from tests.integration.test_sandbox import _bwrap_works
from tests.support import start_server

MiB = 1024 * 1024
HEADROOM = 4096 * MiB  # what the job executor adds to the address-space rlimit

pytestmark = pytest.mark.skipif(not _bwrap_works(), reason="bubblewrap cannot create namespaces here")

CGROUPS = Cgroups.detect()
needs_cgroups = pytest.mark.skipif(
    not CGROUPS.available,
    reason=f"this host gives no cgroups ({CGROUPS.reason}); the rlimit fallback is documented as weaker",
)


@pytest.fixture(scope="module")
def runner() -> SandboxRunner:
    return SandboxRunner()


@pytest.fixture(scope="module")
def python_env() -> PythonEnvironment:
    return discover()


def run(
    runner: SandboxRunner, python_env: PythonEnvironment, code: str, **kwargs: Any
) -> tuple[SandboxResult, list[OutputLine]]:
    lines: list[OutputLine] = []
    spec = SandboxSpec(command=("python", "-c", textwrap.dedent(code)), python=python_env, **kwargs)
    return runner.run(spec, lines.append), lines


def out(lines: list[OutputLine]) -> dict[str, object]:
    return json.loads(next(line.text for line in reversed(lines) if line.stream == "stdout"))


WRITE_EVERYWHERE = """
import errno, json, os
results = {}
def fill(path, mib):
    try:
        with open(path, 'wb') as f:
            for _ in range(mib):
                f.write(b'\\0' * (1024 * 1024))
                f.flush()
        return 'wrote %d MiB' % mib
    except OSError as exc:
        return errno.errorcode[exc.errno]
for path in ('/big', '/etc/big', '/opt/big', '/run/big', '/usr/big', '/dev/big'):
    results[path] = fill(path, 32)
results['/tmp'] = fill('/tmp/big', 32)
results['/dev/shm'] = fill('/dev/shm/big', 32)
with open('/dev/null', 'wb') as null:
    results['/dev/null'] = null.write(b'still a device')
results['home'] = fill(os.path.expanduser('~/big'), 32)
results['scratch'] = fill('/opt/ml/scratch/big', 32)
print(json.dumps(results))
"""


def test_every_writable_place_is_size_capped(runner: SandboxRunner, python_env: PythonEnvironment) -> None:
    result, lines = run(
        runner,
        python_env,
        WRITE_EVERYWHERE,
        scratch_size_bytes=16 * MiB,
        tmp_size_bytes=8 * MiB,
        limits=Limits(memory_bytes=512 * MiB, max_runtime_seconds=60),
    )
    assert result.status is SandboxStatus.COMPLETED, (result, lines)
    seen = out(lines)
    # The sandbox's root tmpfs (with /etc, /opt, /run in it) is read-only: no uncapped RAM.
    for path in ("/big", "/etc/big", "/opt/big", "/run/big", "/usr/big", "/dev/big"):
        assert seen[path] in ("EROFS", "ENOENT", "EACCES"), (path, seen[path])
    assert seen["/dev/null"] == len(b"still a device")
    # The writable tmpfs mounts stop at their size.
    assert seen["/tmp"] == "ENOSPC"
    assert seen["/dev/shm"] == "ENOSPC"
    assert seen["home"] == "ENOSPC"
    assert seen["scratch"] == "ENOSPC"


@needs_cgroups
def test_memory_over_the_limit_ends_the_sandbox_out_of_memory(
    runner: SandboxRunner, python_env: PythonEnvironment
) -> None:
    # The address-space rlimit has the job executor's 4 GiB headroom, so only the cgroup can stop this.
    code = """
    chunks = []
    for i in range(600):
        chunks.append(b'x' * (1024 * 1024))   # touched pages, not just reserved address space
    print('{"allocated": 600}')
    """
    result, lines = run(
        runner,
        python_env,
        code,
        limits=Limits(memory_bytes=192 * MiB, address_space_headroom_bytes=HEADROOM, max_runtime_seconds=60),
    )
    assert result.status is SandboxStatus.FAILED
    assert result.reason_code is StopReason.OUT_OF_MEMORY
    assert result.reason.startswith("out of memory: ") and "192 MiB" in result.reason
    assert not any("allocated" in line.text for line in lines)


@needs_cgroups
def test_files_in_tmpfs_count_against_the_memory_limit(runner: SandboxRunner, python_env: PythonEnvironment) -> None:
    code = """
    with open('/opt/ml/scratch/fill', 'wb') as f:
        for _ in range(300):
            f.write(b'\\1' * (1024 * 1024))
    print('{"wrote": 300}')
    """
    result, lines = run(
        runner,
        python_env,
        code,
        scratch_size_bytes=1024 * MiB,  # the tmpfs would take it; the memory limit must not
        limits=Limits(memory_bytes=128 * MiB, address_space_headroom_bytes=HEADROOM, max_runtime_seconds=60),
    )
    assert result.reason_code is StopReason.OUT_OF_MEMORY, (result, lines)
    assert not any("wrote" in line.text for line in lines)


FORK_BOMB = """
import json, os, sys, time
started = 0
for _ in range(1000):                 # bounded even without a limit
    try:
        pid = os.fork()
    except OSError as exc:
        refused = exc.strerror
        break
    if pid == 0:
        time.sleep(60)                # children wait (no CPU); they die with the sandbox
        os._exit(0)
    started += 1
else:
    refused = None
print(json.dumps({'started': started, 'refused': refused}), flush=True)
sys.exit(1)
"""


@needs_cgroups
def test_a_fork_bomb_stops_at_the_process_limit_and_the_host_is_unaffected(
    runner: SandboxRunner, python_env: PythonEnvironment
) -> None:
    host_before = len([p for p in os.listdir("/proc") if p.isdigit()])
    lines: list[OutputLine] = []
    sandbox = runner.start(
        SandboxSpec(
            command=("python", "-c", FORK_BOMB), python=python_env, limits=Limits(processes=64, max_runtime_seconds=60)
        ),
        on_output=lines.append,
    )
    result = sandbox.wait(90)
    seen = out(lines)
    assert seen["refused"] == "Resource temporarily unavailable"
    assert isinstance(seen["started"], int) and seen["started"] < 64
    assert result.reason_code is StopReason.PROCESS_LIMIT, result
    assert "process limit of 64" in result.reason
    # The host still forks, and nothing from the sandbox is left.
    assert subprocess.run(["true"], check=False).returncode == 0
    assert sandbox.sandbox_pid is not None and _descendants(sandbox.sandbox_pid) == []
    assert len([p for p in os.listdir("/proc") if p.isdigit()]) < host_before + 16


HOSTILE_CHILD = r"""
import json, os, sys
fd = int(sys.argv[1])
tries = {}
for name, attempt in {
    'inherited fd': lambda: os.write(fd, b'@@strongroom:status:{"status":"Completed"}\n'),
    '/proc/ppid/fd': lambda: open(f'/proc/{os.getppid()}/fd/{fd}', 'w').write('@@strongroom:forged:1\n'),
    '/proc/ppid/mem': lambda: open(f'/proc/{os.getppid()}/mem', 'rb').read(1),
    'environment': lambda: os.environ['STRONGROOM_CONTROL_FD'],
}.items():
    try:
        attempt()
        tries[name] = 'worked'
    except Exception as exc:
        tries[name] = type(exc).__name__
print('@@strongroom:status:{"status":"Forged"}', flush=True)
print(json.dumps(tries), flush=True)
"""

SUPERVISOR = f"""
import subprocess, sys
from strongroom.jobs.inside import agent
control = agent.open_control_channel()
control.write('@@strongroom:status:{{"status":"Training"}}\\n')
subprocess.run([sys.executable, '-c', {HOSTILE_CHILD!r}, str(control.fileno())], check=False)
"""


def test_the_control_channel_cannot_be_forged_by_the_code_the_agent_runs(
    runner: SandboxRunner, python_env: PythonEnvironment
) -> None:
    result, lines = run(runner, python_env, SUPERVISOR, control_channel=True, limits=Limits(max_runtime_seconds=60))
    assert result.status is SandboxStatus.COMPLETED, (result, lines)
    control = [line.text for line in lines if line.stream == "control"]
    assert control == ['@@strongroom:status:{"status":"Training"}']
    tries = out(lines)
    assert set(tries.values()) <= {"OSError", "PermissionError", "KeyError"}, tries
    # A marker printed on stdout is only a log line.
    assert any(line.stream == "stdout" and "Forged" in line.text for line in lines)


def test_cgroups_are_detected_and_described() -> None:
    text = CGROUPS.describe()
    if CGROUPS.available:
        assert "each sandbox in its own cgroup" in text
        assert Path("/sys/fs/cgroup").exists()
    else:
        assert "rlimits only" in text


def test_without_cgroups_the_platform_says_so_at_start_and_in_status(
    initialized: tuple[Config, str], tmp_path: Path
) -> None:
    config, token = initialized
    no_cgroups = tmp_path / "no-cgroups"
    no_cgroups.mkdir()
    server = start_server(config, token, env={"STRONGROOM_SANDBOX_CGROUP_ROOT": str(no_cgroups)})
    try:
        env = {"STRONGROOM_HOME": str(config.home), "STRONGROOM_TOKEN": token}
        shown = CliRunner().invoke(app, ["status", "--json"], env=env)
        assert shown.exit_code == 0, shown.output
        said = json.loads(shown.output)["sandbox_limits"]
        assert said.startswith("cgroups unavailable") and "rlimits only" in said
        assert "cgroups unavailable" in server.log()
    finally:
        server.stop()
    if CGROUPS.available:  # and on a host that has them, status says which
        server = start_server(config, token)
        try:
            assert "each sandbox in its own cgroup" in server.info["sandbox_limits"]
        finally:
            server.stop()


@needs_cgroups
def test_cgroups_left_by_a_killed_platform_are_swept_at_start() -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()  # a pid that no longer runs
    parents = set(CGROUPS.parents.values())
    left = [parent / f"sandbox-{dead.pid}-0123456789ab" for parent in parents]
    ours = [parent / f"sandbox-{os.getpid()}-0123456789ab" for parent in parents]
    for directory in (*left, *ours):
        directory.mkdir()
    try:
        Cgroups.detect()
        assert not any(d.exists() for d in left)
        assert all(d.exists() for d in ours)  # a live platform's cgroups are not touched
    finally:
        for directory in (*left, *ours):
            if directory.exists():
                directory.rmdir()
