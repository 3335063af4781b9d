"""A lineage graph laid out in layers for ``templates/lineage/graph.html`` (SVG, no script).

What flowed comes before where it flowed: each entity sits one column right of everything it
came from (longest-path layering over the associations), so commits, code and data are on the
left, jobs in the middle, models and endpoints on the right. Within a column, entities are
ordered by the mean row of their neighbours (two barycentre sweeps) to keep edges short.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass

from strongroom.lineage.models import LineageEdge, LineageGraph, LineageNode

NODE_W, NODE_H = 190, 46
COL_GAP, ROW_GAP = 80, 18
MARGIN = 12
LABEL_CHARS = 26


@dataclass(frozen=True)
class Box:
    srn: str
    kind: str
    type: str
    label: str
    full: str  # the whole name, for the tooltip and the accessible name
    href: str
    start: bool
    x: int
    y: int


@dataclass(frozen=True)
class Arrow:
    source: str
    destination: str
    type: str
    path: str


@dataclass(frozen=True)
class Drawing:
    width: int
    height: int
    boxes: list[Box]
    arrows: list[Arrow]
    node_w: int = NODE_W
    node_h: int = NODE_H


def graph_href(srn: str, direction: str = "both", depth: int | None = None) -> str:
    """The console page of ``srn``'s graph (every node links here)."""
    query = {"srn": srn, "direction": direction} | ({"depth": str(depth)} if depth else {})
    return "/console/lineage/graph?" + urllib.parse.urlencode(query)


def node_name(node: LineageNode) -> str:
    """What a person calls the entity: its name, else the last part of its uri, else its srn's."""
    if node.type == "Commit":
        return str(node.properties.get("commit", node.name))[:12] or node.name
    if node.name:
        return node.name
    if node.uri:
        return node.uri.rstrip("/").rsplit("/", 1)[-1] or node.uri
    return node.srn.rsplit("/", 1)[-1]


def _short(text: str) -> str:
    return text if len(text) <= LABEL_CHARS else text[: LABEL_CHARS - 1] + "…"


def _layers(srns: list[str], edges: list[LineageEdge]) -> dict[str, int]:
    layer = dict.fromkeys(srns, 0)
    # Longest path by relaxation; a cycle (not expected in lineage) stops after len(srns) rounds.
    for _ in range(len(srns)):
        changed = False
        for e in edges:
            if layer[e.destination] < layer[e.source] + 1:
                layer[e.destination] = layer[e.source] + 1
                changed = True
        if not changed:
            break
    return layer


def layout(graph: LineageGraph, nodes: list[LineageNode], direction: str, depth: int) -> Drawing:
    """Place ``nodes`` (a subset of ``graph.nodes``, start first) and the edges between them."""
    srns = [n.srn for n in nodes]
    kept = set(srns)
    edges = [e for e in graph.edges if e.source in kept and e.destination in kept and e.source != e.destination]
    layer = _layers(srns, edges)
    columns: dict[int, list[str]] = {}
    for srn in srns:
        columns.setdefault(layer[srn], []).append(srn)
    order = sorted(columns)
    preds: dict[str, list[str]] = {s: [] for s in srns}
    succs: dict[str, list[str]] = {s: [] for s in srns}
    for e in edges:
        succs[e.source].append(e.destination)
        preds[e.destination].append(e.source)

    def sweep(sequence: list[int], neighbours: dict[str, list[str]]) -> None:
        for col in sequence:
            row = {s: i for c in columns.values() for i, s in enumerate(c)}

            def centre(srn: str, row: dict[str, int] = row) -> float:
                near = [row[n] for n in neighbours[srn]]
                return sum(near) / len(near) if near else row[srn]

            columns[col].sort(key=centre)

    for _ in range(2):
        sweep(order[1:], preds)
        sweep(list(reversed(order[:-1])), succs)
    tallest = max(len(c) for c in columns.values())
    height = MARGIN * 2 + tallest * NODE_H + (tallest - 1) * ROW_GAP
    width = MARGIN * 2 + len(order) * NODE_W + (len(order) - 1) * COL_GAP
    by_srn = {n.srn: n for n in nodes}
    place: dict[str, tuple[int, int]] = {}
    boxes = []
    for index, col in enumerate(order):
        members = columns[col]
        used = len(members) * NODE_H + (len(members) - 1) * ROW_GAP
        top = MARGIN + (height - 2 * MARGIN - used) // 2
        for i, srn in enumerate(members):
            x, y = MARGIN + index * (NODE_W + COL_GAP), top + i * (NODE_H + ROW_GAP)
            place[srn] = (x, y)
            node = by_srn[srn]
            name = node_name(node)
            boxes.append(
                Box(
                    srn=srn,
                    kind=node.kind,
                    type=node.type,
                    label=_short(name),
                    full=name,
                    href=graph_href(srn, direction, depth),
                    start=srn == graph.start,
                    x=x,
                    y=y,
                )
            )
    arrows = []
    for e in edges:
        (x1, y1), (x2, y2) = place[e.source], place[e.destination]
        sx, sy, tx, ty = x1 + NODE_W, y1 + NODE_H // 2, x2 - 2, y2 + NODE_H // 2
        mid = (sx + tx) / 2
        arrows.append(Arrow(e.source, e.destination, e.type, f"M{sx},{sy} C{mid},{sy} {mid},{ty} {tx},{ty}"))
    return Drawing(width, height, boxes, arrows)
