"""``store.query_graph`` against a plain breadth-first walk, on every backend.

The walk's statement is built once per direction and set of association types and reused with
the start and the depth bound at execution; these tests interleave starts, depths, directions
and filters so a statement that kept a value from an earlier call would answer wrongly.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from sqlalchemy import insert, select

from strongroom.db.base import utcnow
from strongroom.lineage import store
from strongroom.lineage.db import LineageAssociationRow, LineageEntityRow
from strongroom.platform import Platform

TEAM = "risk"
# name -> (kind, type); edges (source, destination, type), with a diamond (a -> b, a -> c -> b)
# and a shared node (runtime) so that distances, not paths, must decide each node's depth.
ENTITIES = {
    "a": ("artifact", "DataSet"),
    "b": ("trial-component", "TrainingJob"),
    "c": ("trial-component", "ProcessingJob"),
    "d": ("artifact", "Model"),
    "e": ("action", "ModelDeployment"),
    "f": ("context", "Endpoint"),
    "runtime": ("artifact", "Runtime"),
}
EDGES = [
    ("a", "c", "ContributedTo"),
    ("a", "b", "ContributedTo"),
    ("c", "b", "Produced"),
    ("runtime", "b", "AssociatedWith"),
    ("runtime", "c", "AssociatedWith"),
    ("b", "d", "Produced"),
    ("d", "e", "ContributedTo"),
    ("e", "f", "AssociatedWith"),
]


def _srn(name: str) -> str:
    return f"srn:strongroom:{TEAM}:artifact/{name}"


def _expected(start: str, direction: str, depth: int, types: Sequence[str] | None) -> dict[str, int]:
    """Each node within ``depth`` hops and its distance, by breadth-first search."""
    seen = {start: 0}
    frontier = [start]
    for hop in range(1, depth + 1):
        nxt = []
        for node in frontier:
            for s, d, t in EDGES:
                if types and t not in types:
                    continue
                near, far = (d, s) if direction == "upstream" else (s, d)
                if near == node and far not in seen:
                    seen[far] = hop
                    nxt.append(far)
        frontier = nxt
    return seen


def test_query_graph_matches_a_breadth_first_walk(teams: Platform) -> None:
    now = utcnow()
    with teams.db.write() as session:
        session.execute(
            insert(LineageEntityRow),
            [
                {"team": TEAM, "srn": _srn(n), "kind": k, "type": t, "name": n, "created_at": now, "created_by": "t"}
                for n, (k, t) in ENTITIES.items()
            ],
        )
        ids = {r.name: r.id for r in session.scalars(select(LineageEntityRow).where(LineageEntityRow.team == TEAM))}
        session.execute(
            insert(LineageAssociationRow),
            [
                {"team": TEAM, "source_id": ids[s], "destination_id": ids[d], "type": t, "created_at": now}
                | {"created_by": "t"}
                for s, d, t in EDGES
            ],
        )
    cases = list(
        itertools.product(
            ["d", "b", "f", "a"], ["upstream", "downstream"], [3, 1, 2], [None, ("Produced",), ("ContributedTo",)]
        )
    )
    with teams.db.read() as session:
        for start, direction, depth, types in cases:
            row = session.scalars(select(LineageEntityRow).where(LineageEntityRow.srn == _srn(start))).one()
            graph = store.query_graph(session, row, direction=direction, depth=depth, association_types=types)  # type: ignore[arg-type]
            got = {n.name: n.depth for n in graph.nodes}
            assert got == _expected(start, direction, depth, types), (start, direction, depth, types)
            names = {_srn(n) for n in got}
            walked = {
                (_srn(s), _srn(d), t)
                for s, d, t in EDGES
                if _srn(s) in names and _srn(d) in names and (not types or t in types)
            }
            # every edge between two returned nodes lies on some walk within the depth, except an
            # edge both of whose ends sit at the last distance (it would be one hop too many)
            reachable = {e for e in walked if min(got[e[0].rsplit("/", 1)[1]], got[e[1].rsplit("/", 1)[1]]) < depth}
            assert {(e.source, e.destination, e.type) for e in graph.edges} == reachable
            assert graph.nodes[0].name == start and graph.nodes[0].depth == 0
            assert sum(graph.reached.values()) == len(got)
        both = store.query_graph(
            session,
            session.scalars(select(LineageEntityRow).where(LineageEntityRow.srn == _srn("b"))).one(),
            direction="both",
            depth=1,
        )
        assert {n.name for n in both.nodes} == {"a", "b", "c", "d", "runtime"}
        kinds = {n.name: (n.kind, n.type) for n in both.nodes}
        assert kinds == {n: ENTITIES[n] for n in kinds}
