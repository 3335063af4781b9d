"""Prometheus ``/metrics``: authenticated, and allowed to PlatformAdmin and Auditor (``ReadMetrics``)."""

from __future__ import annotations

from typing import Annotated

import anyio
from fastapi import APIRouter, Depends, Response

from strongroom.api.deps import context, platform
from strongroom.core.context import RequestContext
from strongroom.observability.metrics import CONTENT_TYPE
from strongroom.platform import Platform
from strongroom.policy.engine import Target

router = APIRouter(tags=["system"])
METRICS = Target("platform", "", "metrics")


@router.get("/metrics")
async def metrics(
    ctx: Annotated[RequestContext, Depends(context)], p: Annotated[Platform, Depends(platform)]
) -> Response:
    def scrape() -> bytes:
        with p.guard.begin(ctx, "ReadMetrics", METRICS):
            return p.metrics.render()

    return Response(await anyio.to_thread.run_sync(scrape), media_type=CONTENT_TYPE)
