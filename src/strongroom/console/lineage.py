"""Lineage pages: a team's entities, and the graph around any one of them, drawn and clickable.

Both read through ``platform.lineage`` (``ListLineageEntities``, ``QueryLineage``) inside the
page's one ``ViewConsolePage`` event, so the policy that lets an Auditor read every team's graph
and a DataScientist only her team's decides the page too.
"""

from __future__ import annotations

import urllib.parse
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from strongroom.console import web
from strongroom.console.catalog import teams_of
from strongroom.console.graph_layout import graph_href, layout, node_name
from strongroom.core.errors import Forbidden, InvalidInput
from strongroom.core.names import Srn, check_name
from strongroom.lineage.models import KINDS, LineageEntity, LineageGraph
from strongroom.lineage.service import MAX_LIST
from strongroom.lineage.store import MAX_DEPTH
from strongroom.platform import Platform

DEFAULT_DEPTH = 3
MAX_PAGE_DEPTH = 10
MAX_NODES = 60  # beyond this a drawing is unreadable: the nearest are drawn, the rest are counted
DIRECTIONS = ("both", "upstream", "downstream")


@web.page
async def entities(request: Request) -> Response:
    """The entities of one team (``?team=``, default the first the caller reads), by kind and type."""
    who = await web.caller(request)
    platform = web.platform_of(request)
    number = web.page_number(request)
    kind = request.query_params.get("kind", "")
    if kind and kind not in KINDS:
        raise InvalidInput(f"kind is one of {', '.join(KINDS)}", field="kind")
    kind_type = request.query_params.get("type", "")[:64]
    asked = request.query_params.get("team", "")
    end = number * web.PAGE_SIZE
    if end >= MAX_LIST:
        raise InvalidInput(
            f"page must be at most {MAX_LIST // web.PAGE_SIZE - 1}; filter by kind or type", field="page"
        )

    def view() -> tuple[list[str], str, list[LineageEntity]]:
        with web.viewing(request, who, "lineage", team=asked, kind=kind, type=kind_type):
            teams = teams_of(platform, who)
            team = check_name(asked, "team") if asked else (teams[0] if teams else "")
            if not team:
                return teams, team, []
            # the service lists from the oldest: read up to this page, and one more to know of a next
            found = platform.lineage.list_entities(
                who.ctx, team, kind=kind or None, type=kind_type or None, limit=end + 1
            )
        return teams, team, found

    teams, team, found = await web.run(view)
    filters = {k: v for k, v in (("team", team), ("kind", kind), ("type", kind_type)) if v}
    extra = "&" + urllib.parse.urlencode(filters) if filters else ""
    return web.render(
        request,
        "lineage/entities.html",
        who=who,
        teams=teams,
        team=team,
        kind=kind,
        kind_type=kind_type,
        kinds=KINDS,
        entities=found[end - web.PAGE_SIZE : end],
        page=number,
        following=number + 1 if len(found) > end else None,
        extra=extra,
        graph_href=graph_href,
    )


def recorded_versions(platform: Platform, who: web.Caller, team: str, uri: str) -> dict[str, str]:
    """Version id -> the console page of its graph, for the versions of ``uri`` the lineage graph
    holds (read through the guard; a role that may not read the graph gets no links)."""
    try:
        found = platform.lineage.list_entities(who.ctx, team, kind="artifact", uri=uri, limit=MAX_LIST)
    except Forbidden:
        return {}
    return {e.version_id: graph_href(e.srn) for e in found if e.version_id}


def _depth(request: Request) -> int:
    raw = request.query_params.get("depth", str(DEFAULT_DEPTH))
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE_DEPTH:
        raise InvalidInput(f"depth is a number of steps from 1 to {MAX_PAGE_DEPTH}", field="depth")
    return int(raw)


@web.page
async def graph(request: Request) -> Response:
    """The graph around ``?srn=`` upstream, downstream or both, ``?depth=`` steps away.

    One step more than asked is walked, so the page can say whether anything lies beyond; at most
    ``MAX_NODES`` entities are read and drawn (the nearest), and the page says how many were left out.
    """
    who = await web.caller(request)
    platform = web.platform_of(request)
    srn = request.query_params.get("srn", "")[:512]
    parsed = Srn.parse(srn, "srn")
    direction = request.query_params.get("direction", "both")
    if direction not in DIRECTIONS:
        raise InvalidInput("direction is both, upstream or downstream", field="direction")
    depth = _depth(request)

    def view() -> LineageGraph:
        with web.viewing(request, who, "lineage-graph", srn=srn, direction=direction, depth=depth):
            return platform.lineage.query(
                who.ctx,
                parsed.team,
                srn,
                direction=direction,  # type: ignore[arg-type]
                depth=min(depth + 1, MAX_DEPTH),
                max_nodes=MAX_NODES,
            )

    found = await web.run(view)
    drawn = [n for n in found.nodes if n.depth <= depth]  # the nearest, the start first
    within = sum(count for distance, count in found.reached.items() if distance <= depth)
    beyond = found.reached.get(depth + 1, 0)
    start = drawn[0]
    drawing = layout(found, drawn, direction, depth)
    names = {n.srn: node_name(n) for n in drawn}
    return web.render(
        request,
        "lineage/graph.html",
        who=who,
        start=start,
        start_name=node_name(start),
        team=parsed.team,
        direction=direction,
        directions=DIRECTIONS,
        depth=depth,
        max_depth=MAX_PAGE_DEPTH,
        drawing=drawing,
        names=names,
        beyond=beyond,
        left_out=within - len(drawn),
        graph_href=graph_href,
        properties=_flat(start.properties),
    )


def _flat(properties: dict[str, Any]) -> list[tuple[str, str]]:
    """Properties as rows of text (nested values as compact JSON-like text, escaped by the template)."""
    rows = []
    for key, value in sorted(properties.items()):
        if value in (None, "", {}, []):
            continue
        if isinstance(value, dict):
            text = ", ".join(f"{k}={v}" for k, v in sorted(value.items()) if v not in (None, ""))
        elif isinstance(value, list):
            text = " ".join(str(v) for v in value)
        else:
            text = str(value)
        rows.append((key, text))
    return rows
