"""Team policy attachments and the simulator."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, ConfigDict, Field

from strongroom.api.deps import context, platform
from strongroom.api.pagination import Page
from strongroom.core.context import RequestContext
from strongroom.platform import Platform
from strongroom.policy.models import PolicyAttachment, SimulationResult

router = APIRouter(prefix="/api/v1", tags=["policy"])
Ctx = Annotated[RequestContext, Depends(context)]
P = Annotated[Platform, Depends(platform)]


class AttachPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(max_length=64)
    policy: str = Field(max_length=65536)
    description: str = Field(default="", max_length=1024)


class Simulate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    principal: str = Field(max_length=64)
    action: str = Field(max_length=128)
    resource: str = Field(max_length=1024)
    context: dict[str, Any] = Field(default_factory=dict)
    acting_as: str | None = Field(default=None, max_length=128)
    owner: str = Field(default="", max_length=64)
    tags: dict[str, str] = Field(default_factory=dict)
    token_kind: str = Field(default="api", max_length=16)


@router.get("/teams/{team}/policies")
def list_policies(team: str, ctx: Ctx, p: P) -> Page[PolicyAttachment]:
    return Page[PolicyAttachment](items=p.policies.list(ctx, team))


@router.post("/teams/{team}/policies", status_code=201)
def attach_policy(team: str, body: AttachPolicy, ctx: Ctx, p: P) -> PolicyAttachment:
    return p.policies.attach(ctx, team, body.name, body.policy, body.description)


@router.delete("/teams/{team}/policies/{name}", status_code=204)
def detach_policy(team: str, name: str, ctx: Ctx, p: P) -> Response:
    p.policies.detach(ctx, team, name)
    return Response(status_code=204)


@router.post("/policy/simulate")
def simulate(body: Simulate, ctx: Ctx, p: P) -> SimulationResult:
    return p.policies.simulate(
        ctx,
        body.principal,
        body.action,
        body.resource,
        context=body.context,
        acting_as=body.acting_as,
        owner=body.owner,
        tags=body.tags,
        token_kind=body.token_kind,
    )
