"""Identity entities (what services return and the API serializes)."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel

from strongroom.core.secrets import Secret


class User(BaseModel):
    name: str
    display_name: str = ""
    email: str = ""
    disabled: bool = False
    created_at: dt.datetime


class Team(BaseModel):
    name: str
    description: str = ""
    guardrail_exemptions: list[str] = []
    created_at: dt.datetime


class Membership(BaseModel):
    user: str
    team: str
    role: str
    created_at: dt.datetime


class ApiToken(BaseModel):
    id: str
    user: str
    name: str
    created_at: dt.datetime
    expires_at: dt.datetime
    revoked_at: dt.datetime | None = None
    last_used_at: dt.datetime | None = None


class IssuedToken(BaseModel):
    """A token as issued: the secret is shown exactly once."""

    model_config = {"arbitrary_types_allowed": True}

    token: ApiToken
    secret: str

    def secret_value(self) -> Secret:
        return Secret(self.secret)


class SessionToken(BaseModel):
    token: str
    kind: str
    user: str
    role: str
    team: str
    scope: str = ""
    expires_at: dt.datetime


class WhoAmI(BaseModel):
    user: str
    token_kind: str
    grants: list[str]
    scope: str = ""
