"""Team policy attachments and the policy simulator."""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from typing import Any, Protocol

from sqlalchemy import select

from strongroom.core.context import Grant, Principal, RequestContext
from strongroom.core.errors import Conflict, InvalidInput, NotFound
from strongroom.core.names import Srn, check_name
from strongroom.db.base import utcnow
from strongroom.db.engine import Database
from strongroom.guard import Guard
from strongroom.policy.db import PolicyAttachmentRow
from strongroom.policy.engine import PolicyEngine, Target, TeamFacts
from strongroom.policy.models import PolicyAttachment, SimulationResult

MAX_POLICY_BYTES = 64 * 1024


def _entity(row: PolicyAttachmentRow) -> PolicyAttachment:
    return PolicyAttachment.model_validate(row, from_attributes=True)


class Directory(Protocol):
    """What the policy service needs to know of identities (``IdentityService`` is one)."""

    def team_exists(self, team: str) -> bool:
        """Whether ``team`` exists."""
        ...

    def grants_of(self, user: str) -> tuple[Grant, ...] | None:
        """The roles ``user`` holds, or ``None`` if there is no such user."""
        ...


class PolicyService:
    def __init__(self, db: Database, guard: Guard, engine: PolicyEngine, directory: Directory) -> None:
        self.db = db
        self.guard = guard
        self.engine = engine
        self.directory = directory

    def policy_facts(self, team: str) -> TeamFacts:
        """A policy source: the team's attached policies."""
        with self.db.read() as session:
            rows = session.scalars(select(PolicyAttachmentRow).where(PolicyAttachmentRow.team == team))
            return TeamFacts(policies={r.name: r.policy for r in rows})

    def attach(self, ctx: RequestContext, team: str, name: str, policy: str, description: str = "") -> PolicyAttachment:
        check_name(team, "team")
        check_name(name, "name")
        if not isinstance(policy, str) or not policy.strip():
            raise InvalidInput("policy text is empty", field="policy")
        if len(policy.encode()) > MAX_POLICY_BYTES:
            raise InvalidInput(f"policy text is over {MAX_POLICY_BYTES} bytes", field="policy")
        params = {"team": team, "name": name, "policy": policy, "description": description}
        target = Target("policy", team, name)
        with self.guard.begin(ctx, "AttachTeamPolicy", target, params=params) as call, call.transaction():
            if (replayed := call.replay(PolicyAttachment)) is not None:
                return replayed
            self.engine.validate_team_policy(team, name, policy)
            if not self.directory.team_exists(team):
                raise NotFound(f"team {team!r} does not exist", field="team")
            exists = call.session.scalars(
                select(PolicyAttachmentRow).where(PolicyAttachmentRow.team == team, PolicyAttachmentRow.name == name)
            ).first()
            if exists is not None:
                raise Conflict(f"team {team} already has a policy named {name!r}; detach it first", field="name")
            row = PolicyAttachmentRow(
                team=team,
                name=name,
                policy=policy,
                description=description,
                created_by=ctx.principal.user,
                created_at=utcnow(),
            )
            call.session.add(row)
            call.emit("TeamPolicyAttached", name=name)
            call.changes_policy_facts(team)
            return call.result(_entity(row))

    def detach(self, ctx: RequestContext, team: str, name: str) -> None:
        with (
            self.guard.begin(
                ctx, "DetachTeamPolicy", Target("policy", team, name), params={"team": team, "name": name}
            ) as call,
            call.transaction(),
        ):
            row = call.session.scalars(
                select(PolicyAttachmentRow).where(PolicyAttachmentRow.team == team, PolicyAttachmentRow.name == name)
            ).first()
            if row is None:
                raise NotFound(f"team {team} has no policy named {name!r}", field="name")
            call.session.delete(row)
            call.emit("TeamPolicyDetached", name=name)
            call.changes_policy_facts(team)

    def list(self, ctx: RequestContext, team: str) -> list[PolicyAttachment]:
        with (
            self.guard.begin(ctx, "ListTeamPolicies", Target("policy", team, "*")) as call,
            call.transaction(write=False),
        ):
            rows = call.session.scalars(
                select(PolicyAttachmentRow).where(PolicyAttachmentRow.team == team).order_by(PolicyAttachmentRow.name)
            )
            return [_entity(r) for r in rows]

    def role_permissions(self, ctx: RequestContext, acting_as: str) -> builtins.list[SimulationResult]:
        """What a role the caller holds (``Role@team``) may do on its team's resources that the
        caller owns, action by action, for a workload that meets the guardrails: the effective
        permissions of the execution role a notebook or job of the caller's acts with, and the
        policies that decide each one.

        Raises:
            InvalidInput: ``acting_as`` is not a team role the caller holds.
        """
        role, _, team = acting_as.partition("@")
        user = ctx.principal.user
        target = Target("role", team, role or "x", owner=user)
        with self.guard.begin(ctx, "DescribeRolePermissions", target, params={"acting_as": acting_as}):
            held = self.directory.grants_of(user) or ()
            if not team or Grant(role, team) not in held:
                raise InvalidInput(f"you do not hold the team role {acting_as!r}", field="acting_as")
            execution = Principal(user=user, token_kind="execution", grants=(Grant(role, team),))
            workload = {"network_isolation": True, "volume_kms_key": f"{team}-key"}
            actions = sorted(a for a in self.engine.actions if not a.endswith("Actions"))
            owned = Target("resource", team, "*", owner=user)
            # Kept a minute or until a policy, membership or token changes: the page is read often.
            decisions = self.guard.simulate_many(execution, actions, owned, workload, cache_seconds=60)
            return [
                SimulationResult(
                    decision="Allow" if decision.allowed else "Deny",
                    principal=user,
                    action=decision.action,
                    resource=f"srn:strongroom:{team}:*",
                    acting_as=acting_as,
                    determining_policies=list(decision.policies),
                    messages=list(decision.messages),
                    explanation=decision.explain(),
                    context=workload,
                )
                for decision in decisions
            ]

    def simulate(
        self,
        ctx: RequestContext,
        principal: str,
        action: str,
        resource: str,
        *,
        context: Mapping[str, Any] | None = None,
        acting_as: str | None = None,
        owner: str = "",
        tags: Mapping[str, str] | None = None,
        token_kind: str = "api",
    ) -> SimulationResult:
        """What would the engine decide for ``principal`` doing ``action`` on ``resource``?"""
        srn = Srn.parse(resource, "resource")
        if action not in self.engine.actions:
            raise InvalidInput(f"action {action!r} is not defined; see `strongroom policy actions`", field="action")
        if token_kind not in ("api", "session", "execution"):
            raise InvalidInput("token_kind must be api, session or execution", field="token_kind")
        extra = dict(context or {})
        params = {"principal": principal, "action": action, "resource": resource, "context": extra}
        with self.guard.begin(ctx, "SimulatePolicy", Target("policy", srn.team, "simulation"), params=params):
            held = self.directory.grants_of(principal)
            if held is None:
                raise NotFound(f"user {principal!r} does not exist", field="principal")
            grants = held
            if acting_as:
                role, _, team = acting_as.partition("@")
                wanted = Grant(role, team)
                if wanted not in grants:
                    raise InvalidInput(f"{principal} does not hold {acting_as}", field="acting_as")
                grants = (wanted,)
            simulated = Principal(user=principal, token_kind=token_kind, grants=grants)  # type: ignore[arg-type]
            target = Target(srn.kind, srn.team, srn.name, owner=owner, tags=dict(tags or {}))
            try:
                decision = self.guard.simulate(simulated, action, target, extra)
            except Exception as exc:
                raise InvalidInput(f"the context does not fit the schema: {exc}", field="context") from exc
            return SimulationResult(
                decision="Allow" if decision.allowed else "Deny",
                principal=principal,
                action=action,
                resource=resource,
                acting_as=str(decision.grant) if decision.grant else None,
                determining_policies=list(decision.policies),
                messages=list(decision.messages),
                explanation=decision.explain(),
                context=extra,
            )
