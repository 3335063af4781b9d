"""Notebook instances: list, describe, start, stop, and single-use sign-in URLs.

The notebooks themselves are served by the proxy at ``/notebooks/<team>/<name>/``
(`strongroom.api.streaming.notebooks`); they are created and deleted through the catalog.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from strongroom.api.deps import context, platform
from strongroom.api.pagination import Page
from strongroom.core.context import RequestContext
from strongroom.notebooks.models import Notebook, PresignedUrl
from strongroom.platform import Platform

router = APIRouter(prefix="/api/v1/teams/{team}/notebooks", tags=["notebooks"])
Ctx = Annotated[RequestContext, Depends(context)]
P = Annotated[Platform, Depends(platform)]


class Presign(BaseModel):
    model_config = ConfigDict(extra="forbid")
    expires_in: int = Field(default=300, ge=1, le=86400)


@router.get("")
def list_notebooks(team: str, ctx: Ctx, p: P) -> Page[Notebook]:
    return Page[Notebook](items=p.notebooks.list(ctx, team))


@router.get("/{name}")
def describe_notebook(team: str, name: str, ctx: Ctx, p: P) -> Notebook:
    return p.notebooks.describe(ctx, team, name)


@router.post("/{name}/start", status_code=202)
def start_notebook(team: str, name: str, ctx: Ctx, p: P) -> Notebook:
    return p.notebooks.set_running(ctx, team, name, True)


@router.post("/{name}/stop", status_code=202)
def stop_notebook(team: str, name: str, ctx: Ctx, p: P) -> Notebook:
    return p.notebooks.set_running(ctx, team, name, False)


@router.post("/{name}/presigned-url", status_code=201)
def presigned_url(team: str, name: str, body: Presign, request: Request, ctx: Ctx, p: P) -> PresignedUrl:
    signed = p.notebooks.presign(ctx, team, name, body.expires_in)
    # From the configured public URL, never from the Host header (a forged Host would send the
    # single-use token to another server).
    return signed.model_copy(update={"url": request.app.state.public_url + signed.url})
