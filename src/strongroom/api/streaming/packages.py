"""``/pypi/...``: the one package index a notebook's ``pip`` can reach, chosen by the platform admin.

Inside a notebook ``PIP_INDEX_URL`` points at the loopback forwarder, which sends the request
over the platform socket here. With ``package_index_url`` configured, ``/pypi/simple/<rest>``
is fetched from ``<package_index_url>/<rest>`` and other ``/pypi/<rest>`` paths relative to the
index's parent (where PEP 503 indexes keep their files), streamed back. Without it every request
fails with 503, so ``pip install`` fails just as it would with no internet.

Every request is authenticated, authorized (``UsePackageIndex``) and audited.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import urljoin, urlsplit

import anyio
import httpx
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from strongroom.api.problems import problem
from strongroom.core.errors import InvalidInput, StrongroomError, Unavailable
from strongroom.guard.connection import authenticate, request_context
from strongroom.policy.engine import Target

_PASS_HEADERS = ("content-type", "content-length", "etag", "last-modified", "content-encoding")


def upstream_url(index_url: str, path: str) -> str:
    """The index URL ``/pypi/<path>`` stands for; refuses paths that could leave the index's host."""
    segments = path.split("/")
    if ".." in segments or "" in segments[:-1] or "\\" in path or ":" in path or "%" in path:
        raise InvalidInput("not a package index path", field="path")
    base = index_url.rstrip("/") + "/"
    simple = segments[0] == "simple"
    url = urljoin(base, "/".join(segments[1:])) if simple else urljoin(urljoin(base, ".."), path)
    if urlsplit(url).netloc != urlsplit(base).netloc:
        raise InvalidInput("not a package index path", field="path")
    return url


async def package_index(request: Request) -> Response:
    platform = request.app.state.platform
    try:
        principal = await authenticate(
            request,
            platform.identity,
            hint="the package index is for notebooks and jobs: send 'Authorization: Bearer <token>'",
        )
    except StrongroomError as exc:
        return problem(request, exc)
    teams = sorted({g.team for g in principal.grants if g.team})
    ctx = request_context(request, principal)
    path = request.path_params["path"]
    try:
        ticket = await anyio.to_thread.run_sync(
            lambda: platform.guard.begin(
                ctx,
                "UsePackageIndex",
                Target("package-index", teams[0] if teams else "", "default"),
                params={"path": path[:256]},
            )
        )
    except StrongroomError as exc:  # the guard audited the denial
        return problem(request, exc)
    index = platform.config.package_index_url
    try:
        if not index:
            raise Unavailable(
                "no package index is approved on this platform: nothing inside a notebook reaches the internet. "
                "A platform admin can approve one (package_index_url in config.toml)"
            )
        url = upstream_url(index, path)
    except StrongroomError as exc:
        await anyio.to_thread.run_sync(ticket.finish, exc)
        return problem(request, exc)
    client_http = httpx.AsyncClient(timeout=httpx.Timeout(60.0), follow_redirects=True)
    try:
        upstream = await client_http.send(client_http.build_request(request.method, url), stream=True)
    except httpx.HTTPError as exc:
        await client_http.aclose()
        error = Unavailable(f"the approved package index did not answer: {type(exc).__name__}")
        await anyio.to_thread.run_sync(ticket.finish, error)
        return problem(request, error)

    async def body() -> AsyncIterator[bytes]:
        failure: BaseException | None = None
        try:
            async for chunk in upstream.aiter_raw():
                yield chunk
        except BaseException as exc:
            failure = exc
            raise
        finally:
            await upstream.aclose()
            await client_http.aclose()
            await anyio.to_thread.run_sync(ticket.finish, failure)

    headers = {k: v for k, v in upstream.headers.items() if k.lower() in _PASS_HEADERS}
    return StreamingResponse(body(), status_code=upstream.status_code, headers=headers)


def routes() -> list[BaseRoute]:
    return [Route("/pypi/{path:path}", package_index, methods=["GET", "HEAD"])]
