"""Team git repositories and commit lookup (the git transfer itself is in `strongroom.api.streaming.git`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from strongroom.api.deps import context, platform
from strongroom.api.pagination import Page
from strongroom.core.context import RequestContext
from strongroom.gitrepo.models import Commit, Repository
from strongroom.platform import Platform

router = APIRouter(prefix="/api/v1/teams/{team}/repositories", tags=["git"])
Ctx = Annotated[RequestContext, Depends(context)]
P = Annotated[Platform, Depends(platform)]


class CreateRepository(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(max_length=64)
    description: str = Field(default="", max_length=1024)


def _with_url(request: Request, repo: Repository) -> Repository:
    base = str(request.base_url).rstrip("/")
    return repo.model_copy(update={"clone_url": f"{base}/git/{repo.team}/{repo.name}.git"})


@router.post("", status_code=201)
def create_repository(team: str, body: CreateRepository, request: Request, ctx: Ctx, p: P) -> Repository:
    return _with_url(request, p.git.create(ctx, team, body.name, body.description))


@router.get("")
def list_repositories(team: str, request: Request, ctx: Ctx, p: P) -> Page[Repository]:
    return Page[Repository](items=[_with_url(request, r) for r in p.git.list(ctx, team)])


@router.get("/{name}")
def describe_repository(team: str, name: str, request: Request, ctx: Ctx, p: P) -> Repository:
    return _with_url(request, p.git.describe(ctx, team, name))


@router.delete("/{name}", status_code=204)
def delete_repository(team: str, name: str, ctx: Ctx, p: P) -> Response:
    p.git.delete(ctx, team, name)
    return Response(status_code=204)


@router.get("/{name}/commits")
def list_commits(
    team: str, name: str, ctx: Ctx, p: P, ref: str = "main", limit: int = Query(default=50, ge=1, le=1000)
) -> Page[Commit]:
    return Page[Commit](items=p.git.list_commits(ctx, team, name, ref, limit))


@router.get("/{name}/commits/{sha}")
def get_commit(team: str, name: str, sha: str, ctx: Ctx, p: P) -> Commit:
    return p.git.get_commit(ctx, team, name, sha)
