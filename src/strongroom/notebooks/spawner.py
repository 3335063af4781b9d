"""Spawners start a notebook's Jupyter server. One implementation: ``SandboxSpawner`` (bubblewrap).

Per running notebook the spawner keeps a *runtime directory* (on tmpfs by default, see
``Config.effective_notebook_runtime_dir``) with two parts:

* ``ro/`` -> ``/run/strongroom/nb`` read-only inside: the execution token (rewritten before it
  expires), Jupyter's per-launch secret, ``strongroom_environment.py``, git and Jupyter config;
* ``sock/`` -> ``/run/strongroom/nb-sock`` writable inside: Jupyter's Unix socket, nothing else.

The platform only ever connects to the socket through an ``O_PATH|O_NOFOLLOW`` descriptor it
checked is a socket, so a sandbox that swaps the file for a symlink cannot point the proxy at
another socket on the host.
"""

from __future__ import annotations

import abc
import base64
import collections
import contextlib
import hashlib
import hmac
import json
import logging
import os
import secrets
import shutil
import signal
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from strongroom.core.errors import Unavailable
from strongroom.kms.volume import EncryptedVolume
from strongroom.notebooks.inside.headers import PROXY_AUTH, PROXY_KIND, PROXY_USER
from strongroom.notebooks.models import SIZES, GiB
from strongroom.sandbox import Limits, Mount, PythonEnvironment, SandboxProcess, SandboxRunner, SandboxSpec, discover

log = logging.getLogger(__name__)
INSIDE_RO = "/run/strongroom/nb"
INSIDE_SOCK = "/run/strongroom/nb-sock"
FORWARDER_PORT = 8750
SANDBOX_HOME = "/home/sandbox"
PACKAGES_DIR = f"{SANDBOX_HOME}/.local/strongroom-packages"


@dataclass(frozen=True)
class LaunchSpec:
    """Everything a spawner needs to start one notebook."""

    notebook_id: str
    team: str
    name: str
    owner: str
    size: str
    volume_gib: int
    on_create: str
    on_start: str
    environment: dict[str, Any]  # constants for strongroom_environment (buckets, key, repository...)
    role: str = "DataScientist"  # the execution role the kernel acts with


@dataclass
class Live:
    """A running notebook as the platform process knows it (never persisted)."""

    notebook_id: str
    team: str
    name: str
    owner: str
    generation: int
    process: SandboxProcess
    secret: str
    runtime_dir: Path
    socket_fd: int | None = None
    token_written_at: float = 0.0
    ready: bool = False
    tail: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=40))
    clients: dict[int, Any] = field(default_factory=dict)  # event-loop id -> httpx.AsyncClient (the proxy's)

    @property
    def socket_path(self) -> str:
        """The path the proxy connects to: the checked descriptor, never the name in the writable dir."""
        if self.socket_fd is None:
            raise FileNotFoundError("the notebook's socket is not open yet")
        return f"/proc/self/fd/{self.socket_fd}"

    def upstream_headers(self, user: str, bearer: bool) -> dict[str, str]:
        return {PROXY_AUTH: self.secret, PROXY_USER: user, PROXY_KIND: "bearer" if bearer else "cookie"}

    def close(self) -> None:
        if self.socket_fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.socket_fd)
            self.socket_fd = None


class Spawner(abc.ABC):
    """Starts, probes and stops notebook servers."""

    @abc.abstractmethod
    def start(self, spec: LaunchSpec, generation: int, token: str) -> Live:
        """Start the notebook's server (returns at once; ``probe`` says when it answers)."""

    def attach(self, notebook_id: str, team: str, name: str, owner: str, generation: int) -> Live | None:
        """A notebook another API process started and runs, as this process proxies to it (or ``None``)."""
        return None

    @abc.abstractmethod
    def probe(self, live: Live) -> bool:
        """True once the server answers on its socket."""

    @abc.abstractmethod
    def write_token(self, live: Live, token: str) -> None:
        """Replace the execution token the notebook reads."""

    @abc.abstractmethod
    def stop(self, live: Live, reason: str) -> None:
        """Stop the server (SIGTERM, then SIGKILL after the grace period); returns at once."""

    @abc.abstractmethod
    def cleanup(self, notebook_id: str) -> None:
        """Remove the runtime directory (tokens, socket) of a stopped notebook."""

    def close(self) -> None:
        """Called at platform shutdown, after every notebook stopped."""
        return None

    def end_sessions(self, live: Live) -> int:
        """End the server's kernels and terminals (their role was revoked); returns how many."""
        return 0

    @abc.abstractmethod
    def kill_leftover(self, notebook_id: str, host_pid: int | None) -> bool:
        """Kill a sandbox an earlier platform process started for ``notebook_id``, if still alive."""

    @abc.abstractmethod
    def volume(self, team: str, name: str, notebook_id: str) -> Path:
        """The host directory of the notebook's home volume."""


def _write_private(directory: Path, name: str, text: str) -> None:
    """Write ``directory/name`` atomically, never following a symlink planted at either name."""
    temp = directory / f".{name}.{secrets.token_hex(6)}"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)
    os.replace(temp, directory / name)


def environment_module(constants: dict[str, Any]) -> str:
    """Source of the notebook's ``strongroom_environment`` module."""
    lines = [
        '"""This notebook\'s Strongroom environment (written by the platform; read-only).',
        "",
        "    import strongroom_environment as env",
        "    env.TEAM, env.DATA_BUCKET, env.MODEL_BUCKET, env.KMS_KEY_ID, env.GIT_REMOTE",
        "    session = env.session()   # the same as strongroom.Session() in this notebook",
        '"""',
        "",
        "from __future__ import annotations",
        "",
    ]
    for key, value in sorted(constants.items()):
        lines.append(f"{key} = {value!r}")
    lines += [
        "",
        "",
        "def token() -> str:",
        '    """The current execution-role token (the platform replaces it before it expires)."""',
        "    with open(TOKEN_FILE) as handle:",
        "        return handle.read().strip()",
        "",
        "",
        "def session():  # type: ignore[no-untyped-def]",
        '    """A ``strongroom.Session`` over the platform socket, acting as this notebook\'s execution role."""',
        "    import strongroom",
        "",
        "    return strongroom.Session(socket=SOCKET)",
        "",
    ]
    return "\n".join(lines)


class SandboxSpawner(Spawner):
    """Jupyter in a bubblewrap sandbox (see docs/notebooks.md)."""

    def __init__(
        self,
        runner: SandboxRunner,
        *,
        api_socket: Path,
        runtime_root: Path,
        volumes_root: Path,
        stop_grace_seconds: float,
        python: PythonEnvironment | None = None,
        proxy_key: bytes | None = None,
    ) -> None:
        self.runner = runner
        # Jupyter's per-launch secret is derived from this key, the notebook and its generation, so
        # every API process of `up --workers N` can proxy to a notebook another process started.
        self._proxy_key = proxy_key or secrets.token_bytes(32)
        self.api_socket = api_socket
        self.runtime_root = runtime_root
        self.volumes_root = volumes_root
        self.stop_grace_seconds = stop_grace_seconds
        self._python = python

    @property
    def python(self) -> PythonEnvironment:
        if self._python is None:
            self._python = discover()
        return self._python

    def volume(self, team: str, name: str, notebook_id: str) -> Path:
        return self.volumes_root / team / f"{name}-{notebook_id}"

    def _runtime(self, notebook_id: str) -> Path:
        return self.runtime_root / notebook_id

    def _jupyter_config(self, spec: LaunchSpec) -> dict[str, Any]:
        return {
            "ServerApp": {
                "sock": f"{INSIDE_SOCK}/jupyter.sock",
                "sock_mode": "0600",
                "base_url": f"/notebooks/{spec.team}/{spec.name}/",
                "root_dir": SANDBOX_HOME,
                "default_url": "/lab",
                "allow_remote_access": True,  # the Host header is the browser's; the proxy is the gate
                "open_browser": False,
                "identity_provider_class": "strongroom.notebooks.inside.jupyter_auth.ProxyIdentityProvider",
                "jpserver_extensions": {"jupyter_lsp": False},
            },
            "LabApp": {"news_url": None, "check_for_updates_class": "jupyterlab.NeverCheckForUpdate"},
        }

    def start(self, spec: LaunchSpec, generation: int, token: str) -> Live:
        runtime = self._runtime(spec.notebook_id)
        if runtime.exists():
            shutil.rmtree(runtime)
        ro, sock = runtime / "ro", runtime / "sock"
        for directory in (self.runtime_root, runtime, ro, sock, ro / "jupyter"):
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        volume = EncryptedVolume(self.volume(spec.team, spec.name, spec.notebook_id))
        if not volume.is_mounted():  # plaintext must never land on the disk below the mount point
            raise Unavailable(f"the encrypted volume of notebook {spec.team}/{spec.name} is not mounted")
        home = volume.mountpoint
        secret = self.proxy_secret(spec.notebook_id, generation)
        size = SIZES[spec.size]
        forwarder = f"http://127.0.0.1:{FORWARDER_PORT}"
        constants = {
            **spec.environment,
            "TEAM": spec.team,
            "NOTEBOOK": spec.name,
            "OWNER": spec.owner,
            "ROLE": spec.role,
            "EXECUTION_ROLE": f"srn:strongroom:{spec.team}:notebook/{spec.name}",
            "SOCKET": "/run/strongroom/api.sock",
            "TOKEN_FILE": f"{INSIDE_RO}/token",
            "PACKAGE_INDEX": f"{forwarder}/pypi/simple/",
            "FORWARDER": forwarder,
        }
        files = {
            "token": token,
            "jupyter-token": secret,
            "strongroom_environment.py": environment_module(constants),
            "gitconfig": f"[user]\n\tname = {spec.owner}\n\temail = {spec.owner}@{spec.team}.strongroom\n"
            "[init]\n\tdefaultBranch = main\n[credential]\n\thelper =\n",
            "notebook.json": json.dumps(
                {
                    "team": spec.team,
                    "name": spec.name,
                    "forwarder_port": FORWARDER_PORT,
                    "api_socket": "/run/strongroom/api.sock",
                    "token_file": f"{INSIDE_RO}/token",
                    "git_remote": constants.get("GIT_REMOTE", ""),
                    "git_directory": constants.get("GIT_REPOSITORY", ""),
                    "on_create": spec.on_create,
                    "on_start": spec.on_start,
                    "jupyter_args": [f"--config={INSIDE_RO}/jupyter/jupyter_server_config.json"],
                }
            ),
        }
        for name, text in files.items():
            _write_private(ro, name, text)
        _write_private(ro / "jupyter", "jupyter_server_config.json", json.dumps(self._jupyter_config(spec)))
        cpus_total = os.cpu_count() or 1
        count = min(size.cpus, cpus_total)
        first = int(spec.notebook_id.rsplit("-", 1)[-1], 16) % cpus_total
        env = {
            # A fresh, writable config dir per start (tmpfs); the platform's settings come from --config.
            "JUPYTER_CONFIG_DIR": "/tmp/jupyter-config",  # noqa: S108 -- the sandbox's own tmpfs
            "JUPYTERLAB_SETTINGS_DIR": f"{SANDBOX_HOME}/.jupyter/lab/user-settings",
            "JUPYTERLAB_WORKSPACES_DIR": f"{SANDBOX_HOME}/.jupyter/lab/workspaces",
            "JUPYTER_RUNTIME_DIR": "/tmp/jupyter-runtime",  # noqa: S108 -- the sandbox's own tmpfs; kernel connection files: tmpfs, not the volume
            "JUPYTER_TOKEN_FILE": f"{INSIDE_RO}/jupyter-token",
            "STRONGROOM_NOTEBOOK_CONFIG": f"{INSIDE_RO}/notebook.json",
            "STRONGROOM_NOTEBOOK": f"{spec.team}/{spec.name}",
            "STRONGROOM_TEAM": spec.team,  # the SDK's default team (experiments, lineage)
            "PYTHONPATH": f"{INSIDE_RO}:{PACKAGES_DIR}",
            "PIP_INDEX_URL": constants["PACKAGE_INDEX"],
            "PIP_TARGET": PACKAGES_DIR,
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "PIP_NO_INPUT": "1",
            "PIP_RETRIES": "0",
            "PIP_TIMEOUT": "30",
            "GIT_CONFIG_SYSTEM": f"{INSIDE_RO}/gitconfig",
            "GIT_TERMINAL_PROMPT": "0",
            "SHELL": "/bin/bash",
        }
        sandbox = SandboxSpec(
            command=(self.python.executable, "-m", "strongroom.notebooks.inside.boot"),
            python=self.python,
            env=env,
            hostname=f"nb-{spec.name}"[:63].rstrip("-"),
            home=str(home),
            mounts=(Mount(str(ro), INSIDE_RO), Mount(str(sock), INSIDE_SOCK, writable=True)),
            socket=str(self.api_socket),
            scratch_size_bytes=2 * GiB,
            tmp_size_bytes=1 * GiB,
            limits=Limits(
                memory_bytes=size.memory_bytes,
                cpus=tuple(sorted((first + i) % cpus_total for i in range(count))),
                open_files=4096,
                processes=1024,
                file_size_bytes=spec.volume_gib * GiB,
                max_runtime_seconds=None,
                stop_grace_seconds=self.stop_grace_seconds,
            ),
        )
        live = Live(spec.notebook_id, spec.team, spec.name, spec.owner, generation, None, secret, runtime)  # type: ignore[arg-type]
        live.process = self.runner.start(sandbox, on_output=lambda line: live.tail.append(line.text))
        return live

    def proxy_secret(self, notebook_id: str, generation: int) -> str:
        """The secret the proxy shows Jupyter for this launch of the notebook."""
        digest = hmac.new(self._proxy_key, f"{notebook_id}:{generation}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def attach(self, notebook_id: str, team: str, name: str, owner: str, generation: int) -> Live | None:
        live = Live(
            notebook_id,
            team,
            name,
            owner,
            generation,
            None,  # type: ignore[arg-type]  # the sandbox is the other process's
            self.proxy_secret(notebook_id, generation),
            self._runtime(notebook_id),
        )
        if not self._open_socket(live):
            return None
        live.ready = True
        return live

    def _open_socket(self, live: Live) -> bool:
        if live.socket_fd is not None:
            return True
        try:
            fd = os.open(live.runtime_dir / "sock" / "jupyter.sock", os.O_PATH | os.O_NOFOLLOW)
        except OSError:
            return False
        if not stat.S_ISSOCK(os.fstat(fd).st_mode):
            os.close(fd)
            return False
        live.socket_fd = fd
        return True

    def probe(self, live: Live) -> bool:
        if not live.process.running() or not self._open_socket(live):
            return False
        transport = httpx.HTTPTransport(uds=live.socket_path, retries=0)
        try:
            with httpx.Client(transport=transport, base_url="http://localhost", timeout=5) as client:
                answer = client.get(
                    f"/notebooks/{live.team}/{live.name}/api/status", headers=live.upstream_headers("platform", True)
                )
        except httpx.HTTPError:
            return False
        return answer.status_code == 200

    def end_sessions(self, live: Live) -> int:
        if live.socket_fd is None:
            return 0
        transport = httpx.HTTPTransport(uds=live.socket_path, retries=0)
        base = f"/notebooks/{live.team}/{live.name}/api"
        ended = 0
        try:
            with httpx.Client(
                transport=transport,
                base_url="http://localhost",
                timeout=10,
                headers=live.upstream_headers("platform", True),
            ) as client:
                for kind, key in (("kernels", "id"), ("terminals", "name")):
                    listed = client.get(f"{base}/{kind}")
                    if listed.status_code != 200:
                        continue
                    for item in listed.json():
                        if client.delete(f"{base}/{kind}/{item[key]}").status_code < 300:
                            ended += 1
        except (httpx.HTTPError, ValueError, KeyError, TypeError):
            log.exception("notebooks: could not end the kernels of %s", live.notebook_id)
        return ended

    def write_token(self, live: Live, token: str) -> None:
        _write_private(live.runtime_dir / "ro", "token", token)

    def stop(self, live: Live, reason: str) -> None:
        live.process.stop(reason)

    def cleanup(self, notebook_id: str) -> None:
        shutil.rmtree(self._runtime(notebook_id), ignore_errors=True)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.runtime_root.rmdir()  # only when empty: nothing of a running notebook is removed

    def kill_leftover(self, notebook_id: str, host_pid: int | None) -> bool:
        if not host_pid:
            return False
        marker = str(self._runtime(notebook_id)).encode()
        try:
            cmdline = Path(f"/proc/{host_pid}/cmdline").read_bytes()
        except OSError:
            return False
        if marker not in cmdline:
            return False  # the pid was reused by something else
        with contextlib.suppress(ProcessLookupError):
            os.kill(host_pid, signal.SIGKILL)  # pid 1 of the sandbox: the kernel ends the rest
        return True
