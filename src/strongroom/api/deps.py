"""FastAPI dependencies: authentication into a ``RequestContext``, and the platform."""

from __future__ import annotations

import re

import anyio
from fastapi import Request

from strongroom.core.context import RequestContext
from strongroom.core.errors import InvalidInput, Unauthenticated
from strongroom.core.platform import Platform

_IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9._:-]{1,128}")


async def platform(request: Request) -> Platform:
    return request.app.state.platform  # type: ignore[no-any-return]


async def context(request: Request) -> RequestContext:
    """Authenticate the bearer token; every route depends on this.

    A recently seen token is resolved from the identity cache on the event loop; otherwise the
    database lookup runs in a worker thread.
    """
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("send your token as 'Authorization: Bearer <token>'")
    identity = request.app.state.platform.identity
    principal = identity.cached_principal(token.strip())
    if principal is None:
        principal = await anyio.to_thread.run_sync(identity.authenticate, token.strip())
    request.state.principal = principal
    key = request.headers.get("idempotency-key", "")
    if key and not _IDEMPOTENCY_KEY.fullmatch(key):
        raise InvalidInput("Idempotency-Key must be 1-128 characters of A-Z a-z 0-9 . _ : -", field="Idempotency-Key")
    client = request.client
    return RequestContext(
        principal=principal,
        request_id=request.state.request_id,
        source=client.host if client and client.host else "unix-socket",
        user_agent=request.headers.get("user-agent", "")[:256],
        idempotency_key=key,
    )
