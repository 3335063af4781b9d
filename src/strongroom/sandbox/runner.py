"""Start a sandbox, stream its output, enforce its wall clock, stop or interrupt it, and say why it ended.

Process tree (host view)::

    platform --(Popen, new session)--> prlimit/taskset/nice --exec--> bwrap (monitor)
        --clone, new namespaces--> bwrap as pid 1 of the sandbox (reaper) --> the command

Signals go to the processes *inside* the sandbox (every descendant of the sandbox's pid 1,
found through /proc), because the command runs in its own session where a process-group
signal to bwrap would not reach it. SIGKILL goes to the sandbox's pid 1: when a pid
namespace's init dies, the kernel kills every process left in it, so nothing survives.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import os
import secrets
import signal
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Any

from strongroom.core.errors import ConfigurationError
from strongroom.sandbox.builder import BWRAP, build_command
from strongroom.sandbox.cgroups import Cgroups, SandboxCgroup
from strongroom.sandbox.environment import HostLayout
from strongroom.sandbox.models import (
    OutputLine,
    SandboxResult,
    SandboxSpec,
    SandboxStatus,
    StopReason,
)

log = logging.getLogger(__name__)

OutputCallback = Callable[[OutputLine], None]
MAX_LINE_BYTES = 64 * 1024
_MEMORY_MARKERS = ("MemoryError", "std::bad_alloc", "Cannot allocate memory", "out of memory", "OutOfMemory")
# Python ignores SIGXFSZ, so a write past RLIMIT_FSIZE fails with EFBIG instead of killing it.
_FILE_SIZE_MARKERS = ("File too large", "EFBIG")


def _now() -> datetime:
    return datetime.now(UTC)


def _descendants(root: int) -> list[int]:
    """Host pids of every process below ``root`` (children first found, then theirs)."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(b")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found: list[int] = []
    stack = [root]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def _catches(pid: int, sig: int) -> bool:
    """Whether ``pid`` has a handler installed for ``sig`` (the SigCgt mask in /proc)."""
    try:
        with open(f"/proc/{pid}/status", "rb") as handle:
            for line in handle:
                if line.startswith(b"SigCgt:"):
                    return bool(int(line.split()[1], 16) >> (sig - 1) & 1)
    except (OSError, ValueError):
        pass
    return False


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


@dataclass(frozen=True)
class _Ending:
    status: SandboxStatus
    code: StopReason
    reason: str


class SandboxProcess:
    """A running sandbox. Use :meth:`wait` for its :class:`SandboxResult`; :meth:`stop` or
    :meth:`interrupt` to end it early. Output lines go to the callback given at start, one call
    at a time (the callback need not be thread-safe)."""

    def __init__(
        self,
        spec: SandboxSpec,
        process: subprocess.Popen[bytes],
        status_read: int,
        on_output: OutputCallback | None,
        cgroup: SandboxCgroup | None = None,
        control_read: int | None = None,
    ) -> None:
        self.spec = spec
        self._cgroup = cgroup
        self._oom_kills = 0
        self._pids_refused = 0
        self._process = process
        self._on_output = on_output
        self._emit_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._ending: _Ending | None = None
        self._status: dict[str, Any] = {}
        self._child_ready = threading.Event()
        self._stderr_tail: collections.deque[str] = collections.deque(maxlen=50)
        self._memory_marker = False
        self._file_size_marker = False
        self._result: SandboxResult | None = None
        self.started_at = _now()
        assert process.stdout is not None and process.stderr is not None
        self._readers = [
            threading.Thread(target=self._read_output, args=(process.stdout, "stdout"), daemon=True),
            threading.Thread(target=self._read_output, args=(process.stderr, "stderr"), daemon=True),
            threading.Thread(target=self._read_status, args=(status_read,), daemon=True),
        ]
        if control_read is not None:
            control = os.fdopen(control_read, "rb")
            self._readers.append(threading.Thread(target=self._read_output, args=(control, "control"), daemon=True))
        for reader in self._readers:
            reader.start()
        self._supervisor = threading.Thread(target=self._supervise, daemon=True)
        self._supervisor.start()

    # -- public -----------------------------------------------------------------------------
    @property
    def pid(self) -> int:
        """Host pid of the bwrap monitor process."""
        return self._process.pid

    @property
    def sandbox_pid(self) -> int | None:
        """Host pid of the sandbox's pid 1, once bwrap has reported it."""
        pid = self._status.get("child-pid")
        return int(pid) if pid is not None else None

    def running(self) -> bool:
        return self._process.poll() is None

    def stop(self, reason: str = "stopped on request") -> None:
        """Stop the sandbox: SIGTERM to its processes, SIGKILL after the grace period. Status: Stopped."""
        self._terminate(_Ending(SandboxStatus.STOPPED, StopReason.STOP_REQUESTED, reason), notice=None)

    def interrupt(self, notice: str = "capacity reclaimed (spot interruption)") -> None:
        """Interrupt the sandbox as a spot preemption would: a notice line, SIGTERM, then SIGKILL after the
        grace period. Status: Interrupted. A checkpointing program saves its state on SIGTERM."""
        grace = self.spec.limits.stop_grace_seconds
        self._terminate(
            _Ending(SandboxStatus.INTERRUPTED, StopReason.INTERRUPTED, f"interrupted: {notice}"),
            notice=f"interruption notice: {notice}; SIGTERM now, SIGKILL in {grace:g} s",
        )

    def wait(self, timeout: float | None = None) -> SandboxResult:
        """Block until the sandbox has ended and every output line was delivered.

        Raises:
            TimeoutError: ``timeout`` seconds passed first (the sandbox keeps running).
        """
        self._supervisor.join(timeout)
        if self._supervisor.is_alive() or self._result is None:
            raise TimeoutError(f"sandbox still running after {timeout} s")
        return self._result

    def __enter__(self) -> SandboxProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.running():
            self.stop("the platform closed the sandbox")
        self.wait()

    # -- internals ---------------------------------------------------------------------------
    def _emit(self, stream: str, text: str) -> None:
        if self._on_output is None:
            return
        with self._emit_lock:
            try:
                self._on_output(OutputLine(stream, text))
            except Exception:  # a broken log shipper must not kill the sandbox's output pipe
                log.exception("sandbox output callback failed")

    def _read_output(self, pipe: IO[bytes], stream: str) -> None:
        with pipe:
            for raw in iter(lambda: pipe.readline(MAX_LINE_BYTES), b""):
                text = raw.decode("utf-8", "replace").rstrip("\n")
                if stream == "control":
                    self._emit(stream, text)
                    continue
                if stream == "stderr":
                    self._stderr_tail.append(text)
                if any(marker in text for marker in _MEMORY_MARKERS):
                    self._memory_marker = True
                if any(marker in text for marker in _FILE_SIZE_MARKERS):
                    self._file_size_marker = True
                self._emit(stream, text)

    def _read_status(self, fd: int) -> None:
        decoder = json.JSONDecoder()
        buffer = ""
        try:
            for chunk in iter(lambda: os.read(fd, 4096), b""):
                buffer += chunk.decode("utf-8", "replace")
                while True:
                    buffer = buffer.lstrip()
                    try:
                        doc, end = decoder.raw_decode(buffer)
                    except ValueError:
                        break
                    buffer = buffer[end:]
                    if isinstance(doc, dict):
                        self._status.update(doc)
                        if "child-pid" in doc:
                            self._child_ready.set()
        finally:
            os.close(fd)
            self._child_ready.set()

    def _signal_inside(self, sig: int, skip: frozenset[int] = frozenset()) -> set[int]:
        """Send ``sig`` to every process in the sandbox but ``skip``; returns those that catch it."""
        pid = self.sandbox_pid
        if pid is None:
            # Not set up yet: signal bwrap itself; --die-with-parent takes the rest down.
            self._kill_group(sig)
            return set()
        # The command itself and everything it started: a supervisor (like the job agent) may
        # be between children when asked to stop.
        caught = set()
        for child in [pid, *_descendants(pid)]:
            if child in skip:
                continue
            if _catches(child, sig):
                caught.add(child)
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, sig)
        return caught

    def _kill_group(self, sig: int) -> None:
        if self._process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._process.pid, sig)

    def _kill_all(self) -> None:
        pid = self.sandbox_pid
        if pid is not None and self._process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)  # pid 1 of the namespace: the kernel kills all the rest
        self._kill_group(signal.SIGKILL)

    def _terminate(self, ending: _Ending, notice: str | None) -> None:
        with self._state_lock:
            if self._ending is not None or self._process.poll() is not None:
                return
            self._ending = ending
        if notice:
            self._emit("platform", notice)
        self._child_ready.wait(5)
        handled = frozenset(self._signal_inside(signal.SIGTERM))
        # A SIGTERM that lands while bubblewrap is still setting the sandbox up (signals blocked
        # until the command execs) is lost; say it again a little later, still within the grace,
        # but not to a process that had its handler in place: it got the first one, and a second
        # could land while it exits, after Python has put the default action back.
        grace = self.spec.limits.stop_grace_seconds
        for delay in (1.0, 3.0):
            if delay < grace:
                repeat = threading.Timer(delay, self._signal_inside_if_running, args=(signal.SIGTERM, handled))
                repeat.daemon = True
                repeat.start()
        timer = threading.Timer(grace, self._kill_all)
        timer.daemon = True
        timer.start()

    def _signal_inside_if_running(self, sig: int, skip: frozenset[int] = frozenset()) -> None:
        if self._process.poll() is None:
            self._signal_inside(sig, skip)

    def _supervise(self) -> None:
        limit = self.spec.limits.max_runtime_seconds
        try:
            self._process.wait(limit)
        except subprocess.TimeoutExpired:
            self._terminate(
                _Ending(
                    SandboxStatus.STOPPED,
                    StopReason.MAX_RUNTIME,
                    f"stopped: the maximum runtime of {limit:g} s was reached (limits.max_runtime_seconds)",
                ),
                notice=f"maximum runtime of {limit:g} s reached; stopping",
            )
            self._process.wait()
        for reader in self._readers:
            reader.join(30)
        if self._cgroup is not None:
            self._oom_kills, self._pids_refused = self._cgroup.oom_kills(), self._cgroup.pids_refused()
            self._cgroup.remove()
        self._result = self._classify(self._process.returncode)

    def _classify(self, returncode: int) -> SandboxResult:
        ended = _now()
        exit_code: int | None = self._status.get("exit-code", returncode if self.sandbox_pid else None)
        last_error = next((line for line in reversed(self._stderr_tail) if line.strip()), "")

        def result(status: SandboxStatus, code: StopReason, reason: str) -> SandboxResult:
            return SandboxResult(status, code, reason, exit_code, self.started_at, ended)

        if self._ending is not None:
            return result(self._ending.status, self._ending.code, f"{self._ending.reason} (exit code {exit_code})")
        if self.sandbox_pid is None or ("exit-code" not in self._status and last_error.startswith("bwrap:")):
            return result(SandboxStatus.FAILED, StopReason.SETUP_FAILED, f"the sandbox could not start: {last_error}")
        if exit_code == 0:
            return result(SandboxStatus.COMPLETED, StopReason.COMPLETED, "completed")
        assert exit_code is not None
        limits = self.spec.limits
        if self._oom_kills and limits.memory_bytes is not None:
            mib = limits.memory_bytes // (1024 * 1024)
            return result(
                SandboxStatus.FAILED,
                StopReason.OUT_OF_MEMORY,
                f"out of memory: the sandbox used more than its memory limit of {mib} MiB (limits.memory_bytes; "
                f"files written to its tmpfs count too) and the kernel ended {self._oom_kills} process(es); "
                f"exit code {exit_code}",
            )
        if self._memory_marker and limits.memory_bytes is not None:
            mib = limits.memory_bytes // (1024 * 1024)
            return result(
                SandboxStatus.FAILED,
                StopReason.OUT_OF_MEMORY,
                f"out of memory: the program needed more than the memory limit of {mib} MiB "
                f"(limits.memory_bytes); exit code {exit_code}. Last error: {last_error}",
            )
        if (exit_code == 128 + signal.SIGXFSZ or self._file_size_marker) and limits.file_size_bytes is not None:
            return result(
                SandboxStatus.FAILED,
                StopReason.FILE_SIZE_LIMIT,
                f"a file grew past the limit of {limits.file_size_bytes} bytes (limits.file_size_bytes); "
                f"exit code {exit_code}",
            )
        if self._pids_refused and limits.processes is not None:
            return result(
                SandboxStatus.FAILED,
                StopReason.PROCESS_LIMIT,
                f"the process limit of {limits.processes} (limits.processes) was reached: {self._pids_refused} "
                f"process starts were refused; exit code {exit_code}",
            )
        if exit_code > 128:
            number = exit_code - 128
            if number == signal.SIGXCPU or (number == signal.SIGKILL and limits.cpu_seconds is not None):
                return result(
                    SandboxStatus.FAILED,
                    StopReason.CPU_TIME_LIMIT,
                    f"the CPU time limit of {limits.cpu_seconds} s was reached (limits.cpu_seconds)",
                )
            return result(
                SandboxStatus.FAILED, StopReason.KILLED_BY_SIGNAL, f"the program was killed by {_signal_name(number)}"
            )
        detail = f"; last error line: {last_error}" if last_error else ""
        return result(
            SandboxStatus.FAILED, StopReason.NON_ZERO_EXIT, f"the program exited with code {exit_code}{detail}"
        )


class SandboxRunner:
    """Starts sandboxes. Build one per platform and share it; it holds no per-sandbox state.

    Args:
        layout: the host's system layout (detected when omitted).
        cgroups: where sandboxes' cgroups go (detected when omitted; ``Cgroups(None)`` for rlimits only).
    """

    def __init__(self, layout: HostLayout | None = None, cgroups: Cgroups | None = None) -> None:
        self.layout = layout or HostLayout.detect()
        self.cgroups = cgroups if cgroups is not None else Cgroups.detect()

    @staticmethod
    def preflight() -> str:
        """Check that bubblewrap is installed and supports what the builder uses; returns its version.

        Raises:
            ConfigurationError: bwrap is missing or too old.
        """
        try:
            version = subprocess.run([BWRAP, "--version"], capture_output=True, check=True, timeout=10).stdout
            usage = subprocess.run([BWRAP, "--help"], capture_output=True, check=True, timeout=10).stdout
        except (OSError, subprocess.SubprocessError) as exc:
            raise ConfigurationError(
                f"bubblewrap is not usable at {BWRAP}: {exc} (apt-get install bubblewrap)"
            ) from exc
        for option in (b"--size", b"--disable-userns", b"--json-status-fd", b"--ro-bind-data"):
            if option not in usage:
                raise ConfigurationError(f"{BWRAP} lacks {option.decode()}: bubblewrap 0.8 or newer is needed")
        return version.decode().strip()

    def start(self, spec: SandboxSpec, on_output: OutputCallback | None = None) -> SandboxProcess:
        """Start ``spec``'s command in a new sandbox and return at once."""
        data_fds: list[int] = []

        def data_fd(content: bytes) -> int:
            read, write = os.pipe()
            try:
                os.write(write, content)  # small files: they fit in the pipe buffer
            finally:
                os.close(write)
            data_fds.append(read)
            return read

        status_read, status_write = os.pipe()
        control_read, control_write = os.pipe() if spec.control_channel else (None, None)
        inherited = [status_write, *([control_write] if control_write is not None else [])]
        cgroup = None
        try:
            argv = build_command(
                spec, data_fd=data_fd, layout=self.layout, status_fd=status_write, control_fd=control_write
            )
            env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
            limits = spec.limits
            cgroup = self.cgroups.create(
                f"sandbox-{os.getpid()}-{secrets.token_hex(6)}",
                memory_bytes=limits.memory_bytes,
                processes=limits.processes,
                cpus=limits.cpu_quota,
            )
            if cgroup is not None:
                argv, extra = cgroup.wrap(argv)
                env.update(extra)
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=(*inherited, *data_fds),
                start_new_session=True,
                env=env,
            )
        except BaseException:
            os.close(status_read)
            if control_read is not None:
                os.close(control_read)
            if cgroup is not None:
                cgroup.remove()
            raise
        finally:
            for fd in (*inherited, *data_fds):
                os.close(fd)
        return SandboxProcess(spec, process, status_read, on_output, cgroup, control_read)

    def run(self, spec: SandboxSpec, on_output: OutputCallback | None = None) -> SandboxResult:
        """Start ``spec`` and wait for its result."""
        return self.start(spec, on_output).wait()
