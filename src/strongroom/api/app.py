"""The FastAPI application: routers, error rendering, middleware."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

import strongroom
from strongroom import console
from strongroom.api import problems
from strongroom.api.middleware import PlatformMiddleware
from strongroom.api.observe import ObservabilityMiddleware
from strongroom.api.routers import (
    audit,
    catalog,
    experiments,
    git,
    identity,
    jobs,
    kms,
    lineage,
    metrics,
    model_registry,
    monitoring,
    notebooks,
    policy,
    serving,
    storage,
    system,
)
from strongroom.api.streaming import git as git_http
from strongroom.api.streaming import notebooks as notebook_proxy
from strongroom.api.streaming import packages as notebook_packages
from strongroom.core.errors import StrongroomError
from strongroom.platform import Platform

# Streaming endpoints whose bodies may exceed max_request_bytes (they stream, never buffer).
# The notebook proxy and the package index stream too, and carry long-lived WebSockets and downloads.
UNLIMITED_BODY_PREFIXES = ("/git/", storage.OBJECTS_PREFIX, "/notebooks/", "/pypi/")
ROUTERS = (
    experiments.router,  # first: routes are matched in order, and every durable log_metric is a call here
    identity.router,
    policy.router,
    audit.router,
    system.router,
    git.router,
    kms.router,
    storage.router,
    jobs.router,
    lineage.router,
    catalog.router,
    notebooks.router,
    metrics.router,
    serving.router,
    model_registry.router,
    monitoring.router,
)


def create_app(platform: Platform) -> FastAPI:
    app = FastAPI(
        title="Strongroom API",
        version=strongroom.__version__,
        openapi_url=None,  # served by routers/system.py, to callers holding a role
        docs_url=None,
        redoc_url=None,
        redirect_slashes=False,
    )
    app.state.platform = platform
    app.state.public_url = platform.config.effective_public_url()
    for router in ROUTERS:
        app.include_router(router)
    app.include_router(system.document)
    app.router.routes.extend(git_http.routes())
    # The notebook proxy is the hot path: matched first (no API path starts with /notebooks/).
    app.router.routes[:0] = notebook_proxy.routes()
    # The hot paths (strongroom.api.hot) are matched first: the data plane's invocations, then
    # the metric writes of the experiments' SDK.
    app.router.routes[:0] = [*serving.invocation_routes(), *experiments.hot_routes()]
    app.router.routes.extend(notebook_packages.routes())
    app.router.routes.extend(console.routes())
    app.add_exception_handler(StrongroomError, problems.strongroom_error)
    app.add_exception_handler(RequestValidationError, problems.validation_error)
    app.add_exception_handler(HTTPException, problems.http_error)
    app.add_exception_handler(Exception, problems.internal_error)
    app.add_middleware(
        PlatformMiddleware,
        guard=platform.guard,
        max_body=platform.config.max_request_bytes,
        timeout=platform.config.request_timeout_seconds,
        audit_unhandled=platform.guard.enforcing,
        unlimited_prefixes=UNLIMITED_BODY_PREFIXES,
    )
    app.add_middleware(ObservabilityMiddleware, platform=platform)  # outermost: probes skip the audit layer
    return app
