"""Catalog and notebook pages: products, launch with typed parameters, provisioned products with
live status, outputs, terminate; notebooks with stop/start and "Open JupyterLab"."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from strongroom.catalog.models import ProvisionedProduct
from strongroom.console import web
from strongroom.core.errors import InvalidInput, NotFound, StrongroomError
from strongroom.core.names import check_name
from strongroom.platform import Platform


def teams_of(platform: Platform, who: web.Caller) -> list[str]:
    """The teams a page lists: those of the roles acted with (every team for a PlatformAdmin or Auditor)."""
    grants = who.session.principal.grants
    if any(g.role in ("PlatformAdmin", "Auditor") for g in grants):
        return [t.name for t in platform.identity.list_teams(who.ctx)]
    return sorted({g.team for g in grants if g.team})


def _names(request: Request) -> tuple[str, str]:
    team, name = request.path_params["team"], request.path_params["name"]
    return check_name(team, "team"), check_name(name, "name")


@web.page
async def catalog(request: Request) -> Response:
    who = await web.caller(request)
    platform = web.platform_of(request)
    number = web.page_number(request)

    def view() -> tuple[Any, web.Pager, list[str]]:
        with web.viewing(request, who, "catalog"):
            products = platform.catalog.list_products(who.ctx)
            provisioned, refused = web.across_teams(
                teams_of(platform, who), lambda t: platform.catalog.list(who.ctx, t)
            )
            return products, web.paginate(provisioned, number), refused

    products, provisioned, refused = await web.run(view)
    return web.render(request, "catalog.html", who=who, products=products, provisioned=provisioned, refused=refused)


def _launch_form(
    request: Request, who: web.Caller, product: Any, values: dict[str, str], error: Any = None
) -> Response:
    status = error.status if error is not None else 200
    return web.render(
        request,
        "launch.html",
        status,
        who=who,
        product=product,
        version=product.version(None),
        values=values,
        error=error,
    )


@web.page
async def launch_page(request: Request) -> Response:
    who = await web.caller(request)
    platform = web.platform_of(request)
    name = check_name(request.path_params["product"], "product")

    def view() -> Any:
        with web.viewing(request, who, "launch", product=name):
            return platform.catalog.describe_product(who.ctx, name)

    product = await web.run(view)
    teams = sorted({g.team for g in who.session.principal.grants if g.team})
    defaults = {"TeamName": teams[0] if len(teams) == 1 else ""}
    return _launch_form(request, who, product, defaults)


@web.page
async def launch(request: Request) -> Response:
    """Launch a product; a parameter its constraints refuse shows the form again, naming it."""
    who, form = await web.action(request)
    platform = web.platform_of(request)
    name = check_name(request.path_params["product"], "product")
    values = {k[len("p.") :]: v for k, v in form.items() if k.startswith("p.")}
    given = {k: v for k, v in values.items() if v != "" or k in ("TeamName",)}
    try:
        launched = await web.run(lambda: platform.catalog.launch(who.ctx, name, given))
    except InvalidInput as error:
        product = await web.run(lambda: platform.catalog.describe_product(who.ctx, name))
        return _launch_form(request, who, product, values, error)
    return web.redirect(request, f"/console/catalog/{launched.team}/{launched.name}")


@web.page
async def provisioned(request: Request) -> Response:
    who = await web.caller(request)
    platform = web.platform_of(request)
    team, name = _names(request)

    def view() -> ProvisionedProduct:
        with web.viewing(request, who, "provisioned-product", team=team, name=name):
            return platform.catalog.describe(who.ctx, team, name)

    item = await web.run(view)
    return web.render(request, "provisioned.html", who=who, item=item)


@web.page
async def provisioned_status(request: Request) -> Response:
    """The live part of a provisioned product's page (htmx polls it until it settles)."""
    who = await web.caller(request)
    platform = web.platform_of(request)
    team, name = _names(request)
    item = await web.run(lambda: platform.catalog.describe(who.ctx, team, name))
    return web.render(request, "_provisioned_status.html", who=who, item=item)


@web.page
async def terminate(request: Request) -> Response:
    who, _ = await web.action(request)
    platform = web.platform_of(request)
    team, name = _names(request)
    await web.run(lambda: platform.catalog.terminate(who.ctx, team, name))
    return web.redirect(request, f"/console/catalog/{team}/{name}")


@web.page
async def notebooks(request: Request) -> Response:
    who = await web.caller(request)
    platform = web.platform_of(request)
    number = web.page_number(request)

    def view() -> tuple[web.Pager, list[str]]:
        with web.viewing(request, who, "notebooks"):
            found, refused = web.across_teams(teams_of(platform, who), lambda t: platform.notebooks.list(who.ctx, t))
        return web.paginate(found, number), refused

    listed, refused = await web.run(view)
    return web.render(request, "notebooks.html", who=who, notebooks=listed, refused=refused)


@web.page
async def notebook_running(request: Request) -> Response:
    """Start or stop a notebook (``/start``, ``/stop``)."""
    who, _ = await web.action(request)
    platform = web.platform_of(request)
    team, name = _names(request)
    running = request.url.path.endswith("/start")
    await web.run(lambda: platform.notebooks.set_running(who.ctx, team, name, running))
    return web.redirect(request, "/console/notebooks")


@web.page
async def open_notebook(request: Request) -> Response:
    """Open JupyterLab: a single-use sign-in link, made for this click and followed at once.

    The link's one-time token travels only in this redirect (never in a page, a log or a
    Referer: the platform sends no referrer), expires in 30 seconds and is spent on first use.
    """
    who, _ = await web.action(request)
    platform = web.platform_of(request)
    team, name = _names(request)
    try:
        signed = await web.run(lambda: platform.notebooks.presign(who.ctx, team, name, 30))
    except NotFound as error:
        raise NotFound(f"notebook {team}/{name} does not exist") from error
    if not signed.url.startswith(f"/notebooks/{team}/{name}/"):
        raise StrongroomError("the notebook sign-in link is not on this server")
    return web.redirect(request, signed.url)
