"""The bwrap argv builder and spec validation: no process is started here."""

from __future__ import annotations

import pytest

from strongroom.core.errors import InvalidInput
from strongroom.sandbox import HostLayout, Limits, Mount, PythonEnvironment, SandboxSpec
from strongroom.sandbox.builder import build_command, limit_args, sandbox_env

PYTHON = PythonEnvironment(
    executable="/opt/venv/bin/python", paths=("/opt/pyenv/3.11", "/opt/venv"), bin_dir="/opt/venv/bin"
)


class FakeFds:
    """Stands in for the runner's pipes: records what each descriptor would carry."""

    def __init__(self) -> None:
        self.files: dict[int, bytes] = {}

    def __call__(self, content: bytes) -> int:
        fd = 100 + len(self.files)
        self.files[fd] = content
        return fd


def build(spec: SandboxSpec, fds: FakeFds | None = None) -> list[str]:
    return build_command(spec, data_fd=fds or FakeFds(), layout=HostLayout.merged_usr(), status_fd=7)


def pairs(argv: list[str], option: str) -> list[tuple[str, str]]:
    return [(argv[i + 1], argv[i + 2]) for i, arg in enumerate(argv) if arg == option]


def test_isolation_flags_are_always_present() -> None:
    argv = build(SandboxSpec(command=("true",)))
    bwrap = argv[argv.index("/usr/bin/bwrap") :]
    for flag in (
        "--unshare-net",
        "--unshare-user",
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--disable-userns",
        "--die-with-parent",
        "--new-session",
        "--clearenv",
    ):
        assert flag in bwrap, flag
    assert bwrap[bwrap.index("--uid") + 1] == "1000"
    assert bwrap[bwrap.index("--gid") + 1] == "1000"
    assert bwrap[bwrap.index("--json-status-fd") + 1] == "7"
    assert tuple(bwrap[i + 1] for i, a in enumerate(bwrap) if a == "--proc") == ("/proc",)
    assert bwrap[-2:] == ["--", "true"]


def test_system_is_read_only_and_shaped_like_the_host() -> None:
    argv = build(SandboxSpec(command=("true",)))
    assert ("/usr", "/usr") in pairs(argv, "--ro-bind")
    assert ("usr/bin", "/bin") in pairs(argv, "--symlink")
    assert not [p for p in pairs(argv, "--bind") if p[1] in ("/usr", "/etc", "/")]
    # Generated identity files come through descriptors, not host paths.
    fds = FakeFds()
    argv = build(SandboxSpec(command=("true",)), fds)
    passwd_fd = next(int(fd) for fd, target in pairs(argv, "--ro-bind-data") if target == "/etc/passwd")
    assert b"sandbox:x:1000:1000" in fds.files[passwd_fd]


def test_scratch_and_tmp_are_size_limited_tmpfs() -> None:
    argv = build(SandboxSpec(command=("true",), scratch_size_bytes=64 * 1024 * 1024, tmp_size_bytes=8 * 1024 * 1024))
    tmpfs = [(argv[i - 1], argv[i + 1]) for i, a in enumerate(argv) if a == "--tmpfs"]
    assert (str(64 * 1024 * 1024), "/opt/ml/scratch") in tmpfs
    assert (str(8 * 1024 * 1024), "/tmp") in tmpfs
    assert all(argv[argv.index("--tmpfs", i) - 2] == "--size" for i, a in enumerate(argv) if a == "--tmpfs")


def test_mounts_socket_and_python_environment() -> None:
    spec = SandboxSpec(
        command=("python", "-c", "pass"),
        mounts=(Mount("/srv/in", "/opt/ml/input/data/train"), Mount("/srv/out", "/opt/ml/output", writable=True)),
        home="/srv/home/alice",
        socket="/srv/run/api.sock",
        python=PYTHON,
    )
    argv = build(spec)
    assert ("/srv/in", "/opt/ml/input/data/train") in pairs(argv, "--ro-bind")
    assert ("/srv/out", "/opt/ml/output") in pairs(argv, "--bind")
    assert ("/srv/home/alice", "/home/sandbox") in pairs(argv, "--bind")
    assert ("/srv/run/api.sock", "/run/strongroom/api.sock") in pairs(argv, "--bind")
    assert ("/opt/pyenv/3.11", "/opt/pyenv/3.11") in pairs(argv, "--ro-bind")
    assert ("/opt/venv", "/opt/venv") in pairs(argv, "--ro-bind")
    env = dict(pairs(argv, "--setenv"))
    assert env["PATH"].startswith("/opt/venv/bin:")
    assert env["STRONGROOM_SOCKET"] == "/run/strongroom/api.sock"


def test_environment_is_only_what_the_spec_says(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "leak")
    spec = SandboxSpec(command=("true",), env={"SM_CHANNEL_TRAIN": "/opt/ml/input/data/train", "HOME": "/work"})
    env = sandbox_env(spec)
    assert "AWS_SECRET_ACCESS_KEY" not in env
    assert env["SM_CHANNEL_TRAIN"] == "/opt/ml/input/data/train"
    assert env["HOME"] == "/work"  # the spec wins over defaults
    assert "leak" not in build(spec)


def test_limits_prefix() -> None:
    limits = Limits(
        memory_bytes=512 * 1024 * 1024, cpu_seconds=60, open_files=256, processes=64, file_size_bytes=1 << 20, cpus=(1,)
    )
    prefix = limit_args(SandboxSpec(command=("true",), limits=limits))
    assert prefix[0] == "/usr/bin/prlimit"
    for option in (f"--as={512 * 1024 * 1024}", "--cpu=60:65", "--nofile=256", "--nproc=64", "--fsize=1048576"):
        assert option in prefix
    assert prefix[prefix.index("--") + 1 :] == ["/usr/bin/taskset", "--cpu-list", "1"]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"uid": 0}, "uid"),
        ({"command": ()}, "command"),
        ({"workdir": "relative/dir"}, "workdir"),
        ({"scratch_path": "/opt/ml/../../etc"}, "scratch_path"),
        ({"mounts": (Mount("/srv/a", "/opt/ml/a"), Mount("/srv/b", "/opt/ml/a"))}, "mounts.target"),
        ({"env": {"BAD NAME": "x"}}, "env"),
        ({"hostname": "Not A Host"}, "hostname"),
        ({"scratch_size_bytes": 10}, "scratch_size_bytes"),
    ],
)
def test_bad_specs_name_the_field(kwargs: dict[str, object], field: str) -> None:
    args: dict[str, object] = {"command": ("true",), **kwargs}
    with pytest.raises(InvalidInput) as err:
        SandboxSpec(**args)  # type: ignore[arg-type]
    assert err.value.field == field


@pytest.mark.parametrize("target", ["/usr", "/usr/local/lib", "/etc/shadow", "/proc/1", "/", "/tmp"])
def test_mounts_cannot_cover_the_sandbox_system(target: str) -> None:
    with pytest.raises(InvalidInput) as err:
        Mount("/srv/data", target)
    assert err.value.field == "mounts.target"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"memory_bytes": 1024}, "limits.memory_bytes"), ({"cpus": ()}, "limits.cpus"), ({"nice": -5}, "limits.nice")],
)
def test_bad_limits_name_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInput) as err:
        Limits(**kwargs)  # type: ignore[arg-type]
    assert err.value.field == field
