"""Proxied requests' audit events: all written, in order, in batches; a failing audit log closes access."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest

from strongroom.audit.log import AuditFilter
from strongroom.core.context import Grant
from strongroom.core.errors import Unavailable
from strongroom.core.platform import Platform
from strongroom.guard import Guard, Ticket
from strongroom.notebooks.audit_queue import AuditQueue
from strongroom.policy.engine import Target
from tests.support import context_for

DANA = context_for("dana", Grant("DataScienceAdmin", "risk"))
ADMIN = context_for("admin", Grant("PlatformAdmin"))


def test_every_event_is_written_in_order(platform: Platform) -> None:
    audit = AuditQueue(platform.guard, batch_seconds=0.01)
    for i in range(30):
        ticket = platform.guard.begin(DANA, "OpenNotebook", Target("notebook", "risk", "lab"), params={"path": f"/{i}"})
        audit.complete(ticket, Unavailable("not running") if i == 29 else None)
    audit.close()
    events = platform.audit.query(ADMIN, AuditFilter(action="OpenNotebook", limit=100))
    assert [e.params["path"] for e in events] == [f"/{i}" for i in range(30)]
    assert events[-1].outcome == "unavailable" and {e.outcome for e in events[:-1]} == {"success"}
    assert platform.audit_log.verify().ok


class BrokenGuard(Guard):
    def __init__(self, real: Guard) -> None:
        self.__dict__.update(real.__dict__)
        self.failures = 1
        self.written = threading.Event()

    def finish_many(self, items: Sequence[tuple[Ticket, BaseException | None]]) -> None:
        if self.failures:
            self.failures -= 1
            raise Unavailable("the audit log could not be written")
        super().finish_many(items)
        self.written.set()


def test_a_failing_audit_log_refuses_new_requests_until_it_recovers(platform: Platform) -> None:
    guard = BrokenGuard(platform.guard)
    audit = AuditQueue(guard, batch_seconds=0.01, retry_seconds=0.2)
    ticket = platform.guard.begin(DANA, "OpenNotebook", Target("notebook", "risk", "lab"), params={"path": "/x"})
    audit.complete(ticket)
    assert guard.written.wait(10)
    audit.ensure_healthy()  # recovered: the retried event was written
    audit.close()
    [event] = platform.audit.query(ADMIN, AuditFilter(action="OpenNotebook", limit=10))
    assert event.params["path"] == "/x"
    broken_guard = BrokenGuard(platform.guard)
    broken = AuditQueue(broken_guard, batch_seconds=0.01, retry_seconds=0.5)
    broken.complete(ticket)
    with pytest.raises(Unavailable, match="notebook access is refused"):
        for _ in range(200):
            broken.ensure_healthy()
            threading.Event().wait(0.01)
    assert broken_guard.written.wait(10)
    broken.close()
