"""What a sandbox is made of: mounts, limits, the Python environment, and the spec that joins them.

Everything here is a frozen value checked when it is built, so a bad spec fails before any
process starts, with an :class:`~strongroom.core.errors.InvalidInput` naming the field.
"""

from __future__ import annotations

import enum
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from strongroom.core.errors import InvalidInput

SANDBOX_UID = 1000
SANDBOX_GID = 1000
SANDBOX_USER = "sandbox"
DEFAULT_HOME = "/home/sandbox"
DEFAULT_SCRATCH = "/opt/ml/scratch"
DEFAULT_SOCKET = "/run/strongroom/api.sock"
SANDBOX_TMP = "/tmp"  # noqa: S108 -- the sandbox's own private tmpfs, not the host's /tmp
SANDBOX_SHM = "/dev/shm"  # noqa: S108 - a path inside the sandbox, its own tmpfs

# Paths a mount may not replace or sit inside: they hold the sandbox's own system view.
_RESERVED_EXACT = ("/", SANDBOX_TMP, "/home", "/opt", "/opt/ml", "/run")
_RESERVED_TREES = ("/usr", "/etc", "/proc", "/dev", "/bin", "/sbin", "/lib", "/lib64", "/sys")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_HOSTNAME = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
MiB = 1024 * 1024
GiB = 1024 * MiB


def check_sandbox_path(value: str, field_name: str) -> str:
    """Return ``value`` normalised if it is an absolute path without ``..`` segments, else raise."""
    if not isinstance(value, str) or not value.startswith("/") or "\0" in value:
        raise InvalidInput(f"{field_name} must be an absolute path, got {value!r}", field=field_name)
    if ".." in value.split("/"):
        raise InvalidInput(f"{field_name} must not contain '..' segments, got {value!r}", field=field_name)
    return posixpath.normpath(value)


def _covers(parent: str, child: str) -> bool:
    return child == parent or child.startswith(parent.rstrip("/") + "/")


@dataclass(frozen=True)
class Mount:
    """A host directory or file bind-mounted into the sandbox.

    ``source`` is a host path; ``target`` the path inside the sandbox; ``writable`` chooses
    ``--bind`` over ``--ro-bind``.
    """

    source: str
    target: str
    writable: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "source", check_sandbox_path(self.source, "mounts.source"))
        target = check_sandbox_path(self.target, "mounts.target")
        reserved = next(
            (r for r in _RESERVED_TREES if _covers(r, target)), target if target in _RESERVED_EXACT else None
        )
        if reserved is not None:
            raise InvalidInput(
                f"mount target {target!r} would cover the sandbox's own {reserved}; choose a path such as "
                "/opt/ml/input/data/<channel>",
                field="mounts.target",
            )
        object.__setattr__(self, "target", target)


@dataclass(frozen=True)
class Limits:
    """Resource limits. ``None`` means "not limited" for that resource.

    * ``memory_bytes``: memory of the whole sandbox, tmpfs writes included (its cgroup's memory
      limit); also the address-space rlimit (RLIMIT_AS) of every process, plus
      ``address_space_headroom_bytes`` (address space is not memory: runtimes reserve far more
      than they use). Without cgroups the rlimit is the only memory limit (docs/sandbox.md).
    * ``cpu_quota``: CPUs' worth of time per second for the whole sandbox (cgroup CPU quota).
    * ``cpu_seconds``: CPU time rlimit (RLIMIT_CPU) of every process (SIGXCPU, then SIGKILL).
    * ``open_files``: RLIMIT_NOFILE. ``processes``: processes and threads in the whole sandbox
      (its cgroup's pids limit), and RLIMIT_NPROC (which the kernel does not apply when the
      platform itself runs as root; see docs/sandbox.md).
    * ``file_size_bytes``: largest file a process may write (RLIMIT_FSIZE, SIGXFSZ).
    * ``cpus``: CPU numbers the sandbox may run on (affinity); ``nice``: scheduling niceness.
    * ``max_runtime_seconds``: wall clock, enforced by the runner: SIGTERM, then after
      ``stop_grace_seconds`` SIGKILL of every process in the sandbox.
    """

    memory_bytes: int | None = 4 * GiB
    address_space_headroom_bytes: int = 0
    cpu_quota: float | None = None
    cpu_seconds: int | None = None
    open_files: int = 1024
    processes: int | None = 512
    file_size_bytes: int | None = 16 * GiB
    cpus: tuple[int, ...] | None = None
    nice: int = 0
    max_runtime_seconds: float | None = 86400.0
    stop_grace_seconds: float = 30.0

    def __post_init__(self) -> None:
        positive = {
            "memory_bytes": self.memory_bytes,
            "cpu_seconds": self.cpu_seconds,
            "processes": self.processes,
            "file_size_bytes": self.file_size_bytes,
            "max_runtime_seconds": self.max_runtime_seconds,
        }
        for name, value in positive.items():
            if value is not None and value <= 0:
                raise InvalidInput(f"limits.{name} must be positive or unset, got {value!r}", field=f"limits.{name}")
        if self.open_files < 16:
            raise InvalidInput("limits.open_files must be at least 16", field="limits.open_files")
        if self.memory_bytes is not None and self.memory_bytes < 64 * MiB:
            raise InvalidInput("limits.memory_bytes must be at least 64 MiB", field="limits.memory_bytes")
        if self.address_space_headroom_bytes < 0 or (self.cpu_quota is not None and self.cpu_quota <= 0):
            raise InvalidInput("limits.cpu_quota and the address-space headroom must be positive", field="limits")
        if self.stop_grace_seconds < 0:
            raise InvalidInput("limits.stop_grace_seconds must not be negative", field="limits.stop_grace_seconds")
        if not 0 <= self.nice <= 19:
            raise InvalidInput("limits.nice must be between 0 and 19", field="limits.nice")
        if self.cpus is not None:
            if not self.cpus or any(not isinstance(c, int) or c < 0 for c in self.cpus):
                raise InvalidInput("limits.cpus must be a non-empty list of CPU numbers", field="limits.cpus")
            object.__setattr__(self, "cpus", tuple(sorted(set(self.cpus))))


@dataclass(frozen=True)
class PythonEnvironment:
    """A Python environment made visible read-only inside the sandbox at the same paths.

    ``executable`` is the interpreter to run (a venv's ``bin/python``); ``paths`` the host
    directories it needs (the venv, the base interpreter's prefix, editable source trees).
    Build one with :func:`strongroom.sandbox.environment.discover`.
    """

    executable: str
    paths: tuple[str, ...]
    bin_dir: str

    def __post_init__(self) -> None:
        check_sandbox_path(self.executable, "python.executable")
        for path in self.paths:
            check_sandbox_path(path, "python.paths")


@dataclass(frozen=True)
class SandboxSpec:
    """Everything needed to start one sandbox.

    ``command`` runs as ``uid``/``gid`` (non-root) with an environment made only of ``env``
    plus a few defaults (PATH, HOME, LANG, TMPDIR). ``scratch_size_bytes`` sizes the tmpfs at
    ``scratch_path``; ``tmp_size_bytes`` the tmpfs at ``/tmp``. ``socket`` is a host Unix
    socket bind-mounted at ``socket_target``: the sandbox's only way out.
    """

    command: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    workdir: str = DEFAULT_HOME
    hostname: str = "sandbox"
    uid: int = SANDBOX_UID
    gid: int = SANDBOX_GID
    mounts: tuple[Mount, ...] = ()
    home: str | None = None
    home_target: str = DEFAULT_HOME
    scratch_path: str = DEFAULT_SCRATCH
    scratch_size_bytes: int = 1 * GiB
    tmp_size_bytes: int = 256 * MiB
    socket: str | None = None
    socket_target: str = DEFAULT_SOCKET
    python: PythonEnvironment | None = None
    limits: Limits = field(default_factory=Limits)
    # Share the host's network instead of an empty namespace. Only for teams a PlatformAdmin
    # exempted from the network-isolation guardrail; detective controls watch such jobs.
    host_network: bool = False
    # A pipe at $STRONGROOM_CONTROL_FD whose lines reach the runner as OutputLine("control", ...).
    # It is not inherited by anything the command starts unless the command passes it on, so a
    # supervisor (the job agent) can report status lines the programs it runs cannot forge.
    control_channel: bool = False

    def __post_init__(self) -> None:
        if not self.command or not all(isinstance(a, str) and "\0" not in a for a in self.command):
            raise InvalidInput("command must be a non-empty list of strings", field="command")
        object.__setattr__(self, "command", tuple(self.command))
        object.__setattr__(self, "mounts", tuple(self.mounts))
        for name, value in self.env.items():
            if not _ENV_NAME.fullmatch(name) or "\0" in value:
                raise InvalidInput(f"environment variable {name!r} has an invalid name or value", field="env")
        object.__setattr__(self, "env", dict(self.env))
        if self.uid == 0 or self.gid == 0:
            raise InvalidInput("a sandbox never runs as root: choose a uid and gid other than 0", field="uid")
        if not _HOSTNAME.fullmatch(self.hostname):
            raise InvalidInput(f"hostname {self.hostname!r} is not a valid host name", field="hostname")
        for name in ("workdir", "home_target", "scratch_path", "socket_target"):
            object.__setattr__(self, name, check_sandbox_path(getattr(self, name), name))
        if self.home is not None:
            object.__setattr__(self, "home", check_sandbox_path(self.home, "home"))
        if self.socket is not None:
            object.__setattr__(self, "socket", check_sandbox_path(self.socket, "socket"))
        for name in ("scratch_size_bytes", "tmp_size_bytes"):
            if getattr(self, name) < MiB:
                raise InvalidInput(f"{name} must be at least 1 MiB", field=name)
        targets = [m.target for m in self.mounts] + [self.scratch_path, self.home_target]
        if len(set(targets)) != len(targets):
            raise InvalidInput(f"two mounts share a target path: {sorted(targets)}", field="mounts.target")


class SandboxStatus(enum.StrEnum):
    """How a sandbox ended."""

    COMPLETED = "Completed"
    FAILED = "Failed"
    STOPPED = "Stopped"
    INTERRUPTED = "Interrupted"


class StopReason(enum.StrEnum):
    """Stable codes for why a sandbox ended; the result's ``reason`` says it in words."""

    COMPLETED = "Completed"
    NON_ZERO_EXIT = "NonZeroExit"
    KILLED_BY_SIGNAL = "KilledBySignal"
    OUT_OF_MEMORY = "OutOfMemory"
    PROCESS_LIMIT = "ProcessLimitExceeded"
    CPU_TIME_LIMIT = "CpuTimeLimitExceeded"
    FILE_SIZE_LIMIT = "FileSizeLimitExceeded"
    MAX_RUNTIME = "MaxRuntimeExceeded"
    STOP_REQUESTED = "StopRequested"
    INTERRUPTED = "Interrupted"
    SETUP_FAILED = "SandboxSetupFailed"


@dataclass(frozen=True)
class OutputLine:
    """One line: ``stream`` is ``"stdout"``, ``"stderr"``, ``"platform"`` (the runner's own notices), or
    ``"control"`` (what the command wrote to its control channel, see ``SandboxSpec.control_channel``)."""

    stream: str
    text: str


@dataclass(frozen=True)
class SandboxResult:
    """The outcome of a sandbox run. ``exit_code`` is the command's (128 + n when killed by signal n)."""

    status: SandboxStatus
    reason_code: StopReason
    reason: str
    exit_code: int | None
    started_at: datetime
    ended_at: datetime

    @property
    def duration_seconds(self) -> float:
        return (self.ended_at - self.started_at).total_seconds()
