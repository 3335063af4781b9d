"""Platform status and the API document."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

import strongroom
from strongroom.api.deps import context, platform
from strongroom.core.context import RequestContext
from strongroom.platform import Platform
from strongroom.policy.engine import Target

router = APIRouter(prefix="/api/v1", tags=["system"])
document = APIRouter(tags=["system"])
Ctx = Annotated[RequestContext, Depends(context)]
P = Annotated[Platform, Depends(platform)]


class Status(BaseModel):
    version: str
    database: str
    workers: list[str]
    audit_head_seq: int
    actions: list[str]


@router.get("/status")
def status(ctx: Ctx, p: P) -> Status:
    target = Target("platform", "", "status", owner=ctx.principal.user)
    with p.guard.begin(ctx, "GetPlatformStatus", target):
        head, _ = p.audit_log.head()
    return Status(
        version=strongroom.__version__,
        database="sqlite" if p.db.is_sqlite else "postgresql",
        workers=[w.name for w in p.workers()],
        audit_head_seq=head,
        actions=sorted(a for a in p.policy_engine.actions if not a.endswith("Actions")),
    )


@document.get("/api/openapi.json", include_in_schema=False)
def openapi_document(request: Request, ctx: Ctx, p: P) -> JSONResponse:
    """The OpenAPI document, for callers holding a role (it maps every route of the platform)."""
    with p.guard.begin(ctx, "GetApiDocument", Target("platform", "", "openapi", owner=ctx.principal.user)):
        return JSONResponse(request.app.openapi())
