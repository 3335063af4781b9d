"""The web console: server-rendered pages (Jinja2 + htmx) over the services the API uses.

``routes()`` is mounted by ``strongroom.api.app``; every page and action is authenticated by
``strongroom.guard.connection.console_session`` and decided and audited by the guard.
"""

from __future__ import annotations

from pathlib import Path

from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from strongroom.console import (
    admin,
    catalog,
    endpoint_pages,
    experiments,
    lineage,
    models,
    monitors,
    signin,
    sso,
    workbench,
)

STATIC = Path(__file__).parent / "static"


def experiment_routes() -> list[BaseRoute]:
    """Experiments, trials, trial components, their compare, and the lineage graph."""
    return [
        Route("/console/experiments", experiments.experiments, methods=["GET"]),
        Route("/console/experiments/{team}/{name}", experiments.experiment, methods=["GET"]),
        Route("/console/trials/{team}/{name}", experiments.trial, methods=["GET"]),
        Route("/console/trial-components/{team}/{name}", experiments.component, methods=["GET"]),
        Route("/console/compare/{team}", experiments.compare, methods=["GET"]),
        Route("/console/lineage", lineage.entities, methods=["GET"]),
        Route("/console/lineage/graph", lineage.graph, methods=["GET"]),
    ]


def routes() -> list[BaseRoute]:
    """The console's routes: ``/`` and everything under ``/console/``."""
    return [
        Route("/", signin.root, methods=["GET"]),
        Route("/console/", signin.home, methods=["GET"]),
        Route("/console/signin", signin.signin_page, methods=["GET"]),
        Route("/console/signin", signin.signin, methods=["POST"]),
        Route("/console/oidc/start", sso.start, methods=["GET"]),
        Route(sso.CALLBACK, sso.callback, methods=["GET"]),
        Route("/console/signout", signin.signout, methods=["POST"]),
        Route("/console/role", signin.switch_role, methods=["POST"]),
        Route("/console/catalog", catalog.catalog, methods=["GET"]),
        Route("/console/catalog/launch/{product}", catalog.launch_page, methods=["GET"]),
        Route("/console/catalog/launch/{product}", catalog.launch, methods=["POST"]),
        Route("/console/catalog/{team}/{name}", catalog.provisioned, methods=["GET"]),
        Route("/console/catalog/{team}/{name}/status", catalog.provisioned_status, methods=["GET"]),
        Route("/console/catalog/{team}/{name}/terminate", catalog.terminate, methods=["POST"]),
        Route("/console/notebooks", catalog.notebooks, methods=["GET"]),
        Route("/console/notebooks/{team}/{name}/open", catalog.open_notebook, methods=["POST"]),
        Route("/console/notebooks/{team}/{name}/start", catalog.notebook_running, methods=["POST"]),
        Route("/console/notebooks/{team}/{name}/stop", catalog.notebook_running, methods=["POST"]),
        Route("/console/access", workbench.access, methods=["GET"]),
        Route("/console/data", workbench.data, methods=["GET"]),
        Route("/console/data/{bucket}", workbench.bucket, methods=["GET"]),
        Route("/console/data/{bucket}/versions", workbench.versions, methods=["GET"]),
        Route("/console/data/{bucket}/download", workbench.download, methods=["GET"]),
        Route("/console/data/{bucket}/upload", workbench.upload, methods=["POST"]),
        Route("/console/jobs", workbench.jobs, methods=["GET"]),
        Route("/console/jobs/{team}/{name}", workbench.job, methods=["GET"]),
        Route("/console/jobs/{team}/{name}/log", workbench.job_log, methods=["GET"]),
        Route("/console/jobs/{team}/{name}/stop", workbench.stop_job, methods=["POST"]),
        *experiment_routes(),
        Route("/console/tokens", workbench.tokens, methods=["GET"]),
        Route("/console/people", workbench.people, methods=["GET"]),
        Route("/console/tokens/{token}/revoke", workbench.revoke_token, methods=["POST"]),
        Route("/console/endpoints", workbench.endpoints, methods=["GET"]),
        Route("/console/endpoints", workbench.create_endpoint, methods=["POST"]),
        Route("/console/audit", workbench.audit, methods=["GET"]),
        Route("/console/audit/verify", workbench.audit_verify, methods=["POST"]),
        Route("/console/audit/export", workbench.audit_export, methods=["GET"]),
        *models.ROUTES,
        *endpoint_pages.ROUTES,
        *monitors.ROUTES,
        *admin.ROUTES,
        Mount("/console/static", StaticFiles(directory=STATIC), name="console-static"),
    ]
