"""The one security choke point.

Every service method that reads or changes a resource runs inside ``guard.call(...)``, which

1. authorizes the call with the policy engine (deny by default; forbids win),
2. runs the service body in a database transaction,
3. appends the audit event, allowed or denied, with the outcome, in the same transaction as
   the change (so a change never exists without its audit event), and
4. publishes the audit event and any state events after the commit.

If the audit event cannot be written the call fails (fail closed). Denials raise
``Forbidden`` naming the action; they never reveal whether the resource exists.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy.orm import Session

from strongroom.audit.chain import find_secret
from strongroom.audit.events import Event, EventBus
from strongroom.audit.log import AuditLog, AuditRecord
from strongroom.audit.models import AuditEvent
from strongroom.core.context import RequestContext, request_marks
from strongroom.core.errors import Conflict, Forbidden, InvalidInput, StrongroomError, Unavailable
from strongroom.db.base import utcnow
from strongroom.db.engine import Database
from strongroom.policy.db import IdempotencyRow
from strongroom.policy.engine import Decision, PolicyEngine, Target

M = TypeVar("M", bound=BaseModel)


class _Denied(Exception):
    def __init__(self, decision: Decision, target: Target) -> None:
        super().__init__(decision.explain())
        self.decision = decision
        self.target = target


@dataclass
class Call:
    """One authorized call in progress: its session, target and decision."""

    guard: Guard
    session: Session
    ctx: RequestContext
    action: str
    target: Target
    decision: Decision
    params: dict[str, Any]
    write: bool
    replayed: dict[str, Any] | None = None
    events: list[Event] = field(default_factory=list)

    def check(self, target: Target, context: Mapping[str, Any] | None = None) -> None:
        """Re-authorize against the loaded resource (owner, tags); raise ``Forbidden`` if denied."""
        decision = self.guard.engine.decide(self.ctx.principal, self.action, target, context)
        self.target = target
        if not decision.allowed:
            raise _Denied(decision, target)
        self.decision = decision

    def replay(self, model: type[M]) -> M | None:
        """The stored result when this is a retry of an idempotent create, else ``None``."""
        return model.model_validate(self.replayed) if self.replayed is not None else None

    def result(self, entity: M) -> M:
        """Record ``entity`` as the call's result (kept for idempotent retries)."""
        key = self.ctx.idempotency_key
        if key and self.write:
            self.session.add(
                IdempotencyRow(
                    principal=self.ctx.principal.user,
                    key=key,
                    action=self.action,
                    request_hash=_request_hash(self.action, self.params),
                    result=entity.model_dump(mode="json"),
                    created_at=utcnow(),
                )
            )
        return entity

    def emit(self, event_name: str, /, **data: Any) -> None:
        """Queue a state event, published only if the call commits."""
        self.events.append(Event("state", event_name, self.target.srn, self.target.team, data))


def _request_hash(action: str, params: Mapping[str, Any]) -> str:
    body = json.dumps({"action": action, "params": params}, sort_keys=True, default=str)
    return hashlib.sha256(body.encode()).hexdigest()


class Guard:
    def __init__(
        self, db: Database, engine: PolicyEngine, audit: AuditLog, bus: EventBus, *, enforce: bool = True
    ) -> None:
        self.db = db
        self.engine = engine
        self.audit = audit
        self.bus = bus
        # ``enforce=False`` exists only so the control-plane benchmark can measure the cost of
        # security against the same app without it; `Platform` never builds one from config.
        self._enforce = enforce

    @property
    def enforcing(self) -> bool:
        return self._enforce

    def _record(
        self,
        ctx: RequestContext,
        action: str,
        target: Target,
        decision: Decision,
        params: Mapping[str, Any],
        outcome: str = "success",
        error: str = "",
    ) -> AuditRecord:
        grant = decision.grant
        return AuditRecord(
            principal=ctx.principal.user,
            token_kind=ctx.principal.token_kind,
            role=grant.role if grant else ",".join(str(g) for g in ctx.principal.grants),
            team=(grant.team if grant and grant.team else target.team),
            action=action,
            resource=target.srn,
            decision="Allow" if decision.allowed else "Deny",
            policies=list(decision.policies),
            outcome=outcome,
            error=error,
            request_id=ctx.request_id,
            source=ctx.source,
            user_agent=ctx.user_agent,
            params=dict(params),
        )

    def _append(self, record: AuditRecord, session: Session | None = None) -> AuditEvent:
        try:
            if session is not None:
                return self.audit.append(session, record)
            return self.audit.append_standalone(record)
        except StrongroomError:
            raise
        except Exception as exc:  # fail closed: no audit event, no call
            raise Unavailable("the audit log could not be written; the call was not performed") from exc

    def _published(self, event: AuditEvent) -> None:
        if self.bus.wanted("audit"):
            self.bus.publish(Event("audit", event.action, event.resource, event.team, event.model_dump(mode="json")))

    def deny(
        self, ctx: RequestContext, action: str, target: Target, decision: Decision, params: Mapping[str, Any]
    ) -> Forbidden:
        """Audit a denial and return the error to raise."""
        event = self._append(self._record(ctx, action, target, decision, params, outcome="denied"))
        self._published(event)
        detail = f"you are not allowed to {action} on {target.srn}"
        if decision.messages:
            detail += ": " + "; ".join(decision.messages)
        return Forbidden(detail, action=action, policies=list(decision.policies))

    def record_outcome(
        self,
        ctx: RequestContext,
        action: str,
        target: Target,
        decision: Decision,
        params: Mapping[str, Any],
        exc: BaseException,
    ) -> None:
        if isinstance(exc, StrongroomError):
            outcome, error = exc.slug, exc.detail
        else:
            outcome, error = "internal-error", type(exc).__name__
        self._published(self._append(self._record(ctx, action, target, decision, params, outcome, error)))

    @dataclass(frozen=True)
    class Ticket:
        """An authorized call whose work outlives one transaction (e.g. a stream)."""

        ctx: RequestContext
        action: str
        target: Target
        decision: Decision
        params: dict[str, Any]

    def authorize(
        self,
        ctx: RequestContext,
        action: str,
        target: Target,
        *,
        params: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> Guard.Ticket:
        """Authorize now (a denial is audited and raised); call ``complete`` when the work ends."""
        clean = dict(params or {})
        leaked = find_secret(clean)
        if leaked is not None:
            raise InvalidInput(
                f"{leaked} contains what looks like a Strongroom token; tokens are credentials and are never "
                "stored — remove it (and revoke the token if it was shared)",
                field=leaked,
            )
        if not self._enforce:
            return Guard.Ticket(ctx, action, target, Decision(True, action, None, ()), clean)
        decision = self.engine.decide(ctx.principal, action, target, context)
        if not decision.allowed:
            raise self.deny(ctx, action, target, decision, clean)
        marks = request_marks.get()
        if marks is not None:
            marks.audited = True  # the ticket's holder writes the event when the work ends
        return Guard.Ticket(ctx, action, target, decision, clean)

    def complete(self, ticket: Guard.Ticket, error: BaseException | None = None) -> None:
        """Audit the outcome of an authorized ticket (fail closed: raises if it cannot be written)."""
        if not self._enforce:
            return
        if error is not None:
            self.record_outcome(ticket.ctx, ticket.action, ticket.target, ticket.decision, ticket.params, error)
            return
        record = self._record(ticket.ctx, ticket.action, ticket.target, ticket.decision, ticket.params)
        self._published(self._append(record))

    def complete_many(self, items: Sequence[tuple[Guard.Ticket, BaseException | None]]) -> None:
        """Audit the outcomes of several tickets in one transaction, in order (high-rate streams such
        as the notebook proxy). Fail closed: raises if the events cannot be written."""
        if not self._enforce or not items:
            return
        records = []
        for ticket, error in items:
            if error is None:
                outcome, detail = "success", ""
            elif isinstance(error, StrongroomError):
                outcome, detail = error.slug, error.detail
            else:
                outcome, detail = "internal-error", type(error).__name__
            records.append(
                self._record(ticket.ctx, ticket.action, ticket.target, ticket.decision, ticket.params, outcome, detail)
            )
        try:
            with self.db.write() as session:
                events = [self.audit.append(session, record) for record in records]
        except StrongroomError:
            raise
        except Exception as exc:  # fail closed
            raise Unavailable("the audit log could not be written; the call was not performed") from exc
        for event in events:
            self._published(event)

    @contextmanager
    def call(
        self,
        ctx: RequestContext,
        action: str,
        target: Target,
        *,
        params: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = None,
        write: bool = True,
    ) -> Iterator[Call]:
        """Authorize ``action`` on ``target``, run the body in a transaction, audit the outcome."""
        ticket = self.authorize(ctx, action, target, params=params, context=context)
        params, decision = ticket.params, ticket.decision
        if not self._enforce:
            with self.db.write() if write else self.db.read() as session:
                yield Call(self, session, ctx, action, target, decision, params, write)
            return
        call: Call | None = None
        try:
            with self.db.write() if write else self.db.read() as session:
                call = Call(self, session, ctx, action, target, decision, params, write)
                if write and ctx.idempotency_key:
                    call.replayed = self._replayed(session, ctx, action, params)
                yield call
                event = (
                    self._append(self._record(ctx, action, call.target, call.decision, params), session)
                    if write
                    else None
                )
            if event is None:
                event = self._append(self._record(ctx, action, call.target, call.decision, params))
        except _Denied as denied:
            raise self.deny(ctx, action, denied.target, denied.decision, params) from None
        except Unavailable:
            raise
        except BaseException as exc:
            if isinstance(exc, GeneratorExit):
                raise
            self.record_outcome(ctx, action, call.target if call else target, decision, params, exc)
            raise
        self._published(event)
        for state_event in call.events:
            self.bus.publish(state_event)

    def _replayed(
        self, session: Session, ctx: RequestContext, action: str, params: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        row = session.get(IdempotencyRow, (ctx.principal.user, ctx.idempotency_key))
        if row is None:
            return None
        if row.action != action or row.request_hash != _request_hash(action, params):
            raise Conflict(
                "this Idempotency-Key was already used for a different request; use a new key",
                field="Idempotency-Key",
            )
        return dict(row.result)
