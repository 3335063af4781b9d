"""Monitors: schedules (status, schedule expression, last execution), their executions, an
execution's violations (feature, check, description) and drift plot (each feature's distance from
the baseline against the threshold), and the execution's stored HTML report.

The violations' descriptions and the threshold are in the team bucket (``constraint_violations.json``
and the schedule's ``constraints.json``): the page reads them as the signed-in user, so a role that
may not read the bucket sees the checks without their descriptions.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from strongroom.console import charts, web
from strongroom.console.catalog import teams_of
from strongroom.core.context import RequestContext
from strongroom.core.errors import InvalidInput, NotFound, StrongroomError
from strongroom.core.names import check_name
from strongroom.monitor.constraints import Constraints
from strongroom.monitor.executions import schedule_target
from strongroom.monitor.models import Execution, Schedule
from strongroom.monitor.report import CONTENT_SECURITY_POLICY
from strongroom.platform import Platform
from strongroom.storage.keys import parse_uri

MAX_EXECUTIONS = 1000
DRIFT = "baseline_drift_check"
# The report is the job's own page (inline styles, no script): it gets its own policy, and
# `sandbox` makes it an opaque origin that can run nothing and reach nothing of the console's.
REPORT_CSP = f"{CONTENT_SECURITY_POLICY}; sandbox; frame-ancestors 'none'; form-action 'none'"


def _names(request: Request) -> tuple[str, str]:
    return check_name(request.path_params["team"], "team"), check_name(request.path_params["name"], "name")


def _execution_id(request: Request) -> str:
    raw = request.path_params["execution"]
    if not re.fullmatch(r"[0-9a-f]{32}", raw):
        raise InvalidInput("not a monitoring execution id", field="execution")
    return raw


@web.page
async def monitors(request: Request) -> Response:
    who = await web.caller(request)
    platform = web.platform_of(request)
    number = web.page_number(request)

    def view() -> tuple[web.Pager, list[str]]:
        with web.viewing(request, who, "monitors"):
            found, refused = web.across_teams(
                teams_of(platform, who), lambda t: platform.monitoring.list_schedules(who.ctx, t)
            )
        return web.paginate(found, number), refused

    listed, refused = await web.run(view)
    return web.render(request, "monitors.html", who=who, schedules=listed, refused=refused)


@web.page
async def monitor(request: Request) -> Response:
    """A schedule and its executions, newest first."""
    who = await web.caller(request)
    platform = web.platform_of(request)
    team, name = _names(request)
    number = web.page_number(request)

    def view() -> tuple[Schedule, web.Pager]:
        with web.viewing(request, who, "monitor", team=team, name=name):
            schedule = platform.monitoring.describe_schedule(who.ctx, team, name)
            executions = platform.monitoring.list_executions(who.ctx, team, name, MAX_EXECUTIONS)
        return schedule, web.paginate(executions, number)

    schedule, executions = await web.run(view)
    action = "StopMonitoringSchedule" if schedule.status == "Scheduled" else "StartMonitoringSchedule"
    switches = web.may(request, who, action, schedule_target(team, name))
    return web.render(request, "monitor.html", who=who, schedule=schedule, executions=executions, switches=switches)


@web.page
async def set_running(request: Request) -> Response:
    """Stop or start a schedule (``/stop``, ``/start``): a stopped schedule starts no execution."""
    who, _ = await web.action(request)
    platform = web.platform_of(request)
    team, name = _names(request)
    running = request.url.path.endswith("/start")
    await web.run(lambda: platform.monitoring.set_schedule_status(who.ctx, team, name, running=running))
    return web.redirect(request, f"/console/monitors/{team}/{name}")


@dataclass(frozen=True)
class ViolationRow:
    feature_name: str
    constraint_check_type: str
    description: str


def _read_json(platform: Platform, ctx: RequestContext, uri: str) -> dict[str, Any] | None:
    """A JSON object of the team bucket read as the caller, or ``None`` if it is refused, gone or not JSON."""
    if not uri:
        return None
    try:
        bucket, key = parse_uri(uri)
        document = json.loads(platform.storage.get_object_bytes(ctx, bucket, key))
    except (StrongroomError, ValueError):
        return None
    return document if isinstance(document, dict) else None


def _violations(execution: Execution, document: dict[str, Any] | None) -> list[ViolationRow]:
    if document is not None and isinstance(document.get("violations"), list):
        return [
            ViolationRow(*(str(v.get(k, "")) for k in ("feature_name", "constraint_check_type", "description")))
            for v in document["violations"]
            if isinstance(v, dict)
        ]
    return [
        ViolationRow(v.get("feature_name", ""), v.get("constraint_check_type", ""), "") for v in execution.violations
    ]


def drift_chart(execution: Execution, threshold: float | None) -> charts.Chart:
    """Each compared feature's distance from the baseline; a feature the drift check flagged is red."""
    flagged = {v.get("feature_name") for v in execution.violations if v.get("constraint_check_type") == DRIFT}
    values = [(name, distance, "flagged" if name in flagged else "") for name, distance in execution.distances.items()]
    label = f"threshold {threshold:g}" if threshold is not None else ""
    return charts.rows(
        "drift",
        "Distance from the baseline per feature",
        values,
        line=threshold,
        line_label=label,
        fmt="{:.3f}",
    )


@web.page
async def execution(request: Request) -> Response:
    who = await web.caller(request)
    platform = web.platform_of(request)
    team, name = _names(request)
    execution_id = _execution_id(request)
    number = web.page_number(request)

    def view() -> tuple[Schedule, Execution, list[ViolationRow], bool, float | None]:
        with web.viewing(request, who, "monitoring-execution", team=team, name=name, execution=execution_id):
            schedule = platform.monitoring.describe_schedule(who.ctx, team, name)
            found = platform.monitoring.describe_execution(who.ctx, team, name, execution_id)
            document = _read_json(platform, who.ctx, found.violations_uri) if found.violations else None
            constraints = _read_json(platform, who.ctx, schedule.constraints_uri) if found.distances else None
        threshold = None
        if constraints is not None:
            try:
                config = Constraints.from_json(constraints).monitoring_config
                threshold = config.distribution_constraints.comparison_threshold
            except InvalidInput:
                threshold = None
        described = document is not None
        return schedule, found, _violations(found, document), described, threshold

    schedule, found, violations, described, threshold = await web.run(view)
    return web.render(
        request,
        "execution.html",
        who=who,
        schedule=schedule,
        execution=found,
        violations=web.paginate(violations, number),
        described=described,
        threshold=threshold,
        drift=drift_chart(found, threshold) if found.distances else None,
    )


@web.page
async def report(request: Request) -> Response:
    """The execution's ``report.html`` from the team bucket, decrypted as the caller reads it,
    shown as a sandboxed page of its own (its own CSP: inline styles, nothing else)."""
    who = await web.caller(request)
    platform = web.platform_of(request)
    team, name = _names(request)
    execution_id = _execution_id(request)

    def view() -> bytes:
        with web.viewing(request, who, "monitoring-report", team=team, name=name, execution=execution_id):
            found = platform.monitoring.describe_execution(who.ctx, team, name, execution_id)
            if not found.report_uri:
                raise NotFound(f"execution {execution_id} has no report (it is {found.status})", field="execution")
            bucket, key = parse_uri(found.report_uri)
            return platform.storage.get_object_bytes(who.ctx, bucket, key)

    body = await web.run(view)
    response = web.secured(Response(body, media_type="text/html; charset=utf-8"))
    response.headers["content-security-policy"] = REPORT_CSP
    response.headers["content-disposition"] = 'inline; filename="report.html"'
    return response


ROUTES: list[BaseRoute] = [
    Route("/console/monitors", monitors, methods=["GET"]),
    Route("/console/monitors/{team}/{name}", monitor, methods=["GET"]),
    Route("/console/monitors/{team}/{name}/start", set_running, methods=["POST"]),
    Route("/console/monitors/{team}/{name}/stop", set_running, methods=["POST"]),
    Route("/console/monitors/{team}/{name}/executions/{execution}", execution, methods=["GET"]),
    Route("/console/monitors/{team}/{name}/executions/{execution}/report", report, methods=["GET"]),
]
