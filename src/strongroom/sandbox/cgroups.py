"""One control group per sandbox: memory (tmpfs included), process count and CPU limits that hold.

rlimits alone are weak: RLIMIT_AS counts address space rather than memory (and so needs generous
headroom), tmpfs pages count against no rlimit, and RLIMIT_NPROC does not apply to root. A cgroup
counts every page the sandbox's processes use or write to its tmpfs mounts, and every process.

Detected once at start-up (:meth:`Cgroups.detect`):

- cgroup v2 (the unified hierarchy at ``/sys/fs/cgroup`` with the memory and pids controllers):
  sandboxes go under ``/sys/fs/cgroup/strongroom/``;
- cgroup v1 (separate ``memory``, ``pids`` and ``cpu`` hierarchies, as on this project's CI host):
  sandboxes go under ``strongroom/`` below the platform's own cgroup in each hierarchy, so they
  also stay inside whatever limit the platform itself runs under;
- neither (no permission, no controllers): :attr:`Cgroups.available` is False, the platform says
  so at start and in ``strongroom status``, and sandboxes get rlimits only (docs/sandbox.md).

The sandbox's first process joins its cgroup before it execs bubblewrap (:meth:`SandboxCgroup.wrap`),
so nothing the sandbox starts runs outside it.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

ROOT = Path("/sys/fs/cgroup")
_GROUP = "strongroom"
_CPU_PERIOD_US = 100_000
# Joins every cgroup named in $STRONGROOM_CGROUP_PROCS, then becomes the sandbox's command.
_JOIN = 'for f in $STRONGROOM_CGROUP_PROCS; do echo $$ > "$f" || exit 125; done; exec "$@"'


@dataclass
class SandboxCgroup:
    """The cgroup (one directory per hierarchy) of one sandbox."""

    version: int
    dirs: dict[str, Path]  # controller ("memory", "pids", "cpu") -> directory; v2: one directory

    def wrap(self, argv: list[str]) -> tuple[list[str], dict[str, str]]:
        """The argv that joins this cgroup and then execs ``argv``, and the environment it needs."""
        procs = sorted({str(d / "cgroup.procs") for d in self.dirs.values()})
        return ["/bin/sh", "-c", _JOIN, "sandbox", *argv], {"STRONGROOM_CGROUP_PROCS": " ".join(procs)}

    def oom_kills(self) -> int:
        """How many processes the kernel killed for going over the memory limit."""
        memory = self.dirs.get("memory")
        if memory is None:
            return 0
        name = "memory.events" if self.version == 2 else "memory.oom_control"
        return _counter(memory / name, "oom_kill")

    def pids_refused(self) -> int:
        """How many forks the process limit refused."""
        pids = self.dirs.get("pids")
        return 0 if pids is None else _counter(pids / "pids.events", "max")

    def remove(self) -> None:
        """Remove the cgroup once its processes are gone (they die with the sandbox's pid 1)."""
        for directory in {*self.dirs.values()}:
            for _ in range(50):
                try:
                    directory.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:  # still busy for a moment while the kernel reaps the last processes
                    time.sleep(0.1)
            else:
                log.warning("could not remove the sandbox cgroup %s", directory)


@dataclass
class Cgroups:
    """What this host allows; build with :meth:`detect`."""

    version: int | None
    parents: dict[str, Path] = field(default_factory=dict)
    reason: str = ""

    @property
    def available(self) -> bool:
        return self.version is not None

    def describe(self) -> str:
        """One line for the start-up log and ``strongroom status``."""
        if self.version is None:
            return (
                f"cgroups unavailable ({self.reason}): sandboxes are limited by rlimits only "
                "(address space, not memory; tmpfs and process counts are not bounded for root); see docs/sandbox.md"
            )
        controllers = ", ".join(sorted(self.parents))
        return f"cgroup v{self.version} ({controllers}): each sandbox in its own cgroup"

    @classmethod
    def detect(cls, root: Path = ROOT) -> Cgroups:
        """Find a writable cgroup v2 or v1 hierarchy with the memory and pids controllers."""
        try:
            found = cls._detect_v2(root) if (root / "cgroup.controllers").is_file() else cls._detect_v1(root)
        except OSError as exc:
            return cls(None, reason=f"{type(exc).__name__}: {exc}")
        found.sweep()
        return found

    @classmethod
    def _detect_v2(cls, root: Path) -> Cgroups:
        available = (root / "cgroup.controllers").read_text().split()
        wanted = [c for c in ("memory", "pids", "cpu") if c in available]
        if not {"memory", "pids"} <= set(wanted):
            return cls(None, reason=f"cgroup v2 without the memory and pids controllers ({' '.join(available)})")
        parent = root / _GROUP
        parent.mkdir(exist_ok=True)
        enable = " ".join(f"+{c}" for c in wanted)
        (root / "cgroup.subtree_control").write_text(enable)
        (parent / "cgroup.subtree_control").write_text(enable)
        return cls(2, {c: parent for c in wanted})

    @classmethod
    def _detect_v1(cls, root: Path) -> Cgroups:
        own = _own_v1_paths()
        parents: dict[str, Path] = {}
        for controller in ("memory", "pids", "cpu"):
            mount = root / controller
            if controller not in own or not (mount / "cgroup.procs").is_file():
                continue
            parent = mount / own[controller].lstrip("/") / _GROUP
            parent.mkdir(exist_ok=True)
            parents[controller] = parent
        if not {"memory", "pids"} <= set(parents):
            return cls(None, reason="no cgroup v2 hierarchy and no writable cgroup v1 memory and pids hierarchies")
        return cls(1, parents)

    def sweep(self) -> int:
        """Remove empty sandbox cgroups left by a platform process that is gone (killed, crashed).

        Names carry the creating process's pid; a cgroup still holding processes cannot be
        removed, so a live sandbox is never touched. Returns how many were removed.
        """
        removed = 0
        for parent in {*self.parents.values()}:
            for child in parent.glob("sandbox-*"):
                owner = child.name.split("-")[1]
                if owner.isdigit() and not Path(f"/proc/{owner}").exists():
                    with contextlib.suppress(OSError):
                        child.rmdir()
                        removed += 1
        return removed

    def create(
        self, name: str, *, memory_bytes: int | None, processes: int | None, cpus: float | None
    ) -> SandboxCgroup | None:
        """A new cgroup for one sandbox with these limits (None: not limited); None when unavailable.

        Raises:
            OSError: the cgroup could not be created or limited (the sandbox must not start then).
        """
        if self.version is None:
            return None
        dirs: dict[str, Path] = {}
        try:
            for controller, parent in self.parents.items():
                directory = parent / name
                if directory not in dirs.values():
                    directory.mkdir()
                dirs[controller] = directory
            group = SandboxCgroup(self.version, dirs)
            if self.version == 2:
                _set_v2(dirs["memory"], memory_bytes, processes, cpus)
            else:
                _set_v1(dirs, memory_bytes, processes, cpus)
            return group
        except OSError:
            SandboxCgroup(self.version, dirs).remove()
            raise


def _set_v2(directory: Path, memory_bytes: int | None, processes: int | None, cpus: float | None) -> None:
    if memory_bytes is not None:
        (directory / "memory.max").write_text(str(memory_bytes))
        with contextlib.suppress(FileNotFoundError):
            (directory / "memory.swap.max").write_text("0")
    if processes is not None:
        (directory / "pids.max").write_text(str(processes))
    if cpus is not None and (directory / "cpu.max").exists():
        (directory / "cpu.max").write_text(f"{max(1000, int(cpus * _CPU_PERIOD_US))} {_CPU_PERIOD_US}")


def _set_v1(dirs: dict[str, Path], memory_bytes: int | None, processes: int | None, cpus: float | None) -> None:
    if memory_bytes is not None:
        memory = dirs["memory"]
        (memory / "memory.limit_in_bytes").write_text(str(memory_bytes))
        with contextlib.suppress(FileNotFoundError, PermissionError):  # no swap accounting: no swap limit
            (memory / "memory.memsw.limit_in_bytes").write_text(str(memory_bytes))
    if processes is not None:
        (dirs["pids"] / "pids.max").write_text(str(processes))
    if cpus is not None and "cpu" in dirs:
        (dirs["cpu"] / "cpu.cfs_period_us").write_text(str(_CPU_PERIOD_US))
        (dirs["cpu"] / "cpu.cfs_quota_us").write_text(str(max(1000, int(cpus * _CPU_PERIOD_US))))


def _own_v1_paths() -> dict[str, str]:
    """controller -> this process's cgroup path in that v1 hierarchy."""
    paths: dict[str, str] = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        for controller in controllers.split(","):
            if controller:
                paths[controller] = path
    return paths


def _counter(path: Path, name: str) -> int:
    try:
        for line in path.read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == name:
                return int(value)
    except (OSError, ValueError):
        pass
    return 0
