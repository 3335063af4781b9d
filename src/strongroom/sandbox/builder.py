"""Turn a :class:`SandboxSpec` into the argv that starts it: ``prlimit`` -> ``taskset``/``nice`` -> ``bwrap``.

The builder is pure: it starts nothing and reads nothing from the host except through the
``layout`` it is given. Small generated files (``/etc/passwd``, ``/etc/group``, ``/etc/hosts``)
are handed to bwrap as file descriptors (``--ro-bind-data FD``); the caller supplies
``data_fd``, which turns bytes into a readable descriptor (the runner uses pipes).
"""

from __future__ import annotations

from collections.abc import Callable

from strongroom.sandbox.environment import HostLayout
from strongroom.sandbox.models import SANDBOX_SHM, SANDBOX_TMP, SANDBOX_USER, SandboxSpec

BWRAP = "/usr/bin/bwrap"
PRLIMIT = "/usr/bin/prlimit"
TASKSET = "/usr/bin/taskset"
NICE = "/usr/bin/nice"

# /etc files a program commonly needs and that hold nothing secret. Missing ones are skipped.
ETC_FILES = (
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/localtime",
    "/etc/timezone",
    "/etc/nsswitch.conf",
    "/etc/ssl/certs",
    "/etc/ca-certificates",
    "/etc/alternatives",
    "/etc/mime.types",
    "/etc/os-release",
    "/etc/fonts",  # matplotlib's text rendering reads fontconfig's configuration
)

DataFd = Callable[[bytes], int]


def sandbox_env(spec: SandboxSpec) -> dict[str, str]:
    """The complete environment of the sandboxed command: defaults, then ``spec.env`` on top."""
    path = "/usr/local/bin:/usr/bin:/bin"
    if spec.python is not None:
        path = f"{spec.python.bin_dir}:{path}"
    env = {
        "PATH": path,
        "HOME": spec.home_target,
        "USER": SANDBOX_USER,
        "LOGNAME": SANDBOX_USER,
        "LANG": "C.UTF-8",
        "TMPDIR": SANDBOX_TMP,
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
    }
    if spec.socket is not None:
        env["STRONGROOM_SOCKET"] = spec.socket_target
    env.update(spec.env)
    return env


def _etc_files(spec: SandboxSpec) -> dict[str, bytes]:
    passwd = (
        f"root:x:0:0:root:/root:/usr/sbin/nologin\n"
        f"{SANDBOX_USER}:x:{spec.uid}:{spec.gid}:{SANDBOX_USER}:{spec.home_target}:/bin/sh\n"
        "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
    )
    group = f"root:x:0:\n{SANDBOX_USER}:x:{spec.gid}:\nnogroup:x:65534:\n"
    hosts = f"127.0.0.1\tlocalhost {spec.hostname}\n::1\tlocalhost ip6-localhost\n"
    return {"/etc/passwd": passwd.encode(), "/etc/group": group.encode(), "/etc/hosts": hosts.encode()}


def bwrap_args(
    spec: SandboxSpec,
    *,
    data_fd: DataFd,
    layout: HostLayout,
    status_fd: int | None = None,
    control_fd: int | None = None,
) -> list[str]:
    """The ``bwrap`` part of the argv (starting with the bwrap binary).

    Args:
        spec: the sandbox to build.
        data_fd: turns file contents into a descriptor bwrap reads them from.
        layout: the host's /bin, /lib... shape, recreated inside.
        status_fd: when set, bwrap writes JSON status (child pid, exit code) to it.
        control_fd: an inherited descriptor the command may write control lines to; its number
            is given to the command as ``$STRONGROOM_CONTROL_FD``.
    """
    args = [
        BWRAP,
        "--unshare-user",
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        *(() if spec.host_network else ("--unshare-net",)),
        "--unshare-cgroup-try",
        "--disable-userns",
        "--uid",
        str(spec.uid),
        "--gid",
        str(spec.gid),
        "--hostname",
        spec.hostname,
        "--die-with-parent",
        "--new-session",
        "--cap-drop",
        "ALL",
    ]
    if status_fd is not None:
        args += ["--json-status-fd", str(status_fd)]
    # The system, read-only.
    args += ["--ro-bind", "/usr", "/usr"]
    for target, link in layout.symlinks:
        args += ["--symlink", target, link]
    for directory in layout.directories:
        args += ["--ro-bind", directory, directory]
    for path in ETC_FILES:
        args += ["--ro-bind-try", path, path]
    for target, content in _etc_files(spec).items():
        args += ["--perms", "0444", "--ro-bind-data", str(data_fd(content)), target]
    # /dev is a tmpfs too: give /dev/shm (POSIX shared memory, semaphores) its own capped tmpfs,
    # then make the rest of /dev read-only (device nodes stay usable).
    args += ["--proc", "/proc", "--dev", "/dev"]
    args += ["--perms", "1777", "--size", str(spec.tmp_size_bytes), "--tmpfs", SANDBOX_SHM, "--remount-ro", "/dev"]
    args += ["--perms", "1777", "--size", str(spec.tmp_size_bytes), "--tmpfs", SANDBOX_TMP]
    # The Python environment, read-only at its own paths.
    if spec.python is not None:
        for path in spec.python.paths:
            args += ["--ro-bind", path, path]
    # Scratch: a size-limited tmpfs that lives and dies with the sandbox's mount namespace.
    args += ["--perms", "0700", "--size", str(spec.scratch_size_bytes), "--tmpfs", spec.scratch_path]
    if spec.home is not None:
        args += ["--bind", spec.home, spec.home_target]
    else:
        args += ["--perms", "0700", "--size", str(spec.tmp_size_bytes), "--tmpfs", spec.home_target]
    for mount in spec.mounts:
        args += ["--bind" if mount.writable else "--ro-bind", mount.source, mount.target]
    if spec.socket is not None:
        args += ["--bind", spec.socket, spec.socket_target]
    # The root (and /etc, /opt, /run, which live in it) is a tmpfs with no size cap: make it
    # read-only once everything is mounted, so the only writable places are the size-capped
    # tmpfs mounts (scratch, /tmp, /dev/shm, home) and the explicit writable binds.
    args += ["--remount-ro", "/"]
    # Environment: cleared, then set explicitly.
    args += ["--clearenv"]
    env = sandbox_env(spec)
    if control_fd is not None:
        env["STRONGROOM_CONTROL_FD"] = str(control_fd)
    for name, value in sorted(env.items()):
        args += ["--setenv", name, value]
    args += ["--chdir", spec.workdir, "--"]
    return [*args, *spec.command]


def limit_args(spec: SandboxSpec) -> list[str]:
    """The ``prlimit``/``taskset``/``nice`` prefix that applies rlimits and CPU placement before bwrap runs.

    rlimits are inherited across exec and fork, so they bind bwrap and everything it starts.
    """
    limits = spec.limits
    args = [PRLIMIT, "--core=0", f"--nofile={limits.open_files}"]
    if limits.memory_bytes is not None:
        args.append(f"--as={limits.memory_bytes + limits.address_space_headroom_bytes}")
    if limits.cpu_seconds is not None:
        # Soft limit sends SIGXCPU; the hard limit (a little later) SIGKILL.
        args.append(f"--cpu={limits.cpu_seconds}:{limits.cpu_seconds + 5}")
    if limits.processes is not None:
        args.append(f"--nproc={limits.processes}")
    if limits.file_size_bytes is not None:
        args.append(f"--fsize={limits.file_size_bytes}")
    args.append("--")
    if limits.cpus is not None:
        args += [TASKSET, "--cpu-list", ",".join(str(c) for c in limits.cpus)]
    if limits.nice:
        args += [NICE, "-n", str(limits.nice)]
    return args


def build_command(
    spec: SandboxSpec,
    *,
    data_fd: DataFd,
    layout: HostLayout,
    status_fd: int | None = None,
    control_fd: int | None = None,
) -> list[str]:
    """The full argv: limits prefix, then bwrap with the sandbox, then the command."""
    return limit_args(spec) + bwrap_args(
        spec, data_fd=data_fd, layout=layout, status_fd=status_fd, control_fd=control_fd
    )
