"""Runtimes: named, admin-approved Python environments jobs run in.

``default`` is the platform's own environment. A PlatformAdmin registers others (another venv's
interpreter). What a runtime holds (Python and key package versions) is probed once and
recorded with every job, so a reproduction can insist on the same versions.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from dataclasses import dataclass

from sqlalchemy import select

from strongroom.core.context import RequestContext
from strongroom.core.errors import Conflict, InvalidInput, NotFound
from strongroom.core.names import check_name
from strongroom.db.base import utcnow
from strongroom.db.engine import Database
from strongroom.guard import Guard
from strongroom.jobs.db import RuntimeRow
from strongroom.policy.engine import Target

DEFAULT = "default"
PACKAGES = ("strongroom", "xgboost", "numpy", "pandas", "scikit-learn", "pyarrow", "shap", "dask", "distributed")
_PROBE = (
    "import json, sys, importlib.metadata as m\n"
    "out = {'python': sys.version.split()[0]}\n"
    "for p in json.loads(sys.argv[1]):\n"
    "    try: out[p] = m.version(p)\n"
    "    except m.PackageNotFoundError: pass\n"
    "print(json.dumps(out))\n"
)


@dataclass(frozen=True)
class Runtime:
    name: str
    python: str
    description: str
    versions: dict[str, str]


def probe_versions(python: str) -> dict[str, str]:
    done = subprocess.run(
        [python, "-I", "-c", _PROBE, json.dumps(PACKAGES)], capture_output=True, text=True, timeout=60, check=False
    )
    if done.returncode != 0:
        raise InvalidInput(f"{python} is not a working Python interpreter: {done.stderr.strip()[:300]}", field="python")
    return dict(json.loads(done.stdout))


class RuntimeRegistry:
    def __init__(self, db: Database, guard: Guard) -> None:
        self.db = db
        self.guard = guard
        self._versions: dict[str, dict[str, str]] = {}
        self._lock = threading.Lock()

    def _versions_of(self, python: str) -> dict[str, str]:
        with self._lock:
            if python not in self._versions:
                self._versions[python] = probe_versions(python)
            return self._versions[python]

    def resolve(self, name: str) -> Runtime:
        """The runtime called ``name`` (``default`` is always there)."""
        if name == DEFAULT:
            return Runtime(DEFAULT, sys.executable, "the platform's own environment", self._versions_of(sys.executable))
        with self.db.read() as session:
            row = session.get(RuntimeRow, name)
        if row is None:
            raise InvalidInput(
                f"runtime {name!r} is not approved on this platform; see `strongroom runtimes list`", field="runtime"
            )
        return Runtime(row.name, row.python, row.description, self._versions_of(row.python))

    def register(self, ctx: RequestContext, name: str, python: str, description: str = "") -> Runtime:
        check_name(name, "name")
        if name == DEFAULT:
            raise Conflict("'default' is the platform's own runtime and cannot be replaced", field="name")
        if not os.path.isabs(python) or not os.access(python, os.X_OK):
            raise InvalidInput(f"{python!r} is not an executable absolute path", field="python")
        versions = probe_versions(python)
        params = {"name": name, "python": python, "description": description}
        with (
            self.guard.begin(ctx, "RegisterRuntime", Target("runtime", "", name), params=params) as call,
            call.transaction(),
        ):
            if call.session.get(RuntimeRow, name) is not None:
                raise Conflict(f"runtime {name!r} already exists", field="name")
            call.session.add(
                RuntimeRow(
                    name=name,
                    python=python,
                    description=description,
                    approved_by=ctx.principal.user,
                    created_at=utcnow(),
                )
            )
        with self._lock:
            self._versions[python] = versions
        return Runtime(name, python, description, versions)

    def list(self, ctx: RequestContext) -> list[Runtime]:
        target = Target("runtime", "", "*", owner=ctx.principal.user)
        with self.guard.begin(ctx, "ListRuntimes", target) as call, call.transaction(write=False):
            rows = list(call.session.scalars(select(RuntimeRow).order_by(RuntimeRow.name)))
        default = self.resolve(DEFAULT)
        return [default] + [Runtime(r.name, r.python, r.description, self._versions_of(r.python)) for r in rows]

    def describe(self, name: str) -> Runtime:
        try:
            return self.resolve(name)
        except InvalidInput as exc:
            raise NotFound(exc.detail, field="runtime") from None
