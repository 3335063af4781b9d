"""FastAPI dependencies: the authenticated ``RequestContext``, and the platform."""

from __future__ import annotations

from fastapi import Request

from strongroom.core.context import RequestContext
from strongroom.guard.connection import authenticate, request_context
from strongroom.platform import Platform


async def platform(request: Request) -> Platform:
    platform: Platform = request.app.state.platform
    return platform


async def context(request: Request) -> RequestContext:
    """Authenticate the bearer token (``strongroom.guard.connection``); every route depends on this."""
    principal = await authenticate(request, request.app.state.platform.identity)
    return request_context(request, principal, idempotent=True)
