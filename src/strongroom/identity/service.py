"""Identity service: users, teams, memberships, API tokens, sessions, execution roles."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import time
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from strongroom.core.context import (
    PLATFORM_ROLES,
    ROLES,
    TEAM_ROLES,
    Grant,
    Principal,
    RequestContext,
    TokenKind,
)
from strongroom.core.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthenticated
from strongroom.core.names import check_name
from strongroom.db.base import add_new, utcnow
from strongroom.db.engine import Database
from strongroom.guard import Guard
from strongroom.identity import tokens
from strongroom.identity.db import ApiTokenRow, MembershipRow, TeamRow, UserRow
from strongroom.identity.models import (
    ApiToken,
    IssuedToken,
    Membership,
    SessionToken,
    Team,
    User,
    WhoAmI,
)
from strongroom.policy.engine import PolicyEngine, Target, TeamFacts

PLATFORM = Target("platform", "", "strongroom")
GUARDRAILS = ("network-isolation", "volume-kms-key")
_LAST_USED_RESOLUTION = dt.timedelta(seconds=60)


def user_target(name: str) -> Target:
    return Target("user", "", name, owner=name)


def team_target(team: str) -> Target:
    return Target("team", team, team)


def _check_role(role: str, team: str) -> None:
    if role not in ROLES:
        raise InvalidInput(f"role {role!r} is unknown; roles are {', '.join(ROLES)}", field="role")
    if role in TEAM_ROLES and not team:
        raise InvalidInput(f"{role} is a team role: give the team", field="team")
    if role in PLATFORM_ROLES and team:
        raise InvalidInput(f"{role} is a platform-wide role: give no team", field="team")


class IdentityService:
    def __init__(
        self,
        db: Database,
        guard: Guard,
        engine: PolicyEngine,
        *,
        token_key: bytes,
        session_key: bytes,
        session_ttl: dt.timedelta,
        execution_ttl: dt.timedelta,
        default_token_ttl: dt.timedelta,
        auth_cache_seconds: float = 5.0,
    ) -> None:
        self.db = db
        self.guard = guard
        self.engine = engine
        self._token_key = token_key
        self._session_key = session_key
        self.session_ttl = session_ttl
        self.execution_ttl = execution_ttl
        self.default_token_ttl = default_token_ttl
        self.auth_cache_ttl = auth_cache_seconds
        self._auth_cache: dict[bytes, tuple[Principal, float]] = {}
        self._holds_cache: dict[tuple[str, str, str, str], float] = {}
        self._generation = 0  # moves on with every identity change: a result computed before it is not cached

    def policy_facts(self, team: str) -> TeamFacts:
        """A policy source: the team's guardrail exemptions."""
        with self.db.read() as session:
            row = session.get(TeamRow, team)
            return TeamFacts(exemptions=frozenset(row.guardrail_exemptions or []) if row is not None else frozenset())

    # -- users ------------------------------------------------------------------------------

    def create_user(self, ctx: RequestContext, name: str, display_name: str = "", email: str = "") -> User:
        check_name(name, "name")
        params = {"name": name, "display_name": display_name, "email": email}
        with self.guard.begin(ctx, "CreateUser", user_target(name), params=params) as call, call.transaction():
            if (replayed := call.replay(User)) is not None:
                return replayed
            row = UserRow(
                name=name,
                display_name=display_name,
                email=email,
                disabled=False,
                created_at=utcnow(),
                created_by=ctx.principal.user,
            )
            add_new(call.session, row, Conflict(f"user {name!r} already exists", field="name"))
            return call.result(row.to_entity())

    def list_users(self, ctx: RequestContext) -> list[User]:
        with self.guard.begin(ctx, "ListUsers", user_target("*")) as call, call.transaction(write=False):
            return [r.to_entity() for r in call.session.scalars(select(UserRow).order_by(UserRow.name))]

    def describe_user(self, ctx: RequestContext, name: str) -> tuple[User, list[Membership]]:
        with self.guard.begin(ctx, "DescribeUser", user_target(name)) as call, call.transaction(write=False):
            row = call.session.get(UserRow, name)
            if row is None:
                raise NotFound(f"user {name!r} does not exist", field="name")
            memberships = call.session.scalars(select(MembershipRow).where(MembershipRow.user == name))
            return row.to_entity(), [m.to_entity() for m in memberships]

    def set_user_disabled(self, ctx: RequestContext, name: str, disabled: bool) -> User:
        with (
            self.guard.begin(ctx, "DisableUser", user_target(name), params={"disabled": disabled}) as call,
            call.transaction(),
        ):
            row = call.session.get(UserRow, name)
            if row is None:
                raise NotFound(f"user {name!r} does not exist", field="name")
            row.disabled = disabled
            call.changes_identity(name)
            if disabled:
                call.emit("UserDisabled", user=name)
            entity = row.to_entity()
        self.forget_authentications()
        return entity

    # -- teams ------------------------------------------------------------------------------

    def create_team(self, ctx: RequestContext, name: str, description: str = "") -> Team:
        check_name(name, "name")
        params = {"name": name, "description": description}
        with self.guard.begin(ctx, "CreateTeam", team_target(name), params=params) as call, call.transaction():
            if (replayed := call.replay(Team)) is not None:
                return replayed
            if call.session.get(TeamRow, name) is not None:
                raise Conflict(f"team {name!r} already exists", field="name")
            row = TeamRow(
                name=name,
                description=description,
                guardrail_exemptions=[],
                created_at=utcnow(),
                created_by=ctx.principal.user,
            )
            call.session.add(row)
            call.emit("TeamCreated", team=name)
            return call.result(row.to_entity())

    def list_teams(self, ctx: RequestContext) -> list[Team]:
        """Every team for PlatformAdmin and Auditor; otherwise the caller's own teams."""
        target = Target("team", "", "*", owner=ctx.principal.user)
        with self.guard.begin(ctx, "ListTeams", target) as call, call.transaction(write=False):
            rows = list(call.session.scalars(select(TeamRow).order_by(TeamRow.name)))
            if call.decision.grant and call.decision.grant.role in PLATFORM_ROLES:
                return [r.to_entity() for r in rows]
            mine = {g.team for g in ctx.principal.grants}
            return [r.to_entity() for r in rows if r.name in mine]

    def describe_team(self, ctx: RequestContext, name: str) -> tuple[Team, list[Membership]]:
        with self.guard.begin(ctx, "DescribeTeam", team_target(name)) as call, call.transaction(write=False):
            row = call.session.get(TeamRow, name)
            if row is None:
                raise NotFound(f"team {name!r} does not exist", field="team")
            members = call.session.scalars(
                select(MembershipRow).where(MembershipRow.team == name).order_by(MembershipRow.user)
            )
            return row.to_entity(), [m.to_entity() for m in members]

    def set_guardrail_exemptions(self, ctx: RequestContext, team: str, exemptions: Iterable[str]) -> Team:
        wanted = sorted(set(exemptions))
        for item in wanted:
            if item not in GUARDRAILS:
                raise InvalidInput(
                    f"{item!r} is not an exemptible guardrail; choose from {', '.join(GUARDRAILS)}",
                    field="exemptions",
                )
        with (
            self.guard.begin(ctx, "SetGuardrailExemptions", team_target(team), params={"exemptions": wanted}) as call,
            call.transaction(),
        ):
            row = call.session.get(TeamRow, team)
            if row is None:
                raise NotFound(f"team {team!r} does not exist", field="team")
            row.guardrail_exemptions = wanted
            call.emit("GuardrailExemptionsChanged", exemptions=wanted)
            call.changes_policy_facts(team)
            return row.to_entity()

    # -- memberships ------------------------------------------------------------------------

    def add_member(self, ctx: RequestContext, team: str, user: str, role: str) -> Membership:
        _check_role(role, "x")
        if role not in TEAM_ROLES:
            raise InvalidInput(f"{role} is not a team role; team roles are {', '.join(TEAM_ROLES)}", field="role")
        params = {"team": team, "user": user, "role": role}
        with self.guard.begin(ctx, "AddTeamMember", team_target(team), params=params) as call, call.transaction():
            if (replayed := call.replay(Membership)) is not None:
                return replayed
            self._require_team_and_user(call.session, team, user)
            membership = call.result(self._add_membership(call.session, user, team, role))
            call.changes_identity(user)
        self.forget_authentications()
        return membership

    def grant_platform_role(self, ctx: RequestContext, user: str, role: str) -> Membership:
        _check_role(role, "")
        with (
            self.guard.begin(ctx, "AddTeamMember", PLATFORM, params={"user": user, "role": role}) as call,
            call.transaction(),
        ):
            if call.session.get(UserRow, user) is None:
                raise NotFound(f"user {user!r} does not exist", field="user")
            membership = self._add_membership(call.session, user, "", role)
            call.changes_identity(user)
        self.forget_authentications()
        return membership

    @staticmethod
    def _require_team_and_user(session: Session, team: str, user: str) -> None:
        if session.get(TeamRow, team) is None:
            raise NotFound(f"team {team!r} does not exist", field="team")
        if session.get(UserRow, user) is None:
            raise NotFound(f"user {user!r} does not exist", field="user")

    @staticmethod
    def _add_membership(session: Session, user: str, team: str, role: str) -> Membership:
        existing = session.scalars(
            select(MembershipRow).where(
                MembershipRow.user == user, MembershipRow.team == team, MembershipRow.role == role
            )
        ).first()
        if existing is not None:
            raise Conflict(f"{user} already holds {role}" + (f" in {team}" if team else ""), field="role")
        row = MembershipRow(user=user, team=team, role=role, created_at=utcnow())
        session.add(row)
        return row.to_entity()

    def remove_member(self, ctx: RequestContext, team: str, user: str, role: str) -> None:
        target = team_target(team) if team else PLATFORM
        with (
            self.guard.begin(
                ctx, "RemoveTeamMember", target, params={"team": team, "user": user, "role": role}
            ) as call,
            call.transaction(),
        ):
            row = call.session.scalars(
                select(MembershipRow).where(
                    MembershipRow.user == user, MembershipRow.team == team, MembershipRow.role == role
                )
            ).first()
            if row is None:
                raise NotFound(f"{user} does not hold {role}" + (f" in {team}" if team else ""), field="user")
            call.session.delete(row)
            call.emit("TeamMemberRemoved", user=user, team=team, role=role)
            call.changes_identity(user)
        self.forget_authentications()

    # -- API tokens -------------------------------------------------------------------------

    def create_token(
        self, ctx: RequestContext, name: str, user: str | None = None, ttl_days: int | None = None
    ) -> IssuedToken:
        owner = user or ctx.principal.user
        check_name(name, "name")
        ttl = dt.timedelta(days=ttl_days) if ttl_days is not None else self.default_token_ttl
        if ttl_days is not None and not 1 <= ttl_days <= 3650:
            raise InvalidInput("ttl_days must be between 1 and 3650", field="ttl_days")
        params = {"name": name, "user": owner, "ttl_days": ttl.days}
        with (
            self.guard.begin(ctx, "CreateApiToken", Target("token", "", name, owner=owner), params=params) as call,
            call.transaction(),
        ):
            if call.session.get(UserRow, owner) is None:
                raise NotFound(f"user {owner!r} does not exist", field="user")
            return self._issue(call.session, owner, name, ttl)

    def _issue(self, session: Session, owner: str, name: str, ttl: dt.timedelta) -> IssuedToken:
        token_id, secret, full = tokens.new_api_token()
        now = utcnow()
        row = ApiTokenRow(
            id=token_id,
            user=owner,
            name=name,
            secret_hash=tokens.hash_secret(self._token_key, secret),
            created_at=now,
            expires_at=now + ttl,
        )
        session.add(row)
        return IssuedToken(token=row.to_entity(), secret=full)

    def list_tokens(self, ctx: RequestContext, user: str | None = None) -> list[ApiToken]:
        owner = user or ctx.principal.user
        with (
            self.guard.begin(ctx, "ListApiTokens", Target("token", "", "*", owner=owner)) as call,
            call.transaction(write=False),
        ):
            rows = call.session.scalars(
                select(ApiTokenRow).where(ApiTokenRow.user == owner).order_by(ApiTokenRow.created_at)
            )
            return [r.to_entity() for r in rows]

    def revoke_token(self, ctx: RequestContext, token_id: str) -> ApiToken:
        with self.db.read() as session:
            found = session.get(ApiTokenRow, token_id)
            owner = found.user if found else ctx.principal.user
        with (
            self.guard.begin(ctx, "RevokeApiToken", Target("token", "", token_id, owner=owner)) as call,
            call.transaction(),
        ):
            row = call.session.get(ApiTokenRow, token_id)
            if row is None:
                raise NotFound(f"token {token_id!r} does not exist", field="token_id")
            if row.revoked_at is None:
                row.revoked_at = utcnow()
                call.emit("ApiTokenRevoked", user=row.user, token_id=token_id)
                call.changes_identity(row.user)
            entity = row.to_entity()
        self.forget_authentications()
        return entity

    # -- sessions and execution roles -------------------------------------------------------

    def assume_role(self, ctx: RequestContext, role: str, team: str = "") -> SessionToken:
        _check_role(role, team)
        target = Target("role", team, role, owner=ctx.principal.user)
        with (
            self.guard.begin(ctx, "AssumeRole", target, params={"role": role, "team": team}) as call,
            call.transaction(write=False),
        ):
            if ctx.principal.token_kind != "api":
                raise Forbidden("assume a role with your API token, not with a session or execution token")
            if Grant(role, team) not in ctx.principal.grants:
                where = f" in team {team}" if team else ""
                raise Forbidden(f"you do not hold the role {role}{where}", field="role")
            return self._session(
                ctx.principal.user, role, team, "", "session", self.session_ttl, parent=ctx.principal.token_id
            )

    def create_execution_token(self, ctx: RequestContext, user: str, role: str, team: str, scope: str) -> SessionToken:
        """A short-lived token for a notebook or job: the intersection of user, team and resource."""
        _check_role(role, team)
        target = Target("execution-role", team, scope.rsplit("/", 1)[-1] or "x", owner=user)
        params = {"user": user, "role": role, "team": team, "scope": scope}
        with (
            self.guard.begin(ctx, "CreateExecutionToken", target, params=params) as call,
            call.transaction(write=False),
        ):
            held = call.session.scalars(
                select(MembershipRow).where(
                    MembershipRow.user == user, MembershipRow.team == team, MembershipRow.role == role
                )
            ).first()
            if held is None:
                raise Forbidden(f"{user} does not hold {role} in {team}", field="role")
            return self._session(user, role, team, scope, "execution", self.execution_ttl)

    def _session(
        self, user: str, role: str, team: str, scope: str, kind: str, ttl: dt.timedelta, *, parent: str = ""
    ) -> SessionToken:
        expires = utcnow() + ttl
        claims = tokens.SessionClaims(
            kind=kind,
            user=user,
            role=role,
            team=team,
            scope=scope,
            expires_at=expires,
            token_id=secrets.token_hex(8),
            parent=parent,
        )
        return SessionToken(
            token=tokens.sign_session(self._session_key, claims),
            kind=kind,
            user=user,
            role=role,
            team=team,
            scope=scope,
            expires_at=expires,
        )

    def whoami(self, ctx: RequestContext) -> WhoAmI:
        p = ctx.principal
        with (
            self.guard.begin(ctx, "WhoAmI", Target("user", "", p.user, owner=p.user)) as call,
            call.transaction(write=False),
        ):
            return WhoAmI(user=p.user, token_kind=p.token_kind, grants=[str(g) for g in p.grants], scope=p.scope)

    # -- authentication ---------------------------------------------------------------------

    def cached_principal(self, token: str) -> Principal | None:
        """The principal for ``token`` if it was authenticated moments ago (no database access)."""
        entry = self._auth_cache.get(hashlib.sha256(token.encode()).digest())
        if entry is None or entry[1] < time.monotonic():
            return None
        return entry[0]

    def authenticate(self, token: str) -> Principal:
        """Resolve a bearer token to a principal, or raise ``Unauthenticated``.

        Successful results are cached for a few seconds; any change to users, memberships or
        tokens clears the cache, so revocation takes effect at once in this process.
        """
        cached = self.cached_principal(token)
        if cached is not None:
            return cached
        generation = self._generation
        if token.startswith(tokens.SESSION_PREFIX):
            principal = self._authenticate_session(token)
        elif token.startswith(tokens.API_PREFIX):
            principal = self._authenticate_api(token)
        else:
            raise Unauthenticated("unrecognised token; expected an API token (sr_...) or a session token (srs_...)")
        if len(self._auth_cache) > 10_000:
            self._auth_cache.clear()
        if generation == self._generation:
            self._auth_cache[hashlib.sha256(token.encode()).digest()] = (
                principal,
                time.monotonic() + self.auth_cache_ttl,
            )
        return principal

    def forget_authentications(self) -> None:
        """Drop cached authentications and standings (after any identity change), synchronously."""
        self._generation += 1
        self._auth_cache.clear()
        self._holds_cache.clear()

    def still_holds(self, user: str, role: str, team: str, parent_token: str = "") -> bool:
        """Whether a derived credential still stands: ``user`` is enabled, holds ``role`` in ``team``,
        and the API token it was derived from (``parent_token``, if any) is neither revoked nor expired.

        What notebook cookies, pre-signed links and open WebSockets are checked against. A true
        answer is cached for a few seconds; every identity change clears the cache at once.
        """
        key = (user, role, team, parent_token)
        cached = self._holds_cache.get(key)
        if cached is not None and cached > time.monotonic():
            return True
        generation = self._generation
        with self.db.read() as session:
            refused = self._refusal(session, user, role, team, parent_token)
        if refused is not None:
            return False
        if len(self._holds_cache) > 10_000:
            self._holds_cache.clear()
        if generation == self._generation:
            self._holds_cache[key] = time.monotonic() + self.auth_cache_ttl
        return True

    def _refusal(self, session: Session, user: str, role: str, team: str, parent_token: str) -> str | None:
        """Why a credential derived from ``parent_token`` for ``user`` acting as ``role`` no longer stands."""
        account = session.get(UserRow, user)
        if account is None or account.disabled:
            return "this user is disabled"
        if Grant(role, team) not in self._grants(session, user):
            return f"{user} no longer holds {role}" + (f" in {team}" if team else "") + "; the session ended"
        if parent_token:
            parent = session.get(ApiTokenRow, parent_token)
            if parent is None or parent.revoked_at is not None:
                return "the API token this session was made with was revoked"
            if parent.expires_at <= utcnow():
                return "the API token this session was made with expired"
        return None

    def team_exists(self, team: str) -> bool:
        """Whether ``team`` exists (for the policy service, which does not read identity tables)."""
        with self.db.read() as session:
            return session.get(TeamRow, team) is not None

    def grants_of(self, user: str) -> tuple[Grant, ...] | None:
        """The roles ``user`` holds, or ``None`` if there is no such user (for the policy simulator)."""
        with self.db.read() as session:
            if session.get(UserRow, user) is None:
                return None
            return self._grants(session, user)

    def _grants(self, session: Session, user: str) -> tuple[Grant, ...]:
        rows = session.execute(select(MembershipRow.role, MembershipRow.team).where(MembershipRow.user == user)).all()
        return tuple(sorted(Grant(role, team) for role, team in rows))

    def _authenticate_api(self, token: str) -> Principal:
        token_id, secret = tokens.parse_api_token(token)
        now = utcnow()
        with self.db.read() as session:
            row = session.get(ApiTokenRow, token_id)
            if row is None or not tokens.secret_matches(self._token_key, secret, row.secret_hash):
                raise Unauthenticated("invalid API token")
            if row.revoked_at is not None:
                raise Unauthenticated("this API token was revoked")
            if row.expires_at <= now:
                raise Unauthenticated("this API token expired; ask for a new one")
            user = session.get(UserRow, row.user)
            if user is None or user.disabled:
                raise Unauthenticated("this user is disabled")
            grants = self._grants(session, row.user)
            stale = row.last_used_at is None or now - row.last_used_at > _LAST_USED_RESOLUTION
            owner = row.user
        if stale:
            with self.db.write() as session:
                fresh = session.get(ApiTokenRow, token_id)
                if fresh is not None:
                    fresh.last_used_at = now
        return Principal(user=owner, token_kind="api", grants=grants, token_id=token_id)

    def _authenticate_session(self, token: str) -> Principal:
        claims = tokens.verify_session(self._session_key, token, utcnow())
        with self.db.read() as session:
            refused = self._refusal(session, claims.user, claims.role, claims.team, claims.parent)
        if refused is not None:
            raise Unauthenticated(refused)
        kind: TokenKind = "execution" if claims.kind == "execution" else "session"
        return Principal(
            user=claims.user,
            token_kind=kind,
            grants=(Grant(claims.role, claims.team),),
            token_id=claims.token_id,
            scope=claims.scope,
            parent_token=claims.parent,
        )

    # -- bootstrap --------------------------------------------------------------------------

    def bootstrap_admin(self, name: str = "admin") -> IssuedToken:
        """Create the first PlatformAdmin and its token (``strongroom init``), audited as the system."""
        ctx = RequestContext.system()
        with (
            self.guard.begin(ctx, "BootstrapPlatform", user_target(name), params={"admin": name}) as call,
            call.transaction(),
        ):
            _enable_platform_admin(call.session, name)
            return self._issue(call.session, name, "bootstrap", self.default_token_ttl)

    def recover_admin(self, name: str = "admin", ttl: dt.timedelta | None = None) -> tuple[IssuedToken, list[str]]:
        """Give ``name`` a new PlatformAdmin token and revoke its old ones (``strongroom admin recover``).

        Run on the host by whoever holds the root key, without a token: the user is created or
        enabled again and holds PlatformAdmin afterwards. Audited as the platform itself, like
        ``bootstrap_admin``. Returns the new token and the ids of the tokens it revoked.
        """
        check_name(name, "name")
        with self.db.read() as session:
            old = list(
                session.scalars(
                    select(ApiTokenRow.id).where(ApiTokenRow.user == name, ApiTokenRow.revoked_at.is_(None))
                )
            )
        params = {"admin": name, "revoked": old}
        with (
            self.guard.begin(RequestContext.system(), "RecoverPlatformAdmin", user_target(name), params=params) as call,
            call.transaction(),
        ):
            _enable_platform_admin(call.session, name)
            now = utcnow()
            for row in call.session.scalars(select(ApiTokenRow).where(ApiTokenRow.id.in_(old))):
                row.revoked_at = now
                call.emit("ApiTokenRevoked", user=name, token_id=row.id)
            issued = self._issue(call.session, name, "recovered", ttl or self.default_token_ttl)
            call.changes_identity(name)
        self.forget_authentications()
        return issued, old


def _enable_platform_admin(session: Session, name: str) -> None:
    """``name`` exists, is enabled and holds PlatformAdmin (created by the system if missing)."""
    user = session.get(UserRow, name)
    if user is None:
        session.add(
            UserRow(
                name=name,
                display_name="Platform administrator",
                email="",
                disabled=False,
                created_at=utcnow(),
                created_by="system",
            )
        )
        session.flush()
    else:
        user.disabled = False
    held = select(MembershipRow).where(
        MembershipRow.user == name, MembershipRow.team == "", MembershipRow.role == "PlatformAdmin"
    )
    if session.scalars(held).first() is None:
        session.add(MembershipRow(user=name, team="", role="PlatformAdmin", created_at=utcnow()))
