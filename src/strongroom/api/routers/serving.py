"""Models, endpoint configs, endpoints, and the invocation route (the data plane's front door)."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from starlette.routing import Route

from strongroom.api.deps import context, platform
from strongroom.api.hot import HotRoute
from strongroom.api.pagination import Page
from strongroom.api.problems import problem
from strongroom.core.context import RequestContext
from strongroom.core.errors import InvalidInput, PayloadTooLarge, RequestTimeout, StrongroomError
from strongroom.guard.connection import authenticate, request_context
from strongroom.platform import Platform
from strongroom.serving.models import (
    Endpoint,
    EndpointConfig,
    EndpointConfigSpec,
    EndpointMetrics,
    EndpointSpec,
    Model,
    ModelSpec,
    UpdateEndpointSpec,
)
from strongroom.serving.service import MAX_INVOCATION_BYTES

router = APIRouter(prefix="/api/v1", tags=["serving"])
Ctx = Annotated[RequestContext, Depends(context)]
P = Annotated[Platform, Depends(platform)]


@router.post("/teams/{team}/models", status_code=201)
def create_model(team: str, spec: ModelSpec, ctx: Ctx, p: P) -> Model:
    return p.serving.create_model(ctx, team, spec)


@router.get("/teams/{team}/models")
def list_models(team: str, ctx: Ctx, p: P) -> Page[Model]:
    return Page[Model](items=p.serving.list_models(ctx, team))


@router.get("/teams/{team}/models/{name}")
def describe_model(team: str, name: str, ctx: Ctx, p: P) -> Model:
    return p.serving.describe_model(ctx, team, name)


@router.delete("/teams/{team}/models/{name}", status_code=204)
def delete_model(team: str, name: str, ctx: Ctx, p: P) -> Response:
    p.serving.delete_model(ctx, team, name)
    return Response(status_code=204)


@router.post("/teams/{team}/endpoint-configs", status_code=201)
def create_endpoint_config(team: str, spec: EndpointConfigSpec, ctx: Ctx, p: P) -> EndpointConfig:
    return p.serving.create_endpoint_config(ctx, team, spec)


@router.get("/teams/{team}/endpoint-configs")
def list_endpoint_configs(team: str, ctx: Ctx, p: P) -> Page[EndpointConfig]:
    return Page[EndpointConfig](items=p.serving.list_endpoint_configs(ctx, team))


@router.get("/teams/{team}/endpoint-configs/{name}")
def describe_endpoint_config(team: str, name: str, ctx: Ctx, p: P) -> EndpointConfig:
    return p.serving.describe_endpoint_config(ctx, team, name)


@router.delete("/teams/{team}/endpoint-configs/{name}", status_code=204)
def delete_endpoint_config(team: str, name: str, ctx: Ctx, p: P) -> Response:
    p.serving.delete_endpoint_config(ctx, team, name)
    return Response(status_code=204)


@router.post("/teams/{team}/endpoints", status_code=201)
def create_endpoint(team: str, spec: EndpointSpec, ctx: Ctx, p: P) -> Endpoint:
    return p.serving.create_endpoint(ctx, team, spec)


@router.get("/teams/{team}/endpoints")
def list_endpoints(team: str, ctx: Ctx, p: P) -> Page[Endpoint]:
    return Page[Endpoint](items=p.serving.list_endpoints(ctx, team))


@router.get("/teams/{team}/endpoints/{name}")
def describe_endpoint(team: str, name: str, ctx: Ctx, p: P) -> Endpoint:
    return p.serving.describe_endpoint(ctx, team, name)


@router.put("/teams/{team}/endpoints/{name}", status_code=202)
def update_endpoint(team: str, name: str, spec: UpdateEndpointSpec, ctx: Ctx, p: P) -> Endpoint:
    """``UpdateEndpoint``: blue-green move to another endpoint config (``Updating`` until it serves)."""
    return p.serving.update_endpoint(ctx, team, name, spec)


@router.get("/teams/{team}/endpoints/{name}/metrics")
def endpoint_metrics(team: str, name: str, ctx: Ctx, p: P) -> EndpointMetrics:
    """Per-variant invocations, 4xx/5xx, model latency and overhead histograms, capture lag and drops."""
    return p.serving.endpoint_metrics(ctx, team, name)


@router.delete("/teams/{team}/endpoints/{name}", status_code=202)
def delete_endpoint(team: str, name: str, ctx: Ctx, p: P) -> Endpoint:
    return p.serving.delete_endpoint(ctx, team, name)


_TRUE, _FALSE = frozenset({"1", "true", "t", "yes", "y", "on"}), frozenset({"0", "false", "f", "no", "n", "off"})


def _flag(request: Request, name: str) -> bool:
    value = request.query_params.get(name, "false").lower()
    if value not in _TRUE | _FALSE:
        raise InvalidInput(f"?{name}= takes true or false, not {value[:20]!r}", field=name)
    return value in _TRUE


async def invoke(request: Request) -> Response:
    """``InvokeEndpoint``: text/csv or application/json rows in, one score per row out
    (``?explain=true``: each score with its exact per-feature SHAP contributions, as JSON, or as
    CSV rows ``score,contribution...,bias`` with ``Accept: text/csv``).

    The data plane's hot path: a plain ASGI route, matched first, that runs on the event loop
    from start to answer (authentication from the token cache, the kept InvokeEndpoint decision,
    the worker's channel, the capture's group commit); a thread only for what touches the
    database (a token or a decision not seen yet)."""
    p: Platform = request.app.state.platform
    team, name = request.path_params["team"], request.path_params["name"]
    try:
        ctx = request_context(request, await authenticate(request, p.identity), idempotent=True)
        content_type = request.headers.get("content-type", "")
        variant = request.headers.get("x-target-variant", "")
        declared = request.headers.get("content-length", "")
        refusal: StrongroomError | None = None
        explain_as = ""
        if _flag(request, "explain"):
            accept = request.headers.get("accept", "")
            explain_as = "csv" if "text/csv" in accept and "application/json" not in accept else "json"
        body = b""
        if declared.isdigit() and int(declared) > MAX_INVOCATION_BYTES:
            refusal = PayloadTooLarge(
                f"the body is {declared} bytes; an invocation takes at most {MAX_INVOCATION_BYTES}", field="body"
            )
        else:
            # A client that sends its body too slowly gets 408; the event loop serves others meanwhile.
            seconds = p.config.invocation_body_timeout_seconds
            try:
                async with asyncio.timeout(seconds):  # asyncio's own: a tenth of anyio's cost per request
                    body = await request.body()
            except TimeoutError:
                refusal = RequestTimeout(
                    f"the request body did not arrive within {seconds:g} s; send it at once", field="body"
                )
        answer, out_type = await p.serving.invoke(
            ctx, team, name, body, content_type, variant, explain=explain_as, refusal=refusal
        )
    except RequestTimeout as exc:
        # The rest of the body may still be on its way: close the connection after the problem.
        timed_out = problem(request, exc)
        timed_out.headers["Connection"] = "close"
        return timed_out
    except StrongroomError as exc:
        return problem(request, exc)
    return Response(content=answer, media_type=None, headers={"Content-Type": out_type})


def invocation_routes() -> list[Route]:
    """The data plane's route (``create_app`` puts it first: no API path starts with /endpoints/)."""
    return [HotRoute("/endpoints/{team}/{name}/invocations", invoke, methods=["POST"], name="invoke_endpoint")]
