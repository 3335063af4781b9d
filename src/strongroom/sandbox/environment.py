"""Find what a Python environment needs to run inside a sandbox, and the host's system layout.

A venv is a thin layer over a base interpreter (often outside ``/usr``, e.g. pyenv under
``/root/.pyenv``), plus any editable source trees its ``.pth`` files add to ``sys.path``.
The sandbox binds all of them read-only at their own paths, so the venv's absolute paths
(``pyvenv.cfg``, script shebangs) work unchanged inside.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from strongroom.core.errors import InvalidInput
from strongroom.sandbox.models import PythonEnvironment

# Already visible inside every sandbox: nothing under these needs its own bind.
_SYSTEM_PREFIXES = ("/usr/",)
_PROBE = (
    "import json, sys, sysconfig;"
    "print(json.dumps({'prefix': sys.prefix, 'base_prefix': sys.base_prefix, 'exec_prefix': sys.exec_prefix,"
    "'base_exec_prefix': sys.base_exec_prefix, 'path': sys.path, 'executable': sys.executable,"
    "'scripts': sysconfig.get_path('scripts')}))"
)


def _minimal_roots(paths: list[str]) -> tuple[str, ...]:
    """Drop paths inside other paths and paths the system binds already cover."""
    unique = sorted({os.path.normpath(p) for p in paths if p and os.path.isabs(p)})
    roots: list[str] = []
    for path in unique:
        if path == "/usr" or path.startswith(_SYSTEM_PREFIXES):
            continue
        if any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots):
            continue
        roots.append(path)
    return tuple(roots)


def discover(python: str | None = None) -> PythonEnvironment:
    """Describe the environment of interpreter ``python`` (default: the one running the platform).

    The interpreter is asked in isolated mode (``-I``: no PYTHONPATH, no user site), so what the
    sandbox sees is what the environment itself provides.

    Raises:
        InvalidInput: ``python`` is not an executable interpreter.
    """
    executable = python or sys.executable
    if not os.access(executable, os.X_OK):
        raise InvalidInput(f"Python interpreter {executable!r} does not exist or is not executable", field="runtime")
    try:
        out = subprocess.run(
            [executable, "-I", "-c", _PROBE], capture_output=True, check=True, timeout=60, env={"PATH": "/usr/bin:/bin"}
        ).stdout
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        raise InvalidInput(f"{executable!r} did not answer as a Python interpreter: {exc}", field="runtime") from exc
    info = json.loads(out)
    candidates = [info["prefix"], info["base_prefix"], info["exec_prefix"], info["base_exec_prefix"]]
    candidates += [p for p in info["path"] if p and os.path.isdir(p)]
    real = os.path.realpath(executable)
    candidates.append(os.path.dirname(os.path.dirname(real)))
    # The venv's interpreter path (a symlink into the base prefix) is what runs inside.
    venv_python = os.path.join(info["scripts"], "python")
    run = venv_python if os.access(venv_python, os.X_OK) else executable
    existing = [p for p in candidates if os.path.exists(p)]
    return PythonEnvironment(executable=run, paths=_minimal_roots(existing), bin_dir=info["scripts"])


@dataclass(frozen=True)
class HostLayout:
    """How the host's top-level system directories look: real directories or symlinks into /usr.

    Debian and most current distributions have a merged /usr (``/bin -> usr/bin``); older ones
    have real directories. The builder recreates the same shape inside the sandbox.
    """

    symlinks: tuple[tuple[str, str], ...]
    directories: tuple[str, ...]

    @classmethod
    def detect(cls) -> HostLayout:
        symlinks: list[tuple[str, str]] = []
        directories: list[str] = []
        for name in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
            path = Path(name)
            if path.is_symlink():
                symlinks.append((os.readlink(path), name))
            elif path.is_dir():
                directories.append(name)
        return cls(symlinks=tuple(symlinks), directories=tuple(directories))

    @classmethod
    def merged_usr(cls) -> HostLayout:
        """The layout of a merged-/usr Debian host (used by tests that must not depend on the host)."""
        return cls(
            symlinks=(("usr/bin", "/bin"), ("usr/sbin", "/sbin"), ("usr/lib", "/lib"), ("usr/lib64", "/lib64")),
            directories=(),
        )
