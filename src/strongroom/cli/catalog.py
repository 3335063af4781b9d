"""`strongroom catalog` (products, launch, describe, update, terminate) and `strongroom notebooks`."""

from __future__ import annotations

import webbrowser
from collections.abc import Callable
from typing import Annotated

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from strongroom.catalog.models import ProvisionedProduct
from strongroom.cli.common import JsonOpt, session
from strongroom.cli.output import as_markup, console, print_json, say, show
from strongroom.core.errors import InvalidInput

catalog_app = typer.Typer(no_args_is_help=True, help="Self-service catalog: launch Team Environments and Notebooks.")
notebooks_app = typer.Typer(no_args_is_help=True, help="Notebooks: list, open in a browser, stop, start.")

ParamOpt = Annotated[
    list[str] | None, typer.Option("--param", "-p", help="Parameter as Key=Value (repeatable); see `catalog products`.")
]
WaitOpt = Annotated[bool, typer.Option("--wait/--no-wait", help="Wait until it settles, showing progress.")]
TimeoutOpt = Annotated[float, typer.Option(help="Seconds to wait at most.")]


def _parameters(items: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidInput(f"--param {item!r}: write Key=Value", field="param")
        out[key] = value
    return out


def _waiting(
    label: str, run: Callable[[Callable[[ProvisionedProduct], None]], ProvisionedProduct]
) -> ProvisionedProduct:
    """Run ``run(progress_callback)`` under a Rich spinner showing the latest provisioning event."""
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console, transient=True
    ) as progress:
        task = progress.add_task(as_markup(label), total=None)

        def update(current: ProvisionedProduct) -> None:
            last = current.events[-1] if current.events else None
            detail = f"{last.kind} {last.step}".strip() if last else current.status
            progress.update(task, description=as_markup(f"{label}: {current.status} - {detail}"))

        return run(update)


def _summary(product: ProvisionedProduct, as_json: bool) -> None:
    if as_json:
        print_json(product)
        return
    colour = {"AVAILABLE": "green", "ERROR": "red", "TAINTED": "yellow"}.get(product.status, "cyan")
    say(
        (f"{product.team}/{product.name}", "bold"),
        f" ({product.product} {product.version}): ",
        (product.status, colour),
        " ",
        product.status_message,
    )
    for key, value in product.outputs.items():
        say(f"  {key}: {value}")


@catalog_app.command("products")
def products(as_json: JsonOpt = False) -> None:
    """The products you can see, with their parameters."""
    items = session().catalog.products()
    if as_json:
        print_json(items)
        return
    for product in items:
        say((product.name, "bold"), f" ({product.display_name}): {product.description}")
        for version in product.versions:
            for p in version.parameters:
                allowed = f" [{'|'.join(p.allowed_values)}]" if p.allowed_values else ""
                default = f" (default {p.default!r})" if p.default not in (None, "") else ""
                say(f"  {version.name} {p.name}{allowed}{default}: {p.description}")


@catalog_app.command("launch")
def launch(
    product: str,
    param: ParamOpt = None,
    version: Annotated[str | None, typer.Option(help="Product version (default: newest).")] = None,
    wait: WaitOpt = True,
    timeout: TimeoutOpt = 600.0,
    as_json: JsonOpt = False,
) -> None:
    """Launch a product, e.g. `strongroom catalog launch notebook -p TeamName=risk -p NotebookName=alice`."""
    catalog = session().catalog
    launched = catalog.launch(product, _parameters(param), version=version)
    if wait:
        launched = _waiting(
            f"launching {launched.team}/{launched.name}",
            lambda cb: catalog.wait(launched.team, launched.name, timeout=timeout, progress=cb),
        )
    _summary(launched, as_json)


@catalog_app.command("describe")
def describe(team: str, name: str, as_json: JsonOpt = False) -> None:
    """Status, parameters, outputs, what it created, and its event log."""
    product = session().catalog.describe(team, name)
    if as_json:
        print_json(product)
        return
    _summary(product, False)
    show(product.resources, False, ["step", "kind", "state", "adopted"], title="resources")
    show(product.events, False, ["seq", "time", "kind", "step", "message"], title="events")


@catalog_app.command("list")
def list_products(
    team: str,
    all_: Annotated[bool, typer.Option("--all", help="Include terminated.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Provisioned products of a team."""
    items = session().catalog.list(team, include_terminated=all_)
    show(items, as_json, ["name", "product", "version", "status", "owner", "updated_at"])


@catalog_app.command("update")
def update(
    team: str,
    name: str,
    param: ParamOpt = None,
    version: Annotated[str | None, typer.Option(help="Move to this product version.")] = None,
    wait: WaitOpt = True,
    timeout: TimeoutOpt = 600.0,
    as_json: JsonOpt = False,
) -> None:
    """Change parameters (e.g. -p InstanceSize=medium) or the product version."""
    catalog = session().catalog
    catalog.update(team, name, _parameters(param), version=version)
    result = (
        _waiting(
            f"updating {team}/{name}",
            lambda cb: catalog.wait(team, name, timeout=timeout, progress=cb, accept_tainted=True),
        )
        if wait
        else catalog.describe(team, name)
    )
    _summary(result, as_json)


@catalog_app.command("terminate")
def terminate(
    team: str, name: str, wait: WaitOpt = True, timeout: TimeoutOpt = 600.0, as_json: JsonOpt = False
) -> None:
    """Remove everything the product created."""
    catalog = session().catalog
    catalog.terminate(team, name)
    result = (
        _waiting(f"terminating {team}/{name}", lambda cb: catalog.wait(team, name, timeout=timeout, progress=cb))
        if wait
        else catalog.describe(team, name)
    )
    _summary(result, as_json)


@notebooks_app.command("list")
def notebooks_list(team: str, as_json: JsonOpt = False) -> None:
    """List a team's notebooks."""
    show(session().notebooks.list(team), as_json, ["name", "owner", "status", "size", "volume_gib", "url_path"])


@notebooks_app.command("describe")
def notebooks_describe(team: str, name: str, as_json: JsonOpt = False) -> None:
    """Show a notebook: owner, status, size, volume."""
    show(session().notebooks.describe(team, name), as_json)


@notebooks_app.command("open")
def notebooks_open(
    team: str,
    name: str,
    expires_in: Annotated[int, typer.Option(help="Seconds the sign-in link stays valid (single use).")] = 300,
    browser: Annotated[bool, typer.Option("--browser/--no-browser", help="Open it in a web browser.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Print (or open) a single-use, short-lived sign-in URL for the notebook."""
    signed = session().notebooks.presigned_url(team, name, expires_in)
    if as_json:
        print_json(signed)
        return
    say(signed.url)
    say(f"single use, valid until {signed.expires_at:%H:%M:%S} UTC", style="dim")
    if browser:
        webbrowser.open(signed.url)


@notebooks_app.command("stop")
def notebooks_stop(team: str, name: str, wait: WaitOpt = True, as_json: JsonOpt = False) -> None:
    """Stop the notebook; its volume is kept."""
    show(session().notebooks.stop(team, name, wait=wait), as_json)


@notebooks_app.command("start")
def notebooks_start(team: str, name: str, wait: WaitOpt = True, as_json: JsonOpt = False) -> None:
    """Start a stopped notebook on its volume."""
    with console.status(as_markup(f"starting {team}/{name}"), spinner="dots"):
        result = session().notebooks.start(team, name, wait=wait)
    show(result, as_json)
