"""Audit log: query, tail, verify, export as JSON lines."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from strongroom.api.deps import context, platform
from strongroom.api.pagination import Page
from strongroom.audit.log import AuditFilter
from strongroom.audit.models import AuditEvent, VerifyReport
from strongroom.core.context import RequestContext
from strongroom.platform import Platform

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])
Ctx = Annotated[RequestContext, Depends(context)]
P = Annotated[Platform, Depends(platform)]


def _filter(
    principal: str | None = Query(default=None, max_length=128),
    action: str | None = Query(default=None, max_length=128),
    team: str | None = Query(default=None, max_length=64),
    decision: str | None = Query(default=None, pattern="^(Allow|Deny|Invalid)$"),
    resource_prefix: str | None = Query(default=None, max_length=1024),
    request_id: str | None = Query(default=None, max_length=64),
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    after_seq: int = Query(default=0, ge=0),
    limit: int = Query(default=100, ge=1, le=1000),
) -> AuditFilter:
    return AuditFilter(
        principal=principal,
        action=action,
        team=team,
        decision=decision,
        resource_prefix=resource_prefix,
        request_id=request_id,
        since=since,
        until=until,
        after_seq=after_seq,
        limit=limit,
    )


Filter = Annotated[AuditFilter, Depends(_filter)]


@router.get("/events")
def query_events(flt: Filter, ctx: Ctx, p: P) -> Page[AuditEvent]:
    events = p.audit.query(ctx, flt)
    token = str(events[-1].seq) if len(events) == flt.limit else None
    return Page[AuditEvent](items=events, next_page_token=token)


@router.get("/tail")
def tail(ctx: Ctx, p: P, count: int = Query(default=20, ge=1, le=1000)) -> Page[AuditEvent]:
    return Page[AuditEvent](items=p.audit.tail(ctx, count))


@router.get("/verify")
def verify(ctx: Ctx, p: P) -> VerifyReport:
    return p.audit.verify(ctx)


@router.get("/export")
def export(flt: Filter, ctx: Ctx, p: P) -> StreamingResponse:
    events = p.audit.export(ctx, flt)

    def lines() -> Iterator[bytes]:
        for event in events:
            yield (json.dumps(event.model_dump(mode="json"), sort_keys=True) + "\n").encode()

    return StreamingResponse(lines(), media_type="application/x-ndjson")
