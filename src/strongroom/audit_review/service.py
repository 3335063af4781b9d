"""Guarded access to the audit log: verify, tail, query, export."""

from __future__ import annotations

from collections.abc import Iterator

from strongroom.audit.log import AuditFilter, AuditLog
from strongroom.audit.models import AuditEvent, VerifyReport
from strongroom.core.context import RequestContext
from strongroom.core.errors import InvalidInput
from strongroom.guard import Guard
from strongroom.policy.engine import Target

AUDIT_LOG = Target("audit", "", "log")
MAX_PAGE = 1000


class AuditService:
    def __init__(self, log: AuditLog, guard: Guard) -> None:
        self.log = log
        self.guard = guard

    def verify(self, ctx: RequestContext) -> VerifyReport:
        with self.guard.begin(ctx, "VerifyAuditLog", AUDIT_LOG) as call, call.transaction(write=False):
            return self.log.verify()

    def query(self, ctx: RequestContext, flt: AuditFilter) -> list[AuditEvent]:
        if not 1 <= flt.limit <= MAX_PAGE:
            raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}", field="limit")
        params = {k: v for k, v in flt.__dict__.items() if v not in (None, 0)}
        with self.guard.begin(ctx, "ReadAuditLog", AUDIT_LOG, params=params) as call, call.transaction(write=False):
            return self.log.query(flt)

    def tail(self, ctx: RequestContext, count: int = 20) -> list[AuditEvent]:
        if not 1 <= count <= MAX_PAGE:
            raise InvalidInput(f"count must be between 1 and {MAX_PAGE}", field="count")
        with (
            self.guard.begin(ctx, "ReadAuditLog", AUDIT_LOG, params={"tail": count}) as call,
            call.transaction(write=False),
        ):
            return self.log.tail(count)

    def export(self, ctx: RequestContext, flt: AuditFilter) -> Iterator[AuditEvent]:
        """Authorize once, then stream every matching event."""
        params = {k: v for k, v in flt.__dict__.items() if v not in (None, 0)} | {"export": True}
        with self.guard.begin(ctx, "ReadAuditLog", AUDIT_LOG, params=params) as call, call.transaction(write=False):
            pass
        return self.log.iterate(flt)
