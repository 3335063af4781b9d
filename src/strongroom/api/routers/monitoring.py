"""Model monitoring: baseline jobs, monitoring schedules and their executions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, ConfigDict

from strongroom.alerts.models import TeamWebhook
from strongroom.api.deps import context, platform
from strongroom.api.pagination import Page
from strongroom.core.context import RequestContext
from strongroom.jobs.models import Job
from strongroom.monitor.models import BaselineSpec, Execution, RunNow, Schedule, ScheduleSpec
from strongroom.platform import Platform

router = APIRouter(prefix="/api/v1", tags=["monitoring"])
Ctx = Annotated[RequestContext, Depends(context)]
P = Annotated[Platform, Depends(platform)]


@router.post("/teams/{team}/monitoring/baselines", status_code=201)
def suggest_baseline(team: str, spec: BaselineSpec, ctx: Ctx, p: P) -> Job:
    """Start a baseline job (``statistics.json`` and ``constraints.json``); follow it as a job."""
    return p.monitoring.suggest_baseline(ctx, team, spec)


@router.post("/teams/{team}/monitoring-schedules", status_code=201)
def create_schedule(team: str, spec: ScheduleSpec, ctx: Ctx, p: P) -> Schedule:
    return p.monitoring.create_schedule(ctx, team, spec)


@router.get("/teams/{team}/monitoring-schedules")
def list_schedules(team: str, ctx: Ctx, p: P) -> Page[Schedule]:
    return Page[Schedule](items=p.monitoring.list_schedules(ctx, team))


@router.get("/teams/{team}/monitoring-schedules/{name}")
def describe_schedule(team: str, name: str, ctx: Ctx, p: P) -> Schedule:
    return p.monitoring.describe_schedule(ctx, team, name)


@router.post("/teams/{team}/monitoring-schedules/{name}/stop")
def stop_schedule(team: str, name: str, ctx: Ctx, p: P) -> Schedule:
    return p.monitoring.set_schedule_status(ctx, team, name, running=False)


@router.post("/teams/{team}/monitoring-schedules/{name}/start")
def start_schedule(team: str, name: str, ctx: Ctx, p: P) -> Schedule:
    return p.monitoring.set_schedule_status(ctx, team, name, running=True)


@router.delete("/teams/{team}/monitoring-schedules/{name}", status_code=204)
def delete_schedule(team: str, name: str, ctx: Ctx, p: P) -> Response:
    p.monitoring.delete_schedule(ctx, team, name)
    return Response(status_code=204)


@router.post("/teams/{team}/monitoring-schedules/{name}/executions", status_code=201)
def run_now(team: str, name: str, request: RunNow, ctx: Ctx, p: P) -> Execution:
    """One execution now, over ``[start, end)`` (by default: since the last window's end)."""
    return p.monitoring.run_now(ctx, team, name, request)


@router.get("/teams/{team}/monitoring-schedules/{name}/executions")
def list_executions(
    team: str, name: str, ctx: Ctx, p: P, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> Page[Execution]:
    return Page[Execution](items=p.monitoring.list_executions(ctx, team, name, limit))


@router.get("/teams/{team}/monitoring-schedules/{name}/executions/{execution}")
def describe_execution(team: str, name: str, execution: str, ctx: Ctx, p: P) -> Execution:
    return p.monitoring.describe_execution(ctx, team, name, execution)


class WebhookBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str


@router.put("/teams/{team}/alert-webhook")
def set_alert_webhook(team: str, body: WebhookBody, ctx: Ctx, p: P) -> TeamWebhook:
    """The team's own https:// webhook for its monitoring alerts (see docs/monitoring.md)."""
    return p.alerts.set_team_webhook(ctx, team, body.url)


@router.get("/teams/{team}/alert-webhook")
def describe_alert_webhook(team: str, ctx: Ctx, p: P) -> TeamWebhook:
    return p.alerts.describe_team_webhook(ctx, team)


@router.delete("/teams/{team}/alert-webhook", status_code=204)
def delete_alert_webhook(team: str, ctx: Ctx, p: P) -> Response:
    p.alerts.delete_team_webhook(ctx, team)
    return Response(status_code=204)
