"""The FastAPI application: routers, error rendering, middleware."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

import strongroom
from strongroom.api import problems
from strongroom.api.middleware import PlatformMiddleware
from strongroom.api.routers import (
    audit,
    catalog,
    experiments,
    git,
    identity,
    jobs,
    kms,
    lineage,
    notebooks,
    policy,
    serving,
    storage,
    system,
)
from strongroom.core.errors import StrongroomError
from strongroom.core.platform import Platform
from strongroom.gitrepo import http as git_http
from strongroom.notebooks import packages as notebook_packages
from strongroom.notebooks import proxy as notebook_proxy

# Streaming endpoints whose bodies may exceed max_request_bytes (they stream, never buffer).
# The notebook proxy and the package index stream too, and carry long-lived WebSockets and downloads.
UNLIMITED_BODY_PREFIXES = ("/git/", storage.OBJECTS_PREFIX, "/notebooks/", "/pypi/")
ROUTERS = (
    identity.router,
    policy.router,
    audit.router,
    system.router,
    git.router,
    kms.router,
    storage.router,
    jobs.router,
    experiments.router,
    lineage.router,
    catalog.router,
    notebooks.router,
    serving.router,
    serving.invocations,
)


def create_app(platform: Platform) -> FastAPI:
    app = FastAPI(
        title="Strongroom API",
        version=strongroom.__version__,
        openapi_url="/api/openapi.json",
        docs_url=None,
        redoc_url=None,
        redirect_slashes=False,
    )
    app.state.platform = platform
    for router in ROUTERS:
        app.include_router(router)
    app.router.routes.extend(git_http.routes())
    # The notebook proxy is the hot path: matched first (no API path starts with /notebooks/).
    app.router.routes[:0] = notebook_proxy.routes()
    app.router.routes.extend(notebook_packages.routes())
    app.add_exception_handler(StrongroomError, problems.strongroom_error)
    app.add_exception_handler(RequestValidationError, problems.validation_error)
    app.add_exception_handler(HTTPException, problems.http_error)
    app.add_exception_handler(Exception, problems.internal_error)
    app.add_middleware(
        PlatformMiddleware,  # type: ignore[arg-type]
        audit=platform.audit_log,
        max_body=platform.config.max_request_bytes,
        timeout=platform.config.request_timeout_seconds,
        audit_unhandled=platform.guard.enforcing,
        unlimited_prefixes=UNLIMITED_BODY_PREFIXES,
    )
    return app
