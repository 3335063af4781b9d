"""Who is calling, acting as what, from where: passed to every service method."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Literal

TokenKind = Literal["api", "session", "execution", "system", "anonymous"]

PLATFORM_ROLES = ("PlatformAdmin", "Auditor")
TEAM_ROLES = ("DataScienceAdmin", "DataScientist", "MLOpsEngineer")
ROLES = PLATFORM_ROLES + TEAM_ROLES


@dataclass(frozen=True, slots=True, order=True)
class Grant:
    """A role the caller holds; ``team`` is empty for platform-wide roles."""

    role: str
    team: str = ""

    def __str__(self) -> str:
        return f"{self.role}@{self.team}" if self.team else self.role


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller and the grants it may act with."""

    user: str
    token_kind: TokenKind
    grants: tuple[Grant, ...]
    token_id: str = ""
    scope: str = ""  # execution-role tokens: the resource (notebook, job) they belong to
    parent_token: str = ""  # sessions and notebook cookies: the API token they were derived from

    @property
    def root_token(self) -> str:
        """The API token this credential stands on ("" for execution roles and the system)."""
        return self.token_id if self.token_kind == "api" else self.parent_token

    @classmethod
    def system(cls) -> Principal:
        return cls(user="system", token_kind="system", grants=(Grant("System"),))

    @classmethod
    def anonymous(cls) -> Principal:
        return cls(user="anonymous", token_kind="anonymous", grants=())


@dataclass(frozen=True, slots=True)
class RequestContext:
    principal: Principal
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    source: str = ""
    user_agent: str = ""
    idempotency_key: str = ""

    @classmethod
    def system(cls, request_id: str = "") -> RequestContext:
        return cls(principal=Principal.system(), request_id=request_id or uuid.uuid4().hex, source="platform")
