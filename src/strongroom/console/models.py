"""Models and the model registry: models, package groups, versions with their approval history,
and approve/reject with a reason (the roles that deploy: MLOpsEngineer, the team's DataScienceAdmin)."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from strongroom.console import web
from strongroom.console.catalog import teams_of
from strongroom.core.errors import Conflict, InvalidInput
from strongroom.core.names import check_name
from strongroom.policy.engine import Target
from strongroom.serving.registry import MAX_VERSION
from strongroom.serving.registry_models import APPROVAL_STATUSES, ApprovalSpec, ModelPackage


def _team_name(request: Request, name: str = "name", what: str = "name") -> tuple[str, str]:
    return check_name(request.path_params["team"], "team"), check_name(request.path_params[name], what)


def _version(request: Request) -> int:
    raw = request.path_params["version"]
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_VERSION:
        raise InvalidInput(f"version must be a number from 1 to {MAX_VERSION}", field="version")
    return int(raw)


@web.page
async def models(request: Request) -> Response:
    """The models of the teams one acts for (newest first)."""
    who = await web.caller(request)
    platform = web.platform_of(request)
    number = web.page_number(request)

    def view() -> tuple[web.Pager, list[str]]:
        with web.viewing(request, who, "models"):
            found, refused = web.across_teams(
                teams_of(platform, who), lambda t: platform.serving.list_models(who.ctx, t)
            )
        found.sort(key=lambda m: m.created_at, reverse=True)
        return web.paginate(found, number), refused

    listed, refused = await web.run(view)
    return web.render(request, "models.html", who=who, models=listed, refused=refused)


@web.page
async def model(request: Request) -> Response:
    who = await web.caller(request)
    platform = web.platform_of(request)
    team, name = _team_name(request)

    def view() -> Any:
        with web.viewing(request, who, "model", team=team, name=name):
            return platform.serving.describe_model(who.ctx, team, name)

    found = await web.run(view)
    return web.render(request, "model.html", who=who, model=found)


@web.page
async def registry(request: Request) -> Response:
    """Package groups of the teams one acts for, with their latest and latest approved versions."""
    who = await web.caller(request)
    platform = web.platform_of(request)
    number = web.page_number(request)

    def view() -> tuple[web.Pager, list[str]]:
        with web.viewing(request, who, "registry"):
            found, refused = web.across_teams(
                teams_of(platform, who), lambda t: platform.model_registry.list_groups(who.ctx, t)
            )
        return web.paginate(found, number), refused

    listed, refused = await web.run(view)
    return web.render(request, "registry.html", who=who, groups=listed, refused=refused)


@web.page
async def group(request: Request) -> Response:
    """A package group's versions, newest first, optionally of one approval status (``?status=``)."""
    who = await web.caller(request)
    platform = web.platform_of(request)
    team, name = _team_name(request, "group", "model_package_group_name")
    number = web.page_number(request)
    status = request.query_params.get("status", "")
    if status and status not in APPROVAL_STATUSES:
        raise InvalidInput(f"status is one of {', '.join(APPROVAL_STATUSES)}", field="status")

    def view() -> tuple[Any, web.Pager]:
        with web.viewing(request, who, "model-package-group", team=team, group=name, status=status):
            found = platform.model_registry.describe_group(who.ctx, team, name)
            versions = platform.model_registry.list_packages(who.ctx, team, name, status or None)
        return found, web.paginate(versions, number)

    found, versions = await web.run(view)
    return web.render(
        request,
        "package_group.html",
        who=who,
        group=found,
        versions=versions,
        wanted=status,
        statuses=APPROVAL_STATUSES,
    )


def _package_page(
    request: Request, who: web.Caller, package: ModelPackage, error: Any = None, reason: str = ""
) -> Response:
    target = Target("model-package", package.team, f"{package.group}/{package.version}", owner=package.created_by)
    decides = web.may(request, who, "UpdateModelPackageApproval", target)
    return web.render(
        request,
        "package.html",
        error.status if error is not None else 200,
        who=who,
        package=package,
        decides=decides,
        error=error,
        reason=reason,
    )


@web.page
async def package(request: Request) -> Response:
    """One version: its pinned model, its approval status and history (who, role, when, why), and
    the approve/reject form for a role that may decide."""
    who = await web.caller(request)
    platform = web.platform_of(request)
    team, name = _team_name(request, "group", "model_package_group_name")
    version = _version(request)

    def view() -> ModelPackage:
        with web.viewing(request, who, "model-package", team=team, group=name, version=version):
            return platform.model_registry.describe(who.ctx, team, name, version)

    found = await web.run(view)
    return _package_page(request, who, found)


@web.page
async def decide(request: Request) -> Response:
    """Approve or reject a version with a reason (``UpdateModelPackageApproval``, decided and
    audited by the registry's own ticket); a missing reason shows the form again."""
    who, form = await web.action(request)
    platform = web.platform_of(request)
    team, name = _team_name(request, "group", "model_package_group_name")
    version = _version(request)
    reason = form.get("reason").strip()
    try:
        spec = ApprovalSpec(approval_status=form.get("approval_status"), reason=reason)  # type: ignore[arg-type]
    except ValidationError as exc:
        field = str(exc.errors()[0]["loc"][0]) if exc.errors() and exc.errors()[0]["loc"] else "reason"
        detail = (
            "give the reason for your decision (up to 1024 characters); it is kept in the version's history"
            if field == "reason"
            else f"approval_status is one of {', '.join(APPROVAL_STATUSES)}"
        )
        error: InvalidInput | Conflict = InvalidInput(detail, field=field)
    else:
        try:
            await web.run(lambda: platform.model_registry.update_approval(who.ctx, team, name, version, spec))
        except Conflict as conflict:
            error = conflict
        else:
            return web.redirect(request, f"/console/registry/{team}/{name}/{version}")
    found = await web.run(lambda: platform.model_registry.describe(who.ctx, team, name, version))
    return _package_page(request, who, found, error, reason)


ROUTES: list[BaseRoute] = [
    Route("/console/models", models, methods=["GET"]),
    Route("/console/models/{team}/{name}", model, methods=["GET"]),
    Route("/console/registry", registry, methods=["GET"]),
    Route("/console/registry/{team}/{group}", group, methods=["GET"]),
    Route("/console/registry/{team}/{group}/{version}", package, methods=["GET"]),
    Route("/console/registry/{team}/{group}/{version}/approval", decide, methods=["POST"]),
]
