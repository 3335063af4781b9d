"""Web console sessions: a browser signs in once (an API token, or single sign-on) and holds a
random cookie; the session it stands for lives in the database.

Every request re-reads the session, the user, the API token it was opened with and the user's
roles, so signing out, revoking that token, disabling the user or removing a role ends (or
narrows) the session at once, in every process of the platform. The cookie's secret is stored only
as a keyed hash; a CSRF token is derived from the session id.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import select, update

from strongroom.core.context import ROLES, Grant, Principal, RequestContext
from strongroom.core.errors import Forbidden, InvalidInput, Unauthenticated
from strongroom.db.base import utcnow
from strongroom.db.engine import Database
from strongroom.guard import Guard
from strongroom.identity.db import ApiTokenRow, ConsoleSessionRow, MembershipRow, UserRow
from strongroom.policy.engine import Target

COOKIE_PREFIX = "src_"
_TOUCH_RESOLUTION = dt.timedelta(seconds=30)


@dataclass(frozen=True)
class ConsoleSession:
    """A signed-in browser, as one request sees it."""

    id: str
    user: str
    via: str
    role: str  # the role switched to; "" acts with every role held
    team: str
    held: tuple[Grant, ...]  # every role the user holds now
    expires_at: dt.datetime
    csrf: str
    principal: Principal

    @property
    def acting_as(self) -> str:
        return str(Grant(self.role, self.team)) if self.role else ""


def _session_target(user: str, session_id: str) -> Target:
    return Target("console-session", "", session_id, owner=user)


class ConsoleSessions:
    """Open, resolve, narrow and close console sessions (``strongroom.console`` is their only shell)."""

    def __init__(self, db: Database, guard: Guard, *, key: bytes, ttl: dt.timedelta, idle: dt.timedelta) -> None:
        self.db = db
        self.guard = guard
        self._key = key
        self.ttl = ttl
        self.idle = min(idle, ttl)

    def _hash(self, secret: str) -> str:
        return hmac.new(self._key, b"cookie:" + secret.encode(), hashlib.sha256).hexdigest()

    def csrf_token(self, session_id: str) -> str:
        mac = hmac.new(self._key, b"csrf:" + session_id.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()

    def open(
        self,
        ctx: RequestContext,
        *,
        via: str = "token",
        allowed: tuple[Grant, ...] | None = None,
        params: dict[str, str] | None = None,
    ) -> str:
        """Open a session for the caller; return the cookie value (shown to nobody but the browser).

        ``via="token"``: the caller signed in with an API token, whose revocation ends the session.
        ``via="oidc"``: the caller was mapped from an identity provider's ID token; ``allowed``
        (from its groups) limits the roles the session may use.

        Raises ``Unauthenticated`` when the user does not exist, is disabled or would hold no role.
        """
        p = ctx.principal
        if via == "token" and p.token_kind != "api":
            raise Forbidden("sign in to the console with an API token (sr_...), not a session or execution token")
        if via not in ("token", "oidc"):
            raise InvalidInput("via must be token or oidc", field="via")
        with self.db.read() as session:
            user = session.get(UserRow, p.user)
            if user is None or user.disabled:
                raise Unauthenticated(f"{p.user} is not a Strongroom user, or is disabled; ask your administrator")
            if allowed is not None:
                held = session.execute(
                    select(MembershipRow.role, MembershipRow.team).where(MembershipRow.user == p.user)
                ).all()
                if not {Grant(role, team) for role, team in held} & set(allowed):
                    raise Unauthenticated(
                        f"{p.user} holds none of the roles their groups map to; ask your administrator"
                    )
        session_id = "cs_" + secrets.token_hex(8)
        secret = COOKIE_PREFIX + secrets.token_urlsafe(32)
        now = utcnow()
        params = {"via": via, **(params or {})}
        with (
            self.guard.begin(ctx, "OpenConsoleSession", _session_target(p.user, session_id), params=params) as call,
            call.transaction(),
        ):
            user = call.session.get(UserRow, p.user)
            if user is None or user.disabled:
                raise Unauthenticated(f"user {p.user!r} does not exist or is disabled")
            call.session.add(
                ConsoleSessionRow(
                    id=session_id,
                    secret_hash=self._hash(secret),
                    user=p.user,
                    via=via,
                    parent_token=p.token_id if via == "token" else "",
                    role="",
                    team="",
                    allowed=[str(g) for g in allowed] if allowed is not None else None,
                    created_at=now,
                    expires_at=now + self.ttl,
                    last_seen_at=now,
                )
            )
        return secret

    def resolve(self, secret: str) -> ConsoleSession:
        """The session a cookie stands for, as of now. Raises ``Unauthenticated`` with the reason."""
        if not secret.startswith(COOKIE_PREFIX) or len(secret) > 128:
            raise Unauthenticated("sign in to the console")
        now = utcnow()
        with self.db.read() as session:
            row = session.scalars(
                select(ConsoleSessionRow).where(ConsoleSessionRow.secret_hash == self._hash(secret))
            ).first()
            if row is None or row.revoked_at is not None:
                raise Unauthenticated("you are signed out; sign in again")
            if row.expires_at <= now:
                raise Unauthenticated("your console session expired; sign in again")
            if row.last_seen_at + self.idle <= now:
                raise Unauthenticated("your console session ended after a period without activity; sign in again")
            account = session.get(UserRow, row.user)
            if account is None or account.disabled:
                raise Unauthenticated("this user is disabled")
            if row.parent_token:
                parent = session.get(ApiTokenRow, row.parent_token)
                if parent is None or parent.revoked_at is not None:
                    raise Unauthenticated("the API token this session was opened with was revoked; sign in again")
                if parent.expires_at <= now:
                    raise Unauthenticated("the API token this session was opened with expired; sign in again")
            held = tuple(
                sorted(
                    Grant(role, team)
                    for role, team in session.execute(
                        select(MembershipRow.role, MembershipRow.team).where(MembershipRow.user == row.user)
                    ).all()
                )
            )
            if row.allowed is not None:
                held = tuple(g for g in held if str(g) in row.allowed)
            grants = held
            if row.role:
                chosen = Grant(row.role, row.team)
                if chosen not in held:
                    raise Unauthenticated(f"{row.user} no longer holds {chosen}; the session ended")
                grants = (chosen,)
            stale = now - row.last_seen_at > _TOUCH_RESOLUTION
            found = ConsoleSession(
                id=row.id,
                user=row.user,
                via=row.via,
                role=row.role,
                team=row.team,
                held=held,
                expires_at=row.expires_at,
                csrf=self.csrf_token(row.id),
                principal=Principal(
                    user=row.user,
                    token_kind="session",
                    grants=grants,
                    token_id=row.id,
                    parent_token=row.parent_token,
                ),
            )
        if stale:
            with self.db.write() as session:
                session.execute(
                    update(ConsoleSessionRow).where(ConsoleSessionRow.id == found.id).values(last_seen_at=now)
                )
        return found

    def switch_role(self, ctx: RequestContext, current: ConsoleSession, acting_as: str) -> None:
        """Act as one role held (``Role@team``, ``Role``) or, with ``""``, as every role held."""
        role, _, team = acting_as.partition("@")
        if role and role not in ROLES:
            raise InvalidInput(f"role {role!r} is unknown; roles are {', '.join(ROLES)}", field="role")
        params = {"role": role, "team": team}
        with (
            self.guard.begin(
                ctx, "SwitchConsoleRole", _session_target(current.user, current.id), params=params
            ) as call,
            call.transaction(),
        ):
            if role and Grant(role, team) not in current.held:
                raise Forbidden(f"you do not hold {Grant(role, team)}", field="role")
            row = call.session.get(ConsoleSessionRow, current.id)
            if row is None or row.revoked_at is not None:
                raise Unauthenticated("you are signed out; sign in again")
            row.role, row.team = role, team

    def close(self, ctx: RequestContext, current: ConsoleSession) -> None:
        """Sign out: the cookie stands for nothing any more."""
        with (
            self.guard.begin(ctx, "CloseConsoleSession", _session_target(current.user, current.id)) as call,
            call.transaction(),
        ):
            row = call.session.get(ConsoleSessionRow, current.id)
            if row is not None and row.revoked_at is None:
                row.revoked_at = utcnow()
