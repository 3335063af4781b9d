"""Jobs and runtimes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from strongroom.api.deps import context, platform
from strongroom.api.pagination import Page
from strongroom.core.context import RequestContext
from strongroom.core.errors import InvalidInput
from strongroom.jobs.models import Job, JobSpec, LogLine, MetricPoint
from strongroom.jobs.reproduce import ReproductionPlan, ReproductionReport
from strongroom.platform import Platform

router = APIRouter(prefix="/api/v1", tags=["jobs"])
Ctx = Annotated[RequestContext, Depends(context)]
P = Annotated[Platform, Depends(platform)]


class StopRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(default="", max_length=500)


class RuntimeInfo(BaseModel):
    name: str
    python: str
    description: str
    versions: dict[str, str]


class RegisterRuntime(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(max_length=64)
    python: str = Field(max_length=1024)
    description: str = Field(default="", max_length=1024)


@router.post("/teams/{team}/jobs", status_code=201)
def create_job(team: str, spec: JobSpec, ctx: Ctx, p: P) -> Job:
    if spec.team != team:
        raise InvalidInput(f"the spec is for team {spec.team!r} but was sent to team {team!r}", field="team")
    return p.jobs.create_job(ctx, spec)


@router.get("/teams/{team}/jobs")
def list_jobs(
    team: str,
    ctx: Ctx,
    p: P,
    status: str | None = Query(default=None, max_length=16),
    limit: int = Query(default=100, ge=1, le=1000),
) -> Page[Job]:
    return Page[Job](items=p.jobs.list(ctx, team, status, limit))


@router.get("/teams/{team}/jobs/{name}")
def describe_job(team: str, name: str, ctx: Ctx, p: P) -> Job:
    return p.jobs.describe(ctx, team, name)


@router.post("/teams/{team}/jobs/{name}/stop")
def stop_job(team: str, name: str, body: StopRequest, ctx: Ctx, p: P) -> Job:
    return p.jobs.stop(ctx, team, name, body.reason)


@router.post("/teams/{team}/jobs/{name}/interrupt")
def interrupt_job(team: str, name: str, body: StopRequest, ctx: Ctx, p: P) -> Job:
    return p.jobs.interrupt(ctx, team, name, body.reason)


@router.get("/teams/{team}/jobs/{name}/logs")
def job_logs(
    team: str,
    name: str,
    ctx: Ctx,
    p: P,
    after_seq: int = Query(default=0, ge=0),
    limit: int = Query(default=1000, ge=1, le=10000),
) -> Page[LogLine]:
    lines = p.jobs.logs(ctx, team, name, after_seq, limit)
    return Page[LogLine](items=lines, next_page_token=str(lines[-1].seq) if len(lines) == limit else None)


@router.get("/teams/{team}/jobs/{name}/metrics")
def job_metrics(team: str, name: str, ctx: Ctx, p: P) -> Page[MetricPoint]:
    return Page[MetricPoint](items=p.jobs.metrics(ctx, team, name))


class PlanReproduction(BaseModel):
    model_config = ConfigDict(extra="forbid")
    new_name: str | None = Field(default=None, max_length=64)
    allow_runtime_drift: bool = False
    use_latest_inputs: bool = False


@router.post("/teams/{team}/jobs/{name}/reproduction-plan")
def plan_reproduction(team: str, name: str, body: PlanReproduction, ctx: Ctx, p: P) -> ReproductionPlan:
    return p.reproducer.plan(
        ctx,
        team,
        name,
        new_name=body.new_name,
        allow_runtime_drift=body.allow_runtime_drift,
        use_latest_inputs=body.use_latest_inputs,
    )


@router.get("/teams/{team}/jobs/{name}/comparison/{other}")
def compare_jobs(team: str, name: str, other: str, ctx: Ctx, p: P) -> ReproductionReport:
    return p.reproducer.compare(ctx, team, name, other)


@router.get("/runtimes")
def list_runtimes(ctx: Ctx, p: P) -> Page[RuntimeInfo]:
    return Page[RuntimeInfo](
        items=[
            RuntimeInfo(name=r.name, python=r.python, description=r.description, versions=r.versions)
            for r in p.runtimes.list(ctx)
        ]
    )


@router.post("/runtimes", status_code=201)
def register_runtime(body: RegisterRuntime, ctx: Ctx, p: P) -> RuntimeInfo:
    r = p.runtimes.register(ctx, body.name, body.python, body.description)
    return RuntimeInfo(name=r.name, python=r.python, description=r.description, versions=r.versions)
