"""When an endpoint's kept InvokeEndpoint decision is missing or has expired, one request per
credential decides (in a thread, audited) while the others wait for it and resume under it; a
refusal is never shared: each request is then decided (and audited) on its own."""

from __future__ import annotations

import asyncio
import threading
import time
from types import SimpleNamespace
from typing import Any

from strongroom.core.context import Grant, Principal, RequestContext
from strongroom.core.errors import Forbidden
from strongroom.guard import Guard
from strongroom.serving.service import ServingService

CTX = RequestContext(principal=Principal(user="mo", token_kind="api", grants=(Grant("MLOpsEngineer", "risk"),)))


class _Decisions:
    """A stand-in for the service's guard side: ``_begin`` decides slowly, ``_resume`` finds a
    kept decision once an allowed one was made."""

    def __init__(self, allow: bool) -> None:
        self.allow = allow
        self.kept = False
        self.decided = 0
        self.lock = threading.Lock()
        self.guard = SimpleNamespace(decision_key=Guard.decision_key)
        self._deciding: dict[tuple[object, ...], asyncio.Future[None]] = {}

    def _resume(self, ctx: RequestContext, team: str, name: str) -> Any:
        return "covered" if self.kept else None

    def _begin(self, ctx: RequestContext, team: str, name: str) -> Any:
        time.sleep(0.2)
        with self.lock:
            self.decided += 1
        if not self.allow:
            raise Forbidden("InvokeEndpoint is not allowed")
        self.kept = True
        return "decided"


async def _sixteen(decisions: _Decisions) -> list[Any]:
    authorize = ServingService._authorize.__get__(decisions)
    return list(
        await asyncio.gather(*(authorize(CTX, "risk", "credit-endpoint") for _ in range(16)), return_exceptions=True)
    )


def test_one_request_decides_and_the_others_resume_under_its_decision() -> None:
    decisions = _Decisions(allow=True)
    outcomes = asyncio.run(_sixteen(decisions))
    assert decisions.decided == 1
    assert outcomes.count(("decided", False)) == 1 and outcomes.count(("covered", True)) == 15


def test_a_refusal_is_not_shared_each_request_is_decided() -> None:
    decisions = _Decisions(allow=False)
    outcomes = asyncio.run(_sixteen(decisions))
    assert decisions.decided == 16
    assert all(isinstance(o, Forbidden) for o in outcomes)


def test_a_kept_decision_needs_no_decision() -> None:
    decisions = _Decisions(allow=True)
    decisions.kept = True
    assert asyncio.run(_sixteen(decisions)) == [("covered", True)] * 16
    assert decisions.decided == 0
