"""Users, teams, members, tokens and sessions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from strongroom.api.deps import context, platform
from strongroom.api.pagination import Page, paginate
from strongroom.core.context import RequestContext
from strongroom.identity.models import (
    ApiToken,
    IssuedToken,
    Membership,
    SessionToken,
    Team,
    User,
    WhoAmI,
)
from strongroom.platform import Platform

router = APIRouter(prefix="/api/v1", tags=["identity"])
Ctx = Annotated[RequestContext, Depends(context)]
P = Annotated[Platform, Depends(platform)]
Limit = Annotated[int, Query(ge=1, le=1000)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateUser(Strict):
    name: str = Field(max_length=64)
    display_name: str = Field(default="", max_length=256)
    email: str = Field(default="", max_length=256)


class CreateTeam(Strict):
    name: str = Field(max_length=64)
    description: str = Field(default="", max_length=1024)


class AddMember(Strict):
    user: str = Field(max_length=64)
    role: str = Field(max_length=32)


class GrantRole(Strict):
    role: str = Field(max_length=32)


class Exemptions(Strict):
    exemptions: list[str] = Field(max_length=16)


class CreateToken(Strict):
    name: str = Field(max_length=64)
    user: str | None = Field(default=None, max_length=64)
    ttl_days: int | None = Field(default=None, ge=1, le=3650)


class AssumeRole(Strict):
    role: str = Field(max_length=32)
    team: str = Field(default="", max_length=64)


class UserDetail(BaseModel):
    user: User
    memberships: list[Membership]


class TeamDetail(BaseModel):
    team: Team
    members: list[Membership]


@router.get("/whoami")
def whoami(ctx: Ctx, p: P) -> WhoAmI:
    return p.identity.whoami(ctx)


@router.post("/users", status_code=201)
def create_user(body: CreateUser, ctx: Ctx, p: P) -> User:
    return p.identity.create_user(ctx, body.name, body.display_name, body.email)


@router.get("/users")
def list_users(ctx: Ctx, p: P, limit: Limit = 100, page_token: str | None = None) -> Page[User]:
    return paginate(p.identity.list_users(ctx), limit, page_token)


@router.get("/users/{name}")
def describe_user(name: str, ctx: Ctx, p: P) -> UserDetail:
    user, memberships = p.identity.describe_user(ctx, name)
    return UserDetail(user=user, memberships=memberships)


@router.post("/users/{name}/disable")
def disable_user(name: str, ctx: Ctx, p: P) -> User:
    return p.identity.set_user_disabled(ctx, name, True)


@router.post("/users/{name}/enable")
def enable_user(name: str, ctx: Ctx, p: P) -> User:
    return p.identity.set_user_disabled(ctx, name, False)


@router.post("/users/{name}/roles", status_code=201)
def grant_platform_role(name: str, body: GrantRole, ctx: Ctx, p: P) -> Membership:
    return p.identity.grant_platform_role(ctx, name, body.role)


@router.delete("/users/{name}/roles/{role}", status_code=204)
def revoke_platform_role(name: str, role: str, ctx: Ctx, p: P) -> Response:
    p.identity.remove_member(ctx, "", name, role)
    return Response(status_code=204)


@router.post("/teams", status_code=201)
def create_team(body: CreateTeam, ctx: Ctx, p: P) -> Team:
    return p.identity.create_team(ctx, body.name, body.description)


@router.get("/teams")
def list_teams(ctx: Ctx, p: P, limit: Limit = 100, page_token: str | None = None) -> Page[Team]:
    return paginate(p.identity.list_teams(ctx), limit, page_token)


@router.get("/teams/{team}")
def describe_team(team: str, ctx: Ctx, p: P) -> TeamDetail:
    found, members = p.identity.describe_team(ctx, team)
    return TeamDetail(team=found, members=members)


@router.put("/teams/{team}/guardrail-exemptions")
def set_exemptions(team: str, body: Exemptions, ctx: Ctx, p: P) -> Team:
    return p.identity.set_guardrail_exemptions(ctx, team, body.exemptions)


@router.post("/teams/{team}/members", status_code=201)
def add_member(team: str, body: AddMember, ctx: Ctx, p: P) -> Membership:
    return p.identity.add_member(ctx, team, body.user, body.role)


@router.delete("/teams/{team}/members/{user}/{role}", status_code=204)
def remove_member(team: str, user: str, role: str, ctx: Ctx, p: P) -> Response:
    p.identity.remove_member(ctx, team, user, role)
    return Response(status_code=204)


@router.post("/tokens", status_code=201)
def create_token(body: CreateToken, ctx: Ctx, p: P) -> IssuedToken:
    return p.identity.create_token(ctx, body.name, body.user, body.ttl_days)


@router.get("/tokens")
def list_tokens(
    ctx: Ctx, p: P, user: str | None = None, limit: Limit = 100, page_token: str | None = None
) -> Page[ApiToken]:
    return paginate(p.identity.list_tokens(ctx, user), limit, page_token)


@router.delete("/tokens/{token_id}")
def revoke_token(token_id: str, ctx: Ctx, p: P) -> ApiToken:
    return p.identity.revoke_token(ctx, token_id)


@router.post("/sessions", status_code=201)
def assume_role(body: AssumeRole, ctx: Ctx, p: P) -> SessionToken:
    return p.identity.assume_role(ctx, body.role, body.team)
