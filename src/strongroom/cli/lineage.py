"""`strongroom lineage`: show the graph around an entity as a tree, query it, log commits."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.text import Text
from rich.tree import Tree

from strongroom.cli.common import JsonOpt, session
from strongroom.cli.output import Part, print_json, render, show, styled
from strongroom.core.names import Srn
from strongroom.lineage.models import LineageGraph, LineageNode
from strongroom.sdk.lineage import LineageClient

lineage_app = typer.Typer(no_args_is_help=True, help="Lineage: where data, models and code came from.")
Direction = Annotated[str, typer.Option(help="upstream, downstream or both.")]
Depth = Annotated[int, typer.Option(min=1, max=50, help="How many hops to follow.")]
Types = Annotated[list[str] | None, typer.Option("--type", help="Only these entity types (repeatable).")]
Assoc = Annotated[list[str] | None, typer.Option("--association", help="Only these association types.")]


def _label(node: LineageNode, *suffix: Part) -> Text:
    what = node.uri or node.name or node.srn
    pin: list[Part] = [(f" version {node.version_id}", "dim")] if node.version_id else []
    if node.type == "Commit":
        extra = node.properties
        pin = [(f" {str(extra.get('commit', ''))[:12]} {extra.get('branch', '')}", "dim")]
        if extra.get("dirty"):
            pin.append((" (dirty)", "red"))
        what = str(extra.get("repository", what))
    return styled((node.type, "bold"), f" {what}", *pin, "  ", (node.srn, "dim"), *suffix)


def render_tree(graph: LineageGraph) -> Tree:
    """The graph as a Rich tree rooted at the start (shared ancestors are shown once)."""
    nodes = {n.srn: n for n in graph.nodes}
    children: dict[str, list[tuple[str, str]]] = {}
    for edge in graph.edges:
        if graph.direction in ("upstream", "both"):
            children.setdefault(edge.destination, []).append((edge.type, edge.source))
        if graph.direction in ("downstream", "both"):
            children.setdefault(edge.source, []).append((edge.type, edge.destination))
    root = Tree(_label(nodes[graph.start]))
    seen = {graph.start}

    def grow(branch: Tree, srn: str) -> None:
        for kind, child in sorted(children.get(srn, []), key=lambda c: (c[0], c[1])):
            if child not in nodes:
                continue
            if child in seen:
                branch.add(styled((kind, "dim"), " ").append_text(_label(nodes[child], (" (shown above)", "dim"))))
                continue
            seen.add(child)
            grow(branch.add(styled((kind, "dim"), " ").append_text(_label(nodes[child]))), child)

    grow(root, graph.start)
    return root


@lineage_app.command("show")
def lineage_show(
    srn: str,
    direction: Direction = "upstream",
    depth: Depth = 10,
    entity_type: Types = None,
    association: Assoc = None,
    as_json: JsonOpt = False,
) -> None:
    """Print what ``srn`` came from (or what came from it) as a tree."""
    client = LineageClient(session(), Srn.parse(srn).team or None)
    result = client.query(
        srn, direction=direction, depth=depth, entity_types=entity_type, association_types=association
    )
    if as_json:
        print_json(result.to_json())
        return
    render(render_tree(result.graph))


@lineage_app.command("entities")
def lineage_entities(
    team: str,
    kind: Annotated[str | None, typer.Option(help="artifact, action, context or trial-component.")] = None,
    type: Annotated[str | None, typer.Option(help="e.g. DataSet, Model, Commit.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List a team's lineage entities."""
    client = LineageClient(session(), team)
    show(client.list_entities(kind=kind, type=type), as_json, ["srn", "kind", "type", "name", "uri", "version_id"])


@lineage_app.command("log-commit")
def lineage_log_commit(
    repo: str,
    sha: str,
    team: Annotated[str, typer.Option(help="The team whose lineage records it.")],
    associate_with: Annotated[list[str] | None, typer.Option(help="Entity srn it produced (repeatable).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Record commit SHA of the local clone REPO as a Commit artifact."""
    client = LineageClient(session(), team)
    show(client.log_commit(repo, sha, associate_with=associate_with or []), as_json)
