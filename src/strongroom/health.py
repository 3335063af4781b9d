"""Liveness and readiness: answers without authentication, so they carry no data.

``/healthz`` says only that the process answers. ``/readyz`` checks what a call needs: the
database answers, the audit log can be appended to (its head reads, the witness file is writable,
the checkpoint worker is not alerting), and every background worker thread is alive. The answer
names each check and says ``ok`` or ``failing``; why it fails goes to the server's log, not to an
unauthenticated caller.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from sqlalchemy import text

if TYPE_CHECKING:
    from strongroom.platform import Platform

log = logging.getLogger(__name__)


def _database(platform: Platform) -> str:
    with platform.db.read() as session:
        session.execute(text("SELECT 1"))
    return ""


def _audit(platform: Platform) -> str:
    platform.audit_log.head()
    witness = platform.config.audit_witness_path
    if witness.exists() and not os.access(witness, os.W_OK):
        return f"the witness file {witness} is not writable"
    if not witness.exists() and not os.access(witness.parent, os.W_OK):
        return f"the witness directory {witness.parent} is not writable"
    return platform.audit_checkpoint_problem()


def _workers(platform: Platform) -> str:
    if platform.background_owner is not None:  # another API process of `up --workers N` runs them
        owner = platform.background_owner()
        try:
            if owner > 0:
                os.kill(owner, 0)
                return ""
        except ProcessLookupError:
            pass
        return "the API process that runs the background workers is down (its master restarts it)"
    runner = platform.worker_runner()
    if not runner.started:
        return "the background workers are not started"
    dead = runner.dead()
    return f"workers stopped: {', '.join(dead)}" if dead else ""


CHECKS: dict[str, Callable[[Platform], str]] = {"database": _database, "audit": _audit, "workers": _workers}


def readiness(platform: Platform) -> dict[str, str]:
    """Each check's name and ``ok`` or ``failing``; the reasons are logged."""
    results: dict[str, str] = {}
    for name, check in CHECKS.items():
        try:
            problem = check(platform)
        except Exception as exc:
            problem = f"{type(exc).__name__}: {exc}"
        if problem:
            log.warning("not ready: %s: %s", name, problem)
        results[name] = "failing" if problem else "ok"
    return results
