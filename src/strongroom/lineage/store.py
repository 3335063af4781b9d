"""Lineage writes and walks inside a caller's transaction (no authorization here).

Services of other domains that already run inside a guard ticket (``guard.begin``) (experiments, jobs, serving)
record their lineage with these functions in the same transaction as their own change, so the
change and its lineage commit together. ``LineageService`` wraps them in the guard for callers
that have no transaction of their own.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Sequence
from typing import Any, cast

from sqlalchemy import Integer, Select, Table, bindparam, func, literal, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from strongroom.core.errors import Conflict, InvalidInput, NotFound
from strongroom.core.names import Srn, check_name
from strongroom.db.base import utcnow
from strongroom.lineage.db import LineageAssociationRow, LineageEntityRow
from strongroom.lineage.models import (
    ASSOCIATION_TYPES,
    KINDS,
    TYPES_BY_KIND,
    Direction,
    LineageEdge,
    LineageEntity,
    LineageGraph,
    LineageNode,
)
from strongroom.storage.keys import parse_uri

ENTITIES = cast(Table, LineageEntityRow.__table__)
ASSOCIATIONS = cast(Table, LineageAssociationRow.__table__)
MAX_DEPTH = 50


def to_entity(row: LineageEntityRow) -> LineageEntity:
    return LineageEntity(
        srn=row.srn,
        team=row.team,
        kind=row.kind,  # type: ignore[arg-type]
        type=row.type,
        name=row.name,
        uri=row.uri,
        sha256=row.sha256,
        version_id=row.version_id,
        properties=dict(row.properties or {}),
        created_at=row.created_at,
        created_by=row.created_by,
    )


def artifact_srn(team: str, uri: str, version_id: str = "", sha256: str = "") -> str:
    """The stable name of an artifact: one per (uri, object version) — or content hash when unversioned."""
    pin = version_id or sha256
    digest = hashlib.sha256(f"{uri}\0{pin}".encode()).hexdigest()[:32]
    return str(Srn(team, "artifact", digest))


def check_type(kind: str, type_: str) -> None:
    if kind not in KINDS:
        raise InvalidInput(f"kind {kind!r} is unknown; kinds are {', '.join(KINDS)}", field="kind")
    allowed = TYPES_BY_KIND[kind]
    if type_ not in allowed:
        raise InvalidInput(f"{kind} type {type_!r} is unknown; choose from {', '.join(allowed)}", field="type")


def check_team_srn(team: str, srn: str, field: str) -> Srn:
    parsed = Srn.parse(srn, field)
    if parsed.team != team:
        raise InvalidInput(f"{srn} belongs to team {parsed.team!r}, not {team!r}", field=field)
    return parsed


def insert_ignore(session: Session, table: Any, rows: Sequence[dict[str, Any]], keys: Sequence[str]) -> None:
    """``INSERT ... ON CONFLICT DO NOTHING`` on SQLite and PostgreSQL."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    module: Any = postgresql if dialect == "postgresql" else sqlite
    session.execute(module.insert(table).on_conflict_do_nothing(index_elements=list(keys)), list(rows))


def ensure_entity(
    session: Session,
    team: str,
    *,
    kind: str,
    type: str,
    srn: str,
    created_by: str,
    name: str = "",
    uri: str = "",
    sha256: str = "",
    version_id: str = "",
    properties: dict[str, Any] | None = None,
) -> LineageEntityRow:
    """The entity named ``srn``, created if new. Recording the same thing twice is a no-op;
    recording a different content hash for the same artifact version is a ``Conflict``."""
    check_type(kind, type)
    check_team_srn(team, srn, "srn")
    row = session.scalars(select(LineageEntityRow).where(LineageEntityRow.srn == srn)).first()
    if row is None:
        insert_ignore(
            session,
            ENTITIES,
            [
                {
                    "team": team,
                    "srn": srn,
                    "kind": kind,
                    "type": type,
                    "name": name,
                    "uri": uri,
                    "sha256": sha256,
                    "version_id": version_id,
                    "properties": dict(properties or {}),
                    "created_at": utcnow(),
                    "created_by": created_by,
                }
            ],
            ["srn"],
        )
        row = session.scalars(select(LineageEntityRow).where(LineageEntityRow.srn == srn)).one()
        return row
    if row.kind != kind or row.type != type:
        raise Conflict(f"{srn} is already recorded as {row.kind} {row.type}, not {kind} {type}", field="type")
    if sha256 and row.sha256 and sha256 != row.sha256:
        raise Conflict(
            f"{uri or srn} version {version_id or '(none)'} is recorded with content hash {row.sha256}, "
            f"not {sha256}: an object version's content never changes",
            field="sha256",
        )
    if properties:
        merged = {**(row.properties or {}), **properties}
        if merged != row.properties:
            row.properties = merged
    if sha256 and not row.sha256:
        row.sha256 = sha256
    return row


def ensure_artifact(
    session: Session,
    team: str,
    *,
    uri: str,
    type: str,
    created_by: str,
    sha256: str = "",
    version_id: str = "",
    name: str = "",
    properties: dict[str, Any] | None = None,
) -> LineageEntityRow:
    if not uri or len(uri) > 2048:
        raise InvalidInput("an artifact needs a uri of at most 2048 characters", field="uri")
    if uri.startswith("sr://"):
        parse_uri(uri, "uri")  # the object-put key rules, as everywhere an sr:// URI is accepted
    return ensure_entity(
        session,
        team,
        kind="artifact",
        type=type,
        srn=artifact_srn(team, uri, version_id, sha256),
        created_by=created_by,
        name=name,
        uri=uri,
        sha256=sha256,
        version_id=version_id,
        properties=properties,
    )


def named_srn(team: str, kind: str, name: str) -> str:
    check_name(name, "name")
    return str(Srn(team, kind, name))


def ensure_association(
    session: Session, team: str, source: LineageEntityRow, destination: LineageEntityRow, type: str, created_by: str
) -> None:
    """Add ``source --type--> destination`` unless it exists (idempotent on the triple)."""
    if type not in ASSOCIATION_TYPES:
        raise InvalidInput(
            f"association type {type!r} is unknown; choose from {', '.join(ASSOCIATION_TYPES)}", field="type"
        )
    if source.team != team or destination.team != team:
        raise InvalidInput("both ends of an association must belong to the team", field="source")
    if source.id == destination.id:
        raise InvalidInput("an entity cannot be associated with itself", field="destination")
    insert_ignore(
        session,
        ASSOCIATIONS,
        [
            {
                "team": team,
                "source_id": source.id,
                "destination_id": destination.id,
                "type": type,
                "created_at": utcnow(),
                "created_by": created_by,
            }
        ],
        ["source_id", "destination_id", "type"],
    )


def entity_by_srn(session: Session, team: str, srn: str, field: str = "srn") -> LineageEntityRow:
    check_team_srn(team, srn, field)
    row = session.scalars(select(LineageEntityRow).where(LineageEntityRow.srn == srn)).first()
    if row is None:
        raise NotFound(f"{srn} is not in the lineage graph", field=field)
    return row


@functools.lru_cache(maxsize=64)
def _walk(direction: str, association_types: tuple[str, ...]) -> Select[Any]:
    """Recursive CTE: every edge within ``:depth`` hops of ``:start`` as (reached, via, type, hops).

    Built once per (direction, association types) with the start and the depth bound at
    execution: building the CTE's column proxies costs more than SQLite's walk itself.
    """
    a = ASSOCIATIONS
    near, far = (a.c.destination_id, a.c.source_id) if direction == "upstream" else (a.c.source_id, a.c.destination_id)
    seed = select(far.label("reached"), near.label("via"), a.c.type.label("type"), literal(1).label("hops")).where(
        near == bindparam("start", type_=Integer)
    )
    if association_types:
        seed = seed.where(a.c.type.in_(list(association_types)))
    walk = seed.cte(f"walk_{direction}", recursive=True)
    step = (
        select(far, near, a.c.type, (walk.c.hops + 1).label("hops"))
        .join(walk, near == walk.c.reached)
        .where(walk.c.hops < bindparam("depth", type_=Integer))
    )
    if association_types:
        step = step.where(a.c.type.in_(list(association_types)))
    walk = walk.union(step)
    return select(walk.c.reached, walk.c.via, walk.c.type, func.min(walk.c.hops)).group_by(
        walk.c.reached, walk.c.via, walk.c.type
    )


# The columns a node shows, read with Core (no ORM identity map or unit of work for a read-only walk).
_NODE_COLUMNS = (
    ENTITIES.c.id,
    ENTITIES.c.srn,
    ENTITIES.c.kind,
    ENTITIES.c.type,
    ENTITIES.c.name,
    ENTITIES.c.uri,
    ENTITIES.c.sha256,
    ENTITIES.c.version_id,
    ENTITIES.c.properties,
)
_NODES = select(*_NODE_COLUMNS).where(ENTITIES.c.id.in_(bindparam("ids", expanding=True)))


def query_graph(
    session: Session,
    start: LineageEntityRow,
    *,
    direction: Direction = "upstream",
    depth: int = 10,
    association_types: Sequence[str] | None = None,
    entity_types: Iterable[str] | None = None,
    max_nodes: int | None = None,
) -> LineageGraph:
    """Nodes and edges within ``depth`` hops of ``start``, upstream, downstream or both.

    ``association_types`` limits which edges are walked; ``entity_types`` which nodes are
    returned (the start is always returned), with the edges between returned nodes;
    ``max_nodes`` keeps only the nearest (the others are not even loaded). ``reached`` counts
    every entity reached at each distance, whatever was kept.
    """
    if max_nodes is not None and max_nodes < 1:
        raise InvalidInput("max_nodes must be at least 1", field="max_nodes")
    if not 1 <= depth <= MAX_DEPTH:
        raise InvalidInput(f"depth must be between 1 and {MAX_DEPTH}", field="depth")
    for t in association_types or ():
        if t not in ASSOCIATION_TYPES:
            raise InvalidInput(f"association type {t!r} is unknown", field="association_types")
    directions = ("upstream", "downstream") if direction == "both" else (direction,)
    hops: dict[int, int] = {start.id: 0}
    edges: set[tuple[int, int, str]] = set()
    connection = session.connection()
    walked = tuple(association_types or ())
    for d in directions:
        for reached, via, type_, distance in connection.execute(_walk(d, walked), {"start": start.id, "depth": depth}):
            hops[reached] = min(hops.get(reached, distance), distance)
            edges.add((reached, via, type_) if d == "upstream" else (via, reached, type_))
    per_distance: dict[int, int] = {}
    for distance in hops.values():
        per_distance[distance] = per_distance.get(distance, 0) + 1
    others = sorted((i for i in hops if i != start.id), key=lambda i: (hops[i], i))
    if max_nodes is not None:
        others = others[: max_nodes - 1]
        hops = {i: hops[i] for i in (start.id, *others)}
        edges = {e for e in edges if e[0] in hops and e[1] in hops}
    rows: dict[int, Any] = {start.id: start}
    for chunk in range(0, len(others), 900):
        rows.update((r.id, r) for r in connection.execute(_NODES, {"ids": others[chunk : chunk + 900]}))
    wanted = set(entity_types or ())
    keep = {i for i, r in rows.items() if i == start.id or not wanted or r.type in wanted or r.kind in wanted}
    nodes = [
        LineageNode(
            srn=rows[i].srn,
            kind=rows[i].kind,
            type=rows[i].type,
            name=rows[i].name,
            uri=rows[i].uri,
            sha256=rows[i].sha256,
            version_id=rows[i].version_id,
            depth=hops[i],
            properties=dict(rows[i].properties or {}),
        )
        for i in sorted(keep, key=lambda i: (hops[i], rows[i].srn))
    ]
    out_edges = [
        LineageEdge(source=rows[s].srn, destination=rows[t].srn, type=k)
        for s, t, k in sorted(edges)
        if s in keep and t in keep
    ]
    return LineageGraph(
        start=start.srn, direction=direction, depth=depth, nodes=nodes, edges=out_edges, reached=per_distance
    )
