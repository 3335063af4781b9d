"""An endpoint's page: its variants and, per variant, the data plane's counters drawn as charts
(invocations, 4xx, 5xx; model latency and platform overhead histograms) and the capture's lag and
drops. The charts are the API's ``GET .../endpoints/{name}/metrics`` (``ServingService.endpoint_metrics``),
redrawn every few seconds by htmx polling a fragment."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from strongroom.console import charts, web
from strongroom.core.errors import Forbidden
from strongroom.core.names import check_name
from strongroom.serving.models import EndpointMetrics

REFRESH_SECONDS = 5


@dataclass(frozen=True)
class VariantCharts:
    name: str
    invocations: int
    client_errors: int
    server_errors: int
    p50_ms: float
    p99_ms: float
    overhead_p50_ms: float
    overhead_p99_ms: float
    counts: charts.Chart
    model: charts.Chart
    overhead: charts.Chart


def variant_charts(metrics: EndpointMetrics) -> list[VariantCharts]:
    """Per variant: a bar per status class and the two latency histograms."""
    drawn = []
    for index, v in enumerate(metrics.variants):
        name = v.variant or "(refused before routing)"
        ok = v.invocations - v.client_errors - v.server_errors
        counts = charts.rows(
            f"counts-{index}",
            f"Invocations of {name} by status",
            [("2xx", ok, ""), ("4xx", v.client_errors, "client"), ("5xx", v.server_errors, "server")],
        )
        model = charts.histogram(f"model-{index}", f"Model latency of {name}", v.model_latency.buckets)
        overhead = charts.histogram(f"overhead-{index}", f"Platform overhead of {name}", v.overhead_latency.buckets)
        drawn.append(
            VariantCharts(
                name,
                v.invocations,
                v.client_errors,
                v.server_errors,
                v.model_latency.p50_ms,
                v.model_latency.p99_ms,
                v.overhead_latency.p50_ms,
                v.overhead_latency.p99_ms,
                counts,
                model,
                overhead,
            )
        )
    return drawn


def _names(request: Request) -> tuple[str, str]:
    return check_name(request.path_params["team"], "team"), check_name(request.path_params["name"], "name")


@web.page
async def endpoint(request: Request) -> Response:
    who = await web.caller(request)
    platform = web.platform_of(request)
    team, name = _names(request)

    def view() -> tuple[Any, Any, EndpointMetrics]:
        with web.viewing(request, who, "endpoint", team=team, name=name):
            found = platform.serving.describe_endpoint(who.ctx, team, name)
            try:
                config = platform.serving.describe_endpoint_config(who.ctx, team, found.endpoint_config_name)
            except Forbidden:
                config = None
            metrics = platform.serving.endpoint_metrics(who.ctx, team, name)
        return found, config, metrics

    found, config, metrics = await web.run(view)
    return web.render(
        request,
        "endpoint.html",
        who=who,
        endpoint=found,
        config=config,
        metrics=metrics,
        variants=variant_charts(metrics),
        refresh=REFRESH_SECONDS,
    )


@web.page
async def endpoint_metrics(request: Request) -> Response:
    """The charts alone (htmx polls this fragment)."""
    who = await web.caller(request)
    platform = web.platform_of(request)
    team, name = _names(request)

    def view() -> EndpointMetrics:
        with web.viewing(request, who, "endpoint-metrics", team=team, name=name):
            return platform.serving.endpoint_metrics(who.ctx, team, name)

    metrics = await web.run(view)
    return web.render(
        request, "_endpoint_metrics.html", metrics=metrics, variants=variant_charts(metrics), refresh=REFRESH_SECONDS
    )


ROUTES: list[BaseRoute] = [
    Route("/console/endpoints/{team}/{name}", endpoint, methods=["GET"]),
    Route("/console/endpoints/{team}/{name}/metrics", endpoint_metrics, methods=["GET"]),
]
