"""The decide-act-record primitive: ``Guard.begin`` and its ``Ticket``.

::

    with guard.begin(ctx, "CreateBucket", target, params=params) as ticket, ticket.transaction():
        ticket.session.add(row)

1. ``begin`` authorizes the call with the policy engine (deny by default; forbids win). A
   denial is audited at once and raised as ``Forbidden``; it never reveals whether the resource
   exists.
2. The holder acts. Database work runs in ``ticket.transaction()``; a write transaction carries
   the audit event of the call, so a change never exists without its event.
3. The ticket records **exactly one** outcome: allowed (success), denied, or failed with the
   error's slug, whatever fails in between (validation, limits, conflicts, a crash in the
   transaction). A ticket that outlives one block (a stream) is finished with ``finish``.
4. The audit event and the state events are published after the commit.

A ticket begun while another ticket of the same request is open is *nested* (a service calling
another service, e.g. a job creation checking its KMS key): it is decided and enforced like any
other, but its decision is listed in the outer ticket's event (``params.checks``) instead of
writing an event of its own, so one request is one audit event.

If the audit event cannot be written the call fails with ``Unavailable`` (fail closed).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar, cast

from pydantic import BaseModel
from sqlalchemy import Table
from sqlalchemy.orm import Session

from strongroom.audit.chain import find_secret
from strongroom.audit.events import Event, EventBus
from strongroom.audit.log import AuditLog, AuditRecord
from strongroom.audit.models import AuditEvent
from strongroom.core.context import Principal, RequestContext
from strongroom.core.errors import Conflict, Forbidden, InvalidInput, StrongroomError, Unavailable
from strongroom.db.base import utcnow
from strongroom.db.changes import ChangeFeed
from strongroom.db.driver import Statement, driver
from strongroom.db.engine import Database
from strongroom.policy.db import IdempotencyRow
from strongroom.policy.engine import Decision, PolicyEngine, Target

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)

_ALLOW_ALL = Decision(True, "", None, ())
# Every idempotent write (each durable tracking call among them) looks its key up and stores
# its result: two statements sent to the driver directly (see ``strongroom.db.driver``).
_FIND_RESULT = Statement.of(
    "SELECT action, request_hash, result FROM idempotency_records WHERE principal = :principal AND key = :key"
)
_STORE_RESULT = Statement.insert(
    cast(Table, IdempotencyRow.__table__), ("principal", "key", "action", "request_hash", "result", "created_at")
)


@dataclass
class _Request:
    """One connection's audit state, owned by the guard: has an outcome been (or will one be) recorded?"""

    audited: bool = False


_request: ContextVar[_Request | None] = ContextVar("strongroom_guard_request", default=None)
_open: ContextVar[Ticket | None] = ContextVar("strongroom_guard_open_ticket", default=None)


class _AuditWriteFailed(Unavailable):
    pass


def _request_hash(action: str, params: Mapping[str, Any]) -> str:
    body = json.dumps({"action": action, "params": params}, sort_keys=True, default=str)
    return hashlib.sha256(body.encode()).hexdigest()


def _outcome_of(error: BaseException) -> tuple[str, str]:
    if isinstance(error, StrongroomError):
        return error.slug, error.detail
    return "internal-error", type(error).__name__


def _cache_key(ctx: RequestContext, action: str, target: Target) -> tuple[object, ...]:
    p = ctx.principal
    return (p.user, p.token_kind, p.grants, p.scope, p.token_id, action, target.srn, target.owner)


class Ticket:
    """One authorized call in progress, from its decision to its one audit outcome."""

    def __init__(
        self,
        guard: Guard,
        ctx: RequestContext,
        action: str,
        target: Target,
        decision: Decision,
        params: dict[str, Any],
        parent: Ticket | None,
    ) -> None:
        self.guard = guard
        self.ctx = ctx
        self.action = action
        self.target = target
        self.decision = decision
        self.params = params
        self.parent = parent
        self.replayed: dict[str, Any] | None = None
        self.events: list[Event] = []
        self.checks: list[dict[str, Any]] = []
        self._changed_policy_facts: set[str] = set()
        self._changed_identities: set[str] = set()
        self._session: Session | None = None
        self._write = False
        self._event: AuditEvent | None = None
        self._committed = False
        self._denial: tuple[str, Target, Decision] | None = None
        self._done = False
        self._token: Token[Ticket | None] | None = None

    # -- acting ---------------------------------------------------------------------------------

    @property
    def session(self) -> Session:
        """The session of the open ``transaction()``."""
        if self._session is None:
            raise RuntimeError("ticket.session is only available inside ticket.transaction()")
        return self._session

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[Ticket]:
        """Open a database transaction for the call; a write transaction also carries its audit event."""
        if self._done:
            raise RuntimeError(f"the ticket for {self.action} is already finished")
        guard = self.guard
        records = write and self.parent is None and self._event is None and guard.enforcing
        with guard.db.write() if write else guard.db.read() as session:
            self._session, self._write = session, write
            try:
                if records and self.ctx.idempotency_key:
                    self.replayed = guard._replayed(session, self.ctx, self.action, self.params)
                yield self
                if write and guard.feed is not None:  # the other processes learn it with the commit
                    for team in sorted(self._changed_policy_facts):
                        guard.feed.publish("policy", team, session)
                    for user in sorted(self._changed_identities):
                        guard.feed.publish("identity", user, session)
                if records:
                    session.flush()  # the call's own writes first: the chain lock is held until the commit
                    self._event = guard._append(self._record(), session)
            finally:
                self._session = None
        if self._event is not None and records:
            guard._durable()
        if write:
            self._committed = True
            for team in self._changed_policy_facts:
                guard.engine.invalidate(team)
            if self._changed_policy_facts or self._changed_identities:
                guard.forget_decisions()
            self._changed_policy_facts.clear()
            self._changed_identities.clear()
            if self.parent is not None:
                self._publish_state()

    def check(self, target: Target, context: Mapping[str, Any] | None = None) -> None:
        """Re-authorize against the loaded resource (owner, tags); raise ``Forbidden`` if denied."""
        self.target = target
        if not self.guard.enforcing:
            return
        decision = self.guard.engine.decide(self.ctx.principal, self.action, target, context)
        if not decision.allowed:
            raise self._denied(self.action, target, decision)
        self.decision = decision

    def changes_policy_facts(self, team: str) -> None:
        """This call changes ``team``'s policy facts (exemptions, team, key or bucket policies):
        once its transaction commits, the policy engine reloads them from their sources and
        cached decisions are dropped."""
        self._changed_policy_facts.add(team)

    def changes_identity(self, user: str) -> None:
        """This call changes what ``user``'s credentials stand for (disabled, a membership or a
        token changed): once it commits, cached decisions are dropped here and, within a poll
        interval, authentications and decisions cached by every other process."""
        self._changed_identities.add(user)

    def replay(self, model: type[M]) -> M | None:
        """The stored result when this is a retry of an idempotent create, else ``None``."""
        return model.model_validate(self.replayed) if self.replayed is not None else None

    def result(self, entity: M) -> M:
        """Record ``entity`` as the call's result (kept for idempotent retries)."""
        key = self.ctx.idempotency_key
        if key and self._write and self.parent is None and self._session is not None:
            db = driver(self._session)
            db.execute(
                _STORE_RESULT,
                {
                    "principal": self.ctx.principal.user,
                    "key": key,
                    "action": self.action,
                    "request_hash": _request_hash(self.action, self.params),
                    "result": db.json(entity.model_dump(mode="json")),
                    "created_at": db.time(utcnow()),
                },
            )
        return entity

    def emit(self, event_name: str, /, **data: Any) -> None:
        """Queue a state event, published only if the call commits."""
        self.events.append(Event("state", event_name, self.target.srn, self.target.team, data))

    # -- the outcome ----------------------------------------------------------------------------

    def _denied(self, action: str, target: Target, decision: Decision) -> Forbidden:
        self._denial = (action, target, decision)
        detail = f"you are not allowed to {action} on {target.srn}"
        if decision.messages:
            detail += ": " + "; ".join(decision.messages)
        return Forbidden(detail, action=action, policies=list(decision.policies))

    def _record(self, error: BaseException | None = None) -> AuditRecord:
        decision, target = self.decision, self.target
        outcome, detail = _outcome_of(error) if error is not None else ("success", "")
        params = dict(self.params)
        if self.checks:
            params["checks"] = list(self.checks)
        verdict = "Allow" if decision.allowed else "Deny"
        if isinstance(error, Forbidden):
            # A refusal is a denial whoever made it: the policy engine here or a rule in a service.
            verdict, outcome = "Deny", "denied"
            if self._denial is not None:
                action, denied_target, decision = self._denial
                if action == self.action:
                    target = denied_target
                else:
                    params["denied"] = {"action": action, "resource": denied_target.srn}
        return self.guard._record(self.ctx, self.action, target, decision, params, verdict, outcome, detail)

    def finish(self, error: BaseException | None = None) -> None:
        """Record the call's one outcome (``error`` is what failed, if anything); idempotent.

        Fail closed: raises ``Unavailable`` if the event cannot be written.
        """
        if self._done:
            return
        self._done = True
        if self.parent is not None:
            if self._denial is not None and self.parent._denial is None:
                self.parent._denial = self._denial
            return
        guard = self.guard
        if not guard.enforcing or isinstance(error, _AuditWriteFailed):
            return
        if self._event is None:
            self._event = guard._append(self._record(error))
        elif error is not None:
            log.warning("%s on %s failed after its outcome was recorded: %r", self.action, self.target.srn, error)
        guard._publish(self._event)
        if self._committed or error is None:
            self._publish_state()

    def report_late(self, error: BaseException) -> None:
        """Record a failure found after the outcome was recorded (a stream whose later bytes fail
        their integrity check): an alarm beside the outcome, since the bytes before it were served."""
        if self.parent is not None or not self.guard.enforcing:
            return
        record = self._record(error)
        record.params["after_outcome"] = True
        self.guard._publish(self.guard._append(record))

    def _publish_state(self) -> None:
        for event in self.events:
            self.guard.bus.publish(event)
        self.events.clear()

    @contextmanager
    def acting(self) -> Iterator[Ticket]:
        """Act for a ticket that outlives this block (a stream): checks made inside are nested in
        it, and an error ends it with that error; on success it stays open for ``finish``."""
        token = _open.set(self)
        try:
            yield self
        except BaseException as exc:
            self.finish(exc)
            raise
        finally:
            _open.reset(token)

    def __enter__(self) -> Ticket:
        self._token = _open.set(self)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        if self._token is not None:
            try:
                _open.reset(self._token)
            except ValueError:  # exited in another context (a generator resumed elsewhere)
                _open.set(self.parent)
            self._token = None
        if isinstance(error, GeneratorExit):
            error = None
        self.finish(error)


class Guard:
    """The one door: decide, act, record exactly one outcome."""

    def __init__(
        self,
        db: Database,
        engine: PolicyEngine,
        audit: AuditLog,
        bus: EventBus,
        *,
        enforce: bool = True,
        feed: ChangeFeed | None = None,
    ) -> None:
        self.db = db
        self.engine = engine
        self.audit = audit
        self.bus = bus
        # ``enforce=False`` exists only so the control-plane benchmark can measure the cost of
        # security against the same app without it; `Platform` never builds one from config.
        self._enforce = enforce
        self.feed = feed
        self._cache: dict[tuple[object, ...], tuple[Decision, float]] = {}
        self._tables: dict[tuple[object, ...], tuple[tuple[Decision, ...], float]] = {}
        self._failing = False

    @property
    def enforcing(self) -> bool:
        return self._enforce

    def begin(
        self,
        ctx: RequestContext,
        action: str,
        target: Target,
        *,
        params: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = None,
        cache_seconds: float = 0.0,
        unseen: StrongroomError | None = None,
    ) -> Ticket:
        """Authorize ``action`` on ``target`` and return the ticket that records its one outcome.

        Use it as a context manager (the outcome is recorded when the block ends, from the
        exception that ended it, if any), or call ``ticket.finish(error)`` when the work ends
        (streams). Raises ``Forbidden`` (audited) if the call is denied.

        ``cache_seconds`` keeps an *allowed* decision that long for ``resume`` (high-rate
        streams such as the notebook proxy); denials are never cached.

        ``unseen`` is the error a missing resource answers (``NotFound``): a caller with team
        roles only, denied a resource of a team in which it holds none, gets exactly that answer, so existence
        does not leak across teams (the event still records the denial).
        """
        clean = dict(params or {})
        leaked = find_secret(clean)
        parent = _open.get()
        if parent is not None and (parent._done or parent.ctx.request_id != ctx.request_id):
            parent = None
        if leaked is not None:
            error = InvalidInput(
                f"{leaked} contains what looks like a Strongroom token; tokens are credentials and are never "
                "stored — remove it (and revoke the token if it was shared)",
                field=leaked,
            )
            if parent is None and self._enforce:
                self._mark_audited()
                redacted = {k: v for k, v in clean.items() if k != leaked}
                Ticket(self, ctx, action, target, _ALLOW_ALL, redacted, None).finish(error)
            raise error
        if not self._enforce:
            return Ticket(self, ctx, action, target, Decision(True, action, None, ()), clean, parent)
        decision = self.engine.decide(ctx.principal, action, target, context)
        if decision.allowed and cache_seconds > 0 and context is None:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[_cache_key(ctx, action, target)] = (decision, time.monotonic() + cache_seconds)
        ticket = Ticket(self, ctx, action, target, decision, clean, parent)
        if parent is not None:
            verdict = "Allow" if decision.allowed else "Deny"
            check: dict[str, Any] = {"action": action, "resource": target.srn, "decision": verdict}
            if clean:
                check["params"] = clean
            parent.checks.append(check)
        else:
            self._mark_audited()
        if not decision.allowed:
            denied = ticket._denied(action, target, decision)
            ticket.finish(denied)
            if (
                unseen is not None
                and target.team
                and all(g.team not in ("", target.team) for g in ctx.principal.grants)
            ):
                raise unseen from None
            raise denied
        return ticket

    def resume(
        self, ctx: RequestContext, action: str, target: Target, *, params: Mapping[str, Any] | None = None
    ) -> Ticket | None:
        """A ticket *covered* by a fresh allowed decision that ``begin(cache_seconds=...)`` kept
        and recorded (it writes no event of its own: a page's static assets under one session-open
        event), or ``None`` (then call ``begin``). ``None`` too while the audit log cannot be
        written, so the caller's ``begin`` fails closed. Touches only memory: an event loop may call it."""
        if not self._enforce or self._failing:
            return None
        clean = dict(params or {})
        cached = self._cache.get(_cache_key(ctx, action, target))
        if cached is None or cached[1] <= time.monotonic() or find_secret(clean) is not None:
            return None
        self._mark_audited()
        ticket = Ticket(self, ctx, action, target, cached[0], clean, None)
        ticket._done = True
        return ticket

    @staticmethod
    def decision_key(ctx: RequestContext, action: str, target: Target) -> tuple[object, ...]:
        """What a kept decision is kept under (one credential, action and target): a caller that
        lets one request decide while the others wait for that decision keys them by it."""
        return _cache_key(ctx, action, target)

    def forget_decisions(self) -> None:
        """Drop every cached decision (a policy, membership or token changed)."""
        self._cache.clear()
        self._tables.clear()

    def simulate(
        self, principal: Principal, action: str, target: Target, context: Mapping[str, Any] | None = None
    ) -> Decision:
        """What the policy engine would decide for ``principal``, without acting or recording
        (the policy simulator, which runs under a ticket of its own)."""
        return self.engine.decide(principal, action, target, context)

    def simulate_many(
        self,
        principal: Principal,
        actions: Sequence[str],
        target: Target,
        context: Mapping[str, Any] | None = None,
        *,
        cache_seconds: float = 0.0,
    ) -> list[Decision]:
        """``simulate`` for many actions on one target, decided in one batch (a permission table).

        ``cache_seconds`` keeps the table that long, or until ``forget_decisions`` (any policy,
        membership or token change, in any process): it is shown, never enforced.
        """
        p, t = principal, target
        key = (
            (p.user, p.token_kind, p.grants, p.scope),
            (t.srn, t.owner, tuple(sorted(t.tags.items())), t.policy_scope),
            tuple(actions),
            json.dumps(context, sort_keys=True),
        )
        cached = self._tables.get(key) if cache_seconds > 0 else None
        if cached is not None and cached[1] > time.monotonic():
            return list(cached[0])
        decisions = self.engine.decide_many(principal, actions, target, context)
        if cache_seconds > 0:
            if len(self._tables) > 1_000:
                self._tables.clear()
            self._tables[key] = (tuple(decisions), time.monotonic() + cache_seconds)
        return decisions

    # -- connections ----------------------------------------------------------------------------

    @contextmanager
    def connection(self) -> Iterator[None]:
        """Scope one connection (an HTTP request or a WebSocket session) for ``record_unhandled``."""
        token = _request.set(_Request())
        try:
            yield
        finally:
            _request.reset(token)

    def handled(self) -> bool:
        """Whether the current connection's outcome is (or will be) recorded by a ticket."""
        state = _request.get()
        return state is not None and state.audited

    def record_unhandled(
        self,
        principal: Principal | None,
        action: str,
        resource: str,
        status: int,
        *,
        request_id: str,
        source: str,
        user_agent: str,
        params: Mapping[str, Any],
        team: str = "",
        error: StrongroomError | None = None,
    ) -> None:
        """Record a connection that no ticket recorded (rejected before reaching a service:
        unauthenticated, malformed, an unknown route). Fail closed."""
        state = _request.get()
        if state is not None:
            if state.audited:
                return
            state.audited = True
        principal = principal or Principal.anonymous()
        record = AuditRecord(
            principal=principal.user,
            token_kind=principal.token_kind,
            role=",".join(str(g) for g in principal.grants),
            action=action[:128],
            resource=resource[:1024],
            team=team,
            decision="Deny" if status in (401, 403) else "Invalid",
            outcome=error.slug if error is not None else str(status or "aborted"),
            error=error.detail[:500] if error is not None else "",
            request_id=request_id,
            source=source,
            user_agent=user_agent,
            params=dict(params),
        )
        self._publish(self._append(record))

    def _mark_audited(self) -> None:
        state = _request.get()
        if state is not None:
            state.audited = True

    # -- writing --------------------------------------------------------------------------------

    def _record(
        self,
        ctx: RequestContext,
        action: str,
        target: Target,
        decision: Decision,
        params: Mapping[str, Any],
        verdict: str,
        outcome: str,
        error: str,
    ) -> AuditRecord:
        grant = decision.grant
        return AuditRecord(
            principal=ctx.principal.user,
            token_kind=ctx.principal.token_kind,
            role=grant.role if grant else ",".join(str(g) for g in ctx.principal.grants),
            team=(grant.team if grant and grant.team else target.team),
            action=action,
            resource=target.srn,
            decision=verdict,
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
            if session is None:
                event = self.audit.append_standalone(record)
            else:  # the transaction's last statement (see ``Ticket.transaction``)
                event = self.audit.append(session, record, last=True)
        except Exception as exc:  # fail closed: no audit event, no call
            self._failed()
            raise _AuditWriteFailed("the audit log could not be written; the call was not performed") from exc
        self._failing = False
        return event

    def _durable(self) -> None:
        """Wait for the committed event to be on disk before the call answers (fail closed)."""
        try:
            self.audit.make_durable()
        except Exception as exc:
            self._failed()
            raise _AuditWriteFailed("the audit log could not be made durable; the outcome is unknown") from exc

    def _failed(self) -> None:
        # Cached decisions cover calls with no event of their own: none until the log is writable.
        self._failing = True
        self._cache.clear()

    def _publish(self, event: AuditEvent) -> None:
        if self.bus.wanted("audit"):
            self.bus.publish(Event("audit", event.action, event.resource, event.team, event.model_dump(mode="json")))

    def _replayed(
        self, session: Session, ctx: RequestContext, action: str, params: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        db = driver(session)
        found = db.execute(_FIND_RESULT, {"principal": ctx.principal.user, "key": ctx.idempotency_key})
        if not found:
            return None
        stored_action, request_hash, result = found[0]
        if stored_action != action or request_hash != _request_hash(action, params):
            raise Conflict(
                "this Idempotency-Key was already used for a different request; use a new key",
                field="Idempotency-Key",
            )
        return dict(db.loaded(result))
