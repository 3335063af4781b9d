"""Lineage: record artifacts, actions, contexts and associations; query the graph."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from strongroom.api.deps import context, platform
from strongroom.api.pagination import Page
from strongroom.core.context import RequestContext
from strongroom.lineage.models import (
    Association,
    AssociationType,
    Direction,
    GitCommit,
    JobLineage,
    LineageEntity,
    LineageGraph,
)
from strongroom.platform import Platform

router = APIRouter(prefix="/api/v1/teams/{team}/lineage", tags=["lineage"])
Ctx = Annotated[RequestContext, Depends(context)]
P = Annotated[Platform, Depends(platform)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RecordArtifact(Strict):
    uri: str = Field(max_length=2048)
    type: str = Field(max_length=64)
    sha256: str = Field(default="", max_length=64)
    version_id: str = Field(default="", max_length=128)
    name: str = Field(default="", max_length=256)
    properties: dict[str, Any] = Field(default_factory=dict, max_length=100)


class RecordNamed(Strict):
    name: str = Field(max_length=64)
    type: str = Field(max_length=64)
    properties: dict[str, Any] = Field(default_factory=dict, max_length=100)


class RecordRun(Strict):
    srn: str = Field(max_length=512)
    type: str = Field(max_length=64)
    properties: dict[str, Any] = Field(default_factory=dict, max_length=100)


class Associate(Strict):
    source: str = Field(max_length=512)
    destination: str = Field(max_length=512)
    type: AssociationType


class RecordCommit(Strict):
    commit: GitCommit
    associate_with: list[str] = Field(default_factory=list, max_length=100)


class Query_(Strict):
    start: str = Field(max_length=512)
    direction: Direction = "upstream"
    depth: int = Field(default=10, ge=1, le=50)
    association_types: list[AssociationType] | None = None
    entity_types: list[str] | None = Field(default=None, max_length=20)


@router.post("/artifacts", status_code=201)
def record_artifact(team: str, body: RecordArtifact, ctx: Ctx, p: P) -> LineageEntity:
    return p.lineage.record_artifact(
        ctx,
        team,
        body.uri,
        body.type,
        sha256=body.sha256,
        version_id=body.version_id,
        name=body.name,
        properties=body.properties,
    )


@router.post("/actions", status_code=201)
def record_action(team: str, body: RecordNamed, ctx: Ctx, p: P) -> LineageEntity:
    return p.lineage.record_action(ctx, team, body.name, body.type, body.properties)


@router.post("/contexts", status_code=201)
def record_context(team: str, body: RecordNamed, ctx: Ctx, p: P) -> LineageEntity:
    return p.lineage.record_context(ctx, team, body.name, body.type, body.properties)


@router.post("/trial-components", status_code=201)
def record_trial_component(team: str, body: RecordRun, ctx: Ctx, p: P) -> LineageEntity:
    return p.lineage.record_trial_component(ctx, team, body.srn, body.type, body.properties)


@router.post("/commits", status_code=201)
def record_commit(team: str, body: RecordCommit, ctx: Ctx, p: P) -> LineageEntity:
    return p.lineage.record_commit(ctx, team, body.commit, body.associate_with)


@router.post("/jobs", status_code=201)
def record_job(team: str, body: JobLineage, ctx: Ctx, p: P) -> LineageEntity:
    return p.lineage.record_job(ctx, team, body)


@router.get("/jobs/record")
def job_record(team: str, ctx: Ctx, p: P, job: Annotated[str, Query(max_length=512)]) -> JobLineage:
    return p.lineage.job_record(ctx, team, job)


@router.post("/associations", status_code=201)
def associate(team: str, body: Associate, ctx: Ctx, p: P) -> Association:
    return p.lineage.associate(ctx, team, body.source, body.destination, body.type)


@router.delete("/associations", status_code=204)
def disassociate(
    team: str,
    ctx: Ctx,
    p: P,
    source: Annotated[str, Query(max_length=512)],
    destination: Annotated[str, Query(max_length=512)],
    type: Annotated[str, Query(max_length=32)],
) -> Response:
    p.lineage.disassociate(ctx, team, source, destination, type)
    return Response(status_code=204)


@router.get("/entities")
def list_entities(
    team: str,
    ctx: Ctx,
    p: P,
    kind: str | None = None,
    type: str | None = None,
    uri: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> Page[LineageEntity]:
    return Page[LineageEntity](items=p.lineage.list_entities(ctx, team, kind=kind, type=type, uri=uri, limit=limit))


@router.get("/entity")
def describe_entity(team: str, ctx: Ctx, p: P, srn: Annotated[str, Query(max_length=512)]) -> LineageEntity:
    return p.lineage.describe(ctx, team, srn)


@router.post("/query")
def query(team: str, body: Query_, ctx: Ctx, p: P) -> LineageGraph:
    return p.lineage.query(
        ctx,
        team,
        body.start,
        direction=body.direction,
        depth=body.depth,
        association_types=body.association_types,
        entity_types=body.entity_types,
    )
