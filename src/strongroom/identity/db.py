"""Identity rows. Token secrets are never stored: only a keyed hash of them."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, Boolean, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from strongroom.db.base import Base, UtcDateTime
from strongroom.identity.models import ApiToken, Membership, Team, User


class UserRow(Base):
    __tablename__ = "users"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(256), default="")
    email: Mapped[str] = mapped_column(String(256), default="")
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    created_by: Mapped[str] = mapped_column(String(64), default="")

    def to_entity(self) -> User:
        return User(
            name=self.name,
            display_name=self.display_name,
            email=self.email,
            disabled=self.disabled,
            created_at=self.created_at,
        )


class TeamRow(Base):
    __tablename__ = "teams"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    description: Mapped[str] = mapped_column(String(1024), default="")
    guardrail_exemptions: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    created_by: Mapped[str] = mapped_column(String(64), default="")

    def to_entity(self) -> Team:
        return Team(
            name=self.name,
            description=self.description,
            guardrail_exemptions=sorted(self.guardrail_exemptions or []),
            created_at=self.created_at,
        )


class MembershipRow(Base):
    """A role held by a user; ``team`` is empty for platform-wide roles."""

    __tablename__ = "memberships"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    user: Mapped[str] = mapped_column(ForeignKey("users.name"), index=True)
    team: Mapped[str] = mapped_column(String(64), default="")
    role: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())

    __table_args__ = (UniqueConstraint("user", "team", "role"),)

    def to_entity(self) -> Membership:
        return Membership(user=self.user, team=self.team, role=self.role, created_at=self.created_at)


class ApiTokenRow(Base):
    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user: Mapped[str] = mapped_column(ForeignKey("users.name"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), nullable=True)

    def to_entity(self) -> ApiToken:
        return ApiToken(
            id=self.id,
            user=self.user,
            name=self.name,
            created_at=self.created_at,
            expires_at=self.expires_at,
            revoked_at=self.revoked_at,
            last_used_at=self.last_used_at,
        )


class ConsoleSessionRow(Base):
    """A browser's console session. The cookie holds a random secret; only its keyed hash is stored.

    ``parent_token`` is the API token the session was opened with ("" for single sign-on): revoking
    it, disabling the user or ``revoked_at`` ends the session. ``role``/``team`` is the role the
    browser switched to ("" acts with every role the user holds).
    """

    __tablename__ = "console_sessions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user: Mapped[str] = mapped_column(ForeignKey("users.name"), index=True)
    via: Mapped[str] = mapped_column(String(16))
    parent_token: Mapped[str] = mapped_column(String(32), default="")
    role: Mapped[str] = mapped_column(String(32), default="")
    team: Mapped[str] = mapped_column(String(64), default="")
    # single sign-on with a groups claim: the only roles ("Role@team") the session may use
    allowed: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    last_seen_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), nullable=True)
