"""Experiments, trials, trial components, batched metric writes and analytics."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.routing import Route

from strongroom.api.deps import context, platform
from strongroom.api.hot import HotRoute, parse_body
from strongroom.api.pagination import Page, paginate
from strongroom.api.problems import problem
from strongroom.core.context import RequestContext
from strongroom.core.errors import StrongroomError
from strongroom.experiments import analytics
from strongroom.experiments.models import (
    BatchResult,
    ComponentCreate,
    ComponentUpdate,
    Experiment,
    MetricColumns,
    MetricSeries,
    Trial,
    TrialComponent,
)
from strongroom.guard.connection import authenticate, request_context
from strongroom.platform import Platform

router = APIRouter(prefix="/api/v1/teams/{team}", tags=["experiments"])
Ctx = Annotated[RequestContext, Depends(context)]
P = Annotated[Platform, Depends(platform)]
Limit = Annotated[int, Query(ge=1, le=1000)]
ARROW = "application/vnd.apache.arrow.stream"
# Batches up to this size are written on the event loop when the writer is free (see batch_update).
INLINE_POINTS = 200
INLINE_COMPONENTS = 10


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateExperiment(Strict):
    name: str = Field(max_length=64)
    display_name: str = Field(default="", max_length=256)
    description: str = Field(default="", max_length=1024)
    tags: dict[str, str] = Field(default_factory=dict, max_length=50)


class CreateTrial(Strict):
    name: str = Field(max_length=64)
    experiment_name: str = Field(max_length=64)
    display_name: str = Field(default="", max_length=256)
    tags: dict[str, str] = Field(default_factory=dict, max_length=50)


class Associate(Strict):
    component: str = Field(max_length=64)


class Batch(Strict):
    """Many components' updates in one call; ``metrics`` in columns for compactness."""

    creates: list[ComponentCreate] = Field(default_factory=list, max_length=10_000)
    components: list[ComponentUpdate] = Field(default_factory=list, max_length=10_000)
    metrics: list[MetricColumns] = Field(default_factory=list, max_length=10_000)


@router.post("/experiments", status_code=201)
def create_experiment(team: str, body: CreateExperiment, ctx: Ctx, p: P) -> Experiment:
    return p.experiments.create_experiment(
        ctx, team, body.name, display_name=body.display_name, description=body.description, tags=body.tags
    )


@router.get("/experiments")
def list_experiments(team: str, ctx: Ctx, p: P, limit: Limit = 100, page_token: str | None = None) -> Page[Experiment]:
    return paginate(p.experiments.list_experiments(ctx, team), limit, page_token)


@router.get("/experiments/{experiment}")
def describe_experiment(team: str, experiment: str, ctx: Ctx, p: P) -> Experiment:
    return p.experiments.describe_experiment(ctx, team, experiment)


@router.delete("/experiments/{experiment}", status_code=204)
def delete_experiment(team: str, experiment: str, ctx: Ctx, p: P) -> Response:
    p.experiments.delete_experiment(ctx, team, experiment)
    return Response(status_code=204)


@router.post("/trials", status_code=201)
def create_trial(team: str, body: CreateTrial, ctx: Ctx, p: P) -> Trial:
    return p.experiments.create_trial(
        ctx, team, body.name, body.experiment_name, display_name=body.display_name, tags=body.tags
    )


@router.get("/trials")
def list_trials(
    team: str,
    ctx: Ctx,
    p: P,
    experiment: str | None = None,
    limit: Limit = 100,
    page_token: str | None = None,
) -> Page[Trial]:
    return paginate(p.experiments.list_trials(ctx, team, experiment), limit, page_token)


@router.get("/trials/{trial}")
def describe_trial(team: str, trial: str, ctx: Ctx, p: P) -> Trial:
    return p.experiments.describe_trial(ctx, team, trial)


@router.delete("/trials/{trial}", status_code=204)
def delete_trial(team: str, trial: str, ctx: Ctx, p: P) -> Response:
    p.experiments.delete_trial(ctx, team, trial)
    return Response(status_code=204)


@router.post("/trials/{trial}/components", status_code=204)
def associate(team: str, trial: str, body: Associate, ctx: Ctx, p: P) -> Response:
    p.experiments.associate_trial_component(ctx, team, trial, body.component)
    return Response(status_code=204)


@router.delete("/trials/{trial}/components/{component}", status_code=204)
def disassociate(team: str, trial: str, component: str, ctx: Ctx, p: P) -> Response:
    p.experiments.disassociate_trial_component(ctx, team, trial, component)
    return Response(status_code=204)


@router.post("/trial-components", status_code=201)
def create_trial_component(team: str, body: ComponentCreate, ctx: Ctx, p: P) -> TrialComponent:
    return p.experiments.create_trial_component(
        ctx,
        team,
        body.name,
        display_name=body.display_name,
        status=body.status,
        source=body.source,
        source_type=body.source_type,
        start_time=body.start_time,
        parameters=body.parameters,
        inputs=body.inputs,
        tags=body.tags,
        trial=body.trial,
        commit=body.commit,
    )


@router.get("/trial-components")
def list_trial_components(
    team: str,
    ctx: Ctx,
    p: P,
    trial: str | None = None,
    source: str | None = None,
    limit: Limit = 100,
    page_token: str | None = None,
) -> Page[TrialComponent]:
    return paginate(p.experiments.list_trial_components(ctx, team, trial, source), limit, page_token)


@router.get("/trial-components/{component}")
def describe_trial_component(team: str, component: str, ctx: Ctx, p: P) -> TrialComponent:
    return p.experiments.describe_trial_component(ctx, team, component)


@router.patch("/trial-components/{component}")
def update_trial_component(team: str, component: str, body: ComponentUpdate, ctx: Ctx, p: P) -> TrialComponent:
    return p.experiments.update_trial_component(ctx, team, body.model_copy(update={"name": component}))


@router.delete("/trial-components/{component}", status_code=204)
def delete_trial_component(team: str, component: str, ctx: Ctx, p: P) -> Response:
    p.experiments.delete_trial_component(ctx, team, component)
    return Response(status_code=204)


@router.get("/trial-components/{component}/metrics/{metric}")
def metric_series(team: str, component: str, metric: str, ctx: Ctx, p: P) -> MetricSeries:
    return p.experiments.metric_series(ctx, team, component, metric)


@router.post("/trial-component-batches", response_model=BatchResult)
async def batch_update(team: str, body: Batch, ctx: Ctx, p: P) -> Response:
    """Create components, apply updates and append metric points in one guarded transaction.

    Declared here for the API document; requests are served by :func:`write_batch`, the hot
    route ``create_app`` matches first, which does the same.
    """
    return await _write_batch(p, ctx, team, body)


async def write_batch(request: Request) -> Response:
    """``POST /api/v1/teams/{team}/trial-component-batches`` as a hot route (``strongroom.api.hot``):
    every durable ``log_metric`` is one of these, and FastAPI's handling cost a third of the call."""
    p: Platform = request.app.state.platform
    try:
        ctx = request_context(request, await authenticate(request, p.identity), idempotent=True)
        body = parse_body(Batch, await request.body())
        return await _write_batch(p, ctx, request.path_params["team"], body)
    except StrongroomError as exc:
        return problem(request, exc)


def hot_routes() -> list[Route]:
    return [HotRoute(f"{router.prefix}/trial-component-batches", write_batch, methods=["POST"], name="batch_update")]


async def _write_batch(p: Platform, ctx: RequestContext, team: str, body: Batch) -> Response:
    """A small batch is written on the event loop when this process's SQLite writer is free: its
    transaction (about a millisecond) costs less than the two hand-offs to a worker thread and
    back, each a wait to be scheduled again on a loaded machine. A large batch, or one that would
    wait for the writer (another thread writes; PostgreSQL; several API processes), is written in
    the thread pool. The answer is serialized here rather than validated again.
    """

    def write() -> Response:
        result = p.experiments.batch_update(ctx, team, body.components, body.metrics, body.creates)
        return Response(content=result.model_dump_json(), media_type="application/json")

    if _small(body):
        with p.db.claim_writer() as claimed:
            if claimed:
                return write()
    return await run_in_threadpool(write)


def _small(body: Batch) -> bool:
    """A batch cheap enough to write on the event loop: metric points and field updates only."""
    if body.creates or len(body.components) > INLINE_COMPONENTS:
        return False
    points = sum(len(m.names) for m in body.metrics) + sum(len(u.metrics) for u in body.components)
    return points <= INLINE_POINTS


@router.post("/trial-component-search", response_model=None)
def search(team: str, body: analytics.SearchRequest, request: Request, ctx: Ctx, p: P) -> Response:
    """The analytics table; ``Accept: application/vnd.apache.arrow.stream`` for Arrow, else JSON columns."""
    table = p.experiments.search(ctx, team, body)
    if ARROW in request.headers.get("accept", ""):
        return Response(content=analytics.to_arrow(table), media_type=ARROW)
    return Response(content=table.model_dump_json(), media_type="application/json")
