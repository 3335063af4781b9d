"""Upstream lineage queries on a synthetic graph of 1,000,000 associations, SQLite and PostgreSQL.

The graph is what the platform records for many ML pipelines: raw dataset -> processing job ->
train/test datasets -> training job (with its code, commit and a shared runtime) -> model ->
deployment -> endpoint, and each pipeline's raw data derived from an earlier pipeline's output,
so a model's ancestry goes back several pipelines. It is bulk-loaded with Core inserts into a
database migrated by the platform's own migrations (so the real indexes are measured).

Measured: the lineage service's upstream query (recursive CTE + entity fetch,
``strongroom.lineage.store.query_graph``) from random models to depth 10, p50 and p95, against
the peer: the same walk done level by level (one ``IN (...)`` query per hop, as code without
recursive SQL does it) on the same database. The goal is under 50 ms. Each run times every
sample once; ours and the peer alternate (``_common.alternate``), at least 3 runs each.
"""

from __future__ import annotations

import os
import random
import shutil
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

from _common import alternate, figure, parser, repeats, save, version
from sqlalchemy import create_engine, insert, select, text
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from strongroom.db import migrate
from strongroom.db.base import utcnow
from strongroom.lineage import store
from strongroom.lineage.db import LineageAssociationRow, LineageEntityRow

POSTGRES = os.environ.get("STRONGROOM_BENCH_POSTGRES_URL", "postgresql+psycopg://root@127.0.0.1:5432/test")
TEAM = "bench"
EDGES_PER_PIPELINE = 14
GOAL_MS = 50.0


def _pipeline(p: int, runtimes: int) -> tuple[list[tuple[str, str, str]], list[tuple[str, str, str]]]:
    """Entities (srn, kind, type) and edges (source, destination, type) of pipeline ``p``."""
    n = f"p{p}"
    e = {
        "raw": (f"srn:strongroom:{TEAM}:artifact/{n}-raw", "artifact", "DataSet"),
        "proc": (f"srn:strongroom:{TEAM}:processing-job/{n}", "trial-component", "ProcessingJob"),
        "train": (f"srn:strongroom:{TEAM}:artifact/{n}-train", "artifact", "DataSet"),
        "test": (f"srn:strongroom:{TEAM}:artifact/{n}-test", "artifact", "DataSet"),
        "job": (f"srn:strongroom:{TEAM}:training-job/{n}", "trial-component", "TrainingJob"),
        "code": (f"srn:strongroom:{TEAM}:artifact/{n}-code", "artifact", "Code"),
        "commit": (f"srn:strongroom:{TEAM}:artifact/{n}-commit", "artifact", "Commit"),
        "model": (f"srn:strongroom:{TEAM}:artifact/{n}-model", "artifact", "Model"),
        "deploy": (f"srn:strongroom:{TEAM}:action/{n}-deploy", "action", "ModelDeployment"),
        "endpoint": (f"srn:strongroom:{TEAM}:context/{n}-endpoint", "context", "Endpoint"),
        "report": (f"srn:strongroom:{TEAM}:artifact/{n}-report", "artifact", "Report"),
    }
    runtime = f"srn:strongroom:{TEAM}:artifact/runtime-{p % runtimes}"
    edges = [
        (e["raw"][0], e["proc"][0], "ContributedTo"),
        (runtime, e["proc"][0], "AssociatedWith"),
        (e["proc"][0], e["train"][0], "Produced"),
        (e["proc"][0], e["test"][0], "Produced"),
        (e["train"][0], e["job"][0], "ContributedTo"),
        (e["test"][0], e["job"][0], "ContributedTo"),
        (e["code"][0], e["job"][0], "ContributedTo"),
        (e["commit"][0], e["job"][0], "AssociatedWith"),
        (runtime, e["job"][0], "AssociatedWith"),
        (e["job"][0], e["model"][0], "Produced"),
        (e["model"][0], e["deploy"][0], "ContributedTo"),
        (e["deploy"][0], e["endpoint"][0], "AssociatedWith"),
        (e["model"][0], e["report"][0], "ContributedTo"),
    ]
    if p % 8:  # chains of 8 pipelines: this one's raw data was derived from the previous one's test set
        edges.append((f"srn:strongroom:{TEAM}:artifact/p{p - 1}-test", e["raw"][0], "DerivedFrom"))
    return list(e.values()), edges


def load(url: str, associations: int, chunk: int = 20_000) -> tuple[int, float]:
    """Bulk-load the graph; returns (associations written, seconds)."""
    pipelines = max(2, associations // EDGES_PER_PIPELINE)
    runtimes = 16
    engine = create_engine(url, poolclass=NullPool)
    started = time.perf_counter()
    now, user = utcnow(), "bench"
    ids: dict[str, int] = {}
    written = 0
    with engine.begin() as conn:
        runtime_rows = [
            {
                "team": TEAM,
                "srn": f"srn:strongroom:{TEAM}:artifact/runtime-{r}",
                "kind": "artifact",
                "type": "Runtime",
                "name": f"runtime-{r}",
                "uri": f"runtime:xgboost@{r}",
                "sha256": "",
                "version_id": "",
                "properties": {},
                "created_at": now,
                "created_by": user,
            }
            for r in range(runtimes)
        ]
        conn.execute(insert(LineageEntityRow.__table__), runtime_rows)
    with engine.connect() as conn:
        ids.update((srn, id_) for srn, id_ in conn.execute(select(LineageEntityRow.srn, LineageEntityRow.id)))
    next_id = max(ids.values()) + 1
    entity_rows: list[dict[str, Any]] = []
    edge_rows: list[tuple[str, str, str]] = []

    def flush(conn: Any) -> None:
        nonlocal written
        if entity_rows:
            conn.execute(insert(LineageEntityRow.__table__), entity_rows)
            entity_rows.clear()
        if edge_rows:
            conn.execute(
                insert(LineageAssociationRow.__table__),
                [
                    {
                        "team": TEAM,
                        "source_id": ids[s],
                        "destination_id": ids[d],
                        "type": t,
                        "created_at": now,
                        "created_by": user,
                    }
                    for s, d, t in edge_rows
                ],
            )
            written += len(edge_rows)
            edge_rows.clear()

    with engine.begin() as conn:
        for p in range(pipelines):
            entities, edges = _pipeline(p, runtimes)
            for srn, kind, type_ in entities:
                ids[srn] = next_id
                entity_rows.append(
                    {
                        "id": next_id,
                        "team": TEAM,
                        "srn": srn,
                        "kind": kind,
                        "type": type_,
                        "name": srn.rsplit("/", 1)[-1],
                        "uri": f"sr://bench/{srn.rsplit('/', 1)[-1]}" if kind == "artifact" else "",
                        "sha256": "",
                        "version_id": "v1" if kind == "artifact" else "",
                        "properties": {},
                        "created_at": now,
                        "created_by": user,
                    }
                )
                next_id += 1
            edge_rows.extend(edges)
            if len(edge_rows) >= chunk:
                flush(conn)
        flush(conn)
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT setval(pg_get_serial_sequence('lineage_entities', 'id'), :n)"), {"n": next_id})
            conn.execute(text("ANALYZE lineage_entities"))
            conn.execute(text("ANALYZE lineage_associations"))
        else:
            conn.execute(text("ANALYZE"))
    engine.dispose()
    return written, time.perf_counter() - started


def _level_walk(session: Session, start: LineageEntityRow, depth: int) -> int:
    """The peer: breadth-first, one query per hop, then one entity fetch."""
    a = LineageAssociationRow.__table__
    seen = {start.id}
    frontier = [start.id]
    for _ in range(depth):
        if not frontier:
            break
        rows = session.execute(select(a.c.source_id).where(a.c.destination_id.in_(frontier))).all()
        frontier = [r[0] for r in rows if r[0] not in seen]
        seen.update(frontier)
    others = [i for i in seen if i != start.id]
    return len(list(session.scalars(select(LineageEntityRow).where(LineageEntityRow.id.in_(others))))) + 1


def _percentiles(times: list[float]) -> dict[str, float]:
    p95 = statistics.quantiles(times, n=20)[18] if len(times) >= 20 else max(times)
    return {"p50": statistics.median(times), "p95": p95}


def measure(url: str, samples: int, depth: int, runs: int) -> dict[str, Any]:
    """p50 and p95 of ours and the peer over the same random models, alternating whole passes."""
    engine = create_engine(url, poolclass=NullPool) if "sqlite" in url else create_engine(url)
    with Session(engine) as session:
        models = list(session.scalars(select(LineageEntityRow.id).where(LineageEntityRow.type == "Model")))
        rng = random.Random(7)
        starts = [session.get(LineageEntityRow, rng.choice(models)) for _ in range(samples)]
        sizes: list[int] = []
        for start in starts:  # both walks must find the same graph before either is timed
            assert start is not None
            graph = store.query_graph(session, start, direction="upstream", depth=depth)
            count = _level_walk(session, start, depth)
            if count != len(graph.nodes):
                raise AssertionError(f"the walks disagree: {count} != {len(graph.nodes)} nodes")
            sizes.append(count)

        def timed(walk: Any) -> dict[str, float]:
            times = []
            for start in starts:
                began = time.perf_counter()
                walk(start)
                times.append((time.perf_counter() - began) * 1000)
            return _percentiles(times)

        runs_ = alternate(
            lambda: timed(lambda s: store.query_graph(session, s, direction="upstream", depth=depth)),
            lambda: timed(lambda s: _level_walk(session, s, depth)),
            runs,
        )
    engine.dispose()
    return {"runs": runs_, "nodes_median": statistics.median(sizes), "samples": samples}


@contextmanager
def database(backend: str) -> Iterator[str]:
    if backend == "sqlite":
        folder = tempfile.mkdtemp(prefix="sr-bench-lineage-")
        try:
            yield f"sqlite:///{folder}/lineage.db"
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return
    schema = f"bench_lineage_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in POSTGRES else "?"
    try:
        yield f"{POSTGRES}{separator}options={quote(f'-csearch_path={schema}')}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def _postgres_available() -> bool:
    try:
        engine = create_engine(POSTGRES, poolclass=NullPool, connect_args={"connect_timeout": 3})
        with engine.connect():
            pass
        engine.dispose()
        return True
    except Exception:
        return False


def main() -> None:
    p = parser(__doc__ or "")
    p.add_argument("--associations", type=int, default=1_000_000)
    p.add_argument("--depth", type=int, default=10)
    p.add_argument("--samples", type=int, default=200)
    p.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    args = p.parse_args()
    associations, samples = (2_000, 20) if args.smoke else (args.associations, args.samples)
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    if "postgresql" in backends and not _postgres_available():
        print(f"postgresql: skipped (no server at {POSTGRES.split('@')[-1]})")
        backends.remove("postgresql")
    figures: list[dict[str, Any]] = []
    compared: dict[str, Any] = {
        "ours": "strongroom.lineage.store.query_graph (recursive CTE + entity fetch)",
        "peer": "level-by-level walk, one IN (...) query per hop",
        "modes": "both sides read the same migrated database through the same SQLAlchemy engine, one query "
        "stream, warm caches (each run times every sample once)",
        "durability": "not applicable: read-only queries on the same database",
        "tls": "none on either side (SQLite file; PostgreSQL on the local socket/loopback)",
        "sizes": {"depth": args.depth, "associations": associations, "samples": samples},
        "goal_ms": GOAL_MS,
        "versions": {
            "strongroom": version("strongroom"),
            "sqlalchemy": version("sqlalchemy"),
            "sqlite": sqlite3.sqlite_version,
            "psycopg": version("psycopg"),
        },
    }
    for backend in backends:
        with database(backend) as url:
            migrate.upgrade(url)
            written, seconds = load(url, associations)
            result = measure(url, samples, args.depth, repeats(args))
        compared[backend] = {"load_seconds": seconds, "associations": written, "nodes_median": result["nodes_median"]}
        print(f"{backend}: loaded {written} associations in {seconds:.1f} s; median {result['nodes_median']} nodes")
        for stat in ("p50", "p95"):
            fig = figure(
                f"lineage_upstream_{backend}_{stat}",
                "ms",
                result["runs"],
                stat,
                better="lower",
                what=f"upstream lineage query, depth {args.depth}, {associations:,} associations, {backend}, {stat}",
                peer_name="level-by-level walk, one query per hop",
                goal_ms=GOAL_MS,
            )
            fig["met_goal"] = fig["ours"] < GOAL_MS
            figures.append(fig)
    path = save("lineage", figures, args.smoke, compared=compared)
    print(f"summary: {path}")


if __name__ == "__main__":
    main()
