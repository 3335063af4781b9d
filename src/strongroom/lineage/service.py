"""Lineage service: record artifacts, actions, contexts and associations; query the graph.

Other domains record their own lineage with no user code: a service with no transaction of its
own calls these guarded methods (``record_artifact``, ``record_action``, ``associate``,
``record_job``); one already inside a guard ticket (``guard.begin``) uses ``strongroom.lineage.store`` in its own
transaction. Every write is idempotent: recording the same artifact version or the same
(source, destination, type) association twice changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from strongroom.core.context import RequestContext
from strongroom.core.errors import InvalidInput, NotFound
from strongroom.core.names import check_name
from strongroom.db.engine import Database
from strongroom.guard import Guard
from strongroom.lineage import store
from strongroom.lineage.db import LineageAssociationRow, LineageEntityRow
from strongroom.lineage.models import (
    ArtifactRef,
    Association,
    Direction,
    GitCommit,
    JobLineage,
    LineageEntity,
    LineageGraph,
)
from strongroom.policy.engine import Target

MAX_LIST = 10_000


def graph_target(team: str, name: str = "*") -> Target:
    """The team's lineage graph as the policy engine sees it."""
    check_name(team, "team")
    return Target("lineage", team, name)


class LineageService:
    def __init__(self, db: Database, guard: Guard) -> None:
        self.db = db
        self.guard = guard

    # -- recording --------------------------------------------------------------------------

    def record_artifact(
        self,
        ctx: RequestContext,
        team: str,
        uri: str,
        type: str,
        *,
        sha256: str = "",
        version_id: str = "",
        name: str = "",
        properties: dict[str, Any] | None = None,
    ) -> LineageEntity:
        """Record (or find) the artifact at ``uri`` pinned to ``version_id``/``sha256``."""
        check_name(team, "team")
        params = {"uri": uri, "type": type, "sha256": sha256, "version_id": version_id, "name": name}
        with (
            self.guard.begin(ctx, "CreateLineageArtifact", graph_target(team), params=params) as call,
            call.transaction(),
        ):
            row = store.ensure_artifact(
                call.session,
                team,
                uri=uri,
                type=type,
                sha256=sha256,
                version_id=version_id,
                name=name,
                properties=properties,
                created_by=ctx.principal.user,
            )
            return store.to_entity(row)

    def record_action(
        self, ctx: RequestContext, team: str, name: str, type: str, properties: dict[str, Any] | None = None
    ) -> LineageEntity:
        """Record an action (a deployment, an approval) named ``name`` in the team."""
        return self._named(ctx, team, "action", "CreateLineageAction", name, type, properties)

    def record_context(
        self, ctx: RequestContext, team: str, name: str, type: str, properties: dict[str, Any] | None = None
    ) -> LineageEntity:
        """Record a context (an endpoint, an experiment, a project) named ``name`` in the team."""
        return self._named(ctx, team, "context", "CreateLineageContext", name, type, properties)

    def _named(
        self,
        ctx: RequestContext,
        team: str,
        kind: str,
        action: str,
        name: str,
        type: str,
        properties: dict[str, Any] | None,
    ) -> LineageEntity:
        check_name(team, "team")
        srn = store.named_srn(team, kind, name)
        with (
            self.guard.begin(ctx, action, graph_target(team), params={"name": name, "type": type}) as call,
            call.transaction(),
        ):
            row = store.ensure_entity(
                call.session,
                team,
                kind=kind,
                type=type,
                srn=srn,
                name=name,
                properties=properties,
                created_by=ctx.principal.user,
            )
            return store.to_entity(row)

    def record_trial_component(
        self, ctx: RequestContext, team: str, srn: str, type: str, properties: dict[str, Any] | None = None
    ) -> LineageEntity:
        """Record a run (a job's or a tracked component's resource name) as a lineage entity."""
        check_name(team, "team")
        with (
            self.guard.begin(ctx, "CreateLineageArtifact", graph_target(team), params={"srn": srn}) as call,
            call.transaction(),
        ):
            parsed = store.check_team_srn(team, srn, "srn")
            row = store.ensure_entity(
                call.session,
                team,
                kind="trial-component",
                type=type,
                srn=srn,
                name=parsed.name,
                properties=properties,
                created_by=ctx.principal.user,
            )
            return store.to_entity(row)

    def associate(self, ctx: RequestContext, team: str, source: str, destination: str, type: str) -> Association:
        """Add ``source --type--> destination`` between two recorded entities (idempotent)."""
        params = {"source": source, "destination": destination, "type": type}
        with (
            self.guard.begin(ctx, "AddLineageAssociation", graph_target(team), params=params) as call,
            call.transaction(),
        ):
            src = store.entity_by_srn(call.session, team, source, "source")
            dst = store.entity_by_srn(call.session, team, destination, "destination")
            store.ensure_association(call.session, team, src, dst, type, ctx.principal.user)
            return Association(source=source, destination=destination, type=type)  # type: ignore[arg-type]

    def record_commit(
        self, ctx: RequestContext, team: str, commit: GitCommit, associate_with: Sequence[str] = ()
    ) -> LineageEntity:
        """Record a git commit as a ``Commit`` artifact ``AssociatedWith`` the given entities
        (the jobs, components or endpoints it produced)."""
        check_name(team, "team")
        params = {"repository": commit.repository, "commit": commit.commit, "associate_with": list(associate_with)}
        with (
            self.guard.begin(ctx, "CreateLineageArtifact", graph_target(team), params=params) as call,
            call.transaction(),
        ):
            row = commit_artifact(call.session, team, commit, ctx.principal.user)
            for srn in associate_with:
                target = store.entity_by_srn(call.session, team, srn, "associate_with")
                store.ensure_association(call.session, team, row, target, "AssociatedWith", ctx.principal.user)
            return store.to_entity(row)

    def disassociate(self, ctx: RequestContext, team: str, source: str, destination: str, type: str) -> None:
        params = {"source": source, "destination": destination, "type": type}
        with (
            self.guard.begin(ctx, "DeleteLineageAssociation", graph_target(team), params=params) as call,
            call.transaction(),
        ):
            src = store.entity_by_srn(call.session, team, source, "source")
            dst = store.entity_by_srn(call.session, team, destination, "destination")
            row = call.session.scalars(
                select(LineageAssociationRow).where(
                    LineageAssociationRow.source_id == src.id,
                    LineageAssociationRow.destination_id == dst.id,
                    LineageAssociationRow.type == type,
                )
            ).first()
            if row is None:
                raise NotFound(f"no {type} association from {source} to {destination}", field="type")
            call.session.delete(row)

    def record_job(self, ctx: RequestContext, team: str, record: JobLineage) -> LineageEntity:
        """Record a job run and everything it needs to be reproduced, in one transaction.

        The run becomes a trial-component entity named by the job's resource name, holding the
        runtime, hyperparameters, seed, entry point and environment; its inputs ``ContributedTo``
        it, it ``Produced`` its outputs, and its code object, commit and runtime are artifacts
        ``AssociatedWith`` it. Recording the same run again adds only what is new.
        """
        check_name(team, "team")
        params = {"job": record.job, "inputs": len(record.inputs), "outputs": len(record.outputs)}
        with (
            self.guard.begin(ctx, "AddLineageAssociation", graph_target(team), params=params) as call,
            call.transaction(),
        ):
            return store.to_entity(record_job_in(call.session, team, record, ctx.principal.user))

    # -- reading ----------------------------------------------------------------------------

    def describe(self, ctx: RequestContext, team: str, srn: str) -> LineageEntity:
        with (
            self.guard.begin(ctx, "DescribeLineageEntity", graph_target(team), params={"srn": srn}) as c,
            c.transaction(write=False),
        ):
            return store.to_entity(store.entity_by_srn(c.session, team, srn))

    def list_entities(
        self,
        ctx: RequestContext,
        team: str,
        *,
        kind: str | None = None,
        type: str | None = None,
        uri: str | None = None,
        limit: int = 1000,
    ) -> list[LineageEntity]:
        if not 1 <= limit <= MAX_LIST:
            raise InvalidInput(f"limit must be between 1 and {MAX_LIST}", field="limit")
        params = {"kind": kind, "type": type, "uri": uri}
        with (
            self.guard.begin(ctx, "ListLineageEntities", graph_target(team), params=params) as call,
            call.transaction(write=False),
        ):
            query = select(LineageEntityRow).where(LineageEntityRow.team == team)
            if kind:
                query = query.where(LineageEntityRow.kind == kind)
            if type:
                query = query.where(LineageEntityRow.type == type)
            if uri:
                query = query.where(LineageEntityRow.uri == uri)
            rows = call.session.scalars(query.order_by(LineageEntityRow.id).limit(limit))
            return [store.to_entity(r) for r in rows]

    def query(
        self,
        ctx: RequestContext,
        team: str,
        start: str,
        *,
        direction: Direction = "upstream",
        depth: int = 10,
        association_types: Sequence[str] | None = None,
        entity_types: Sequence[str] | None = None,
        max_nodes: int | None = None,
    ) -> LineageGraph:
        """The lineage graph around ``start`` (see ``store.query_graph``)."""
        if direction not in ("upstream", "downstream", "both"):
            raise InvalidInput("direction must be upstream, downstream or both", field="direction")
        params = {"start": start, "direction": direction, "depth": depth}
        with (
            self.guard.begin(ctx, "QueryLineage", graph_target(team), params=params) as call,
            call.transaction(write=False),
        ):
            row = store.entity_by_srn(call.session, team, start, "start")
            return store.query_graph(
                call.session,
                row,
                direction=direction,
                depth=depth,
                association_types=association_types,
                entity_types=entity_types,
                max_nodes=max_nodes,
            )

    def job_record(self, ctx: RequestContext, team: str, job: str) -> JobLineage:
        """The reproduction record of a job run, rebuilt from the graph."""
        with (
            self.guard.begin(ctx, "DescribeLineageEntity", graph_target(team), params={"srn": job}) as c,
            c.transaction(write=False),
        ):
            return job_record_in(c.session, team, job)


def record_job_in(session: Session, team: str, record: JobLineage, user: str) -> LineageEntityRow:
    """``record_job`` inside a caller's transaction (for the jobs service's own guard call)."""
    props: dict[str, Any] = {
        "hyperparameters": record.hyperparameters,
        "seed": record.seed,
        "entry_point": record.entry_point,
        "environment": record.environment,
        "runtime": record.runtime.model_dump() if record.runtime else None,
        "status": record.status,
        "experiment_component": record.experiment_component,
    }
    run = store.ensure_entity(
        session,
        team,
        kind="trial-component",
        type=record.job_type,
        srn=record.job,
        name=store.check_team_srn(team, record.job, "job").name,
        properties=props,
        created_by=user,
    )

    def artifact(ref: ArtifactRef) -> LineageEntityRow:
        return store.ensure_artifact(
            session,
            team,
            uri=ref.uri,
            type=ref.type,
            sha256=ref.sha256,
            version_id=ref.version_id,
            name=ref.name,
            properties={"media_type": ref.media_type} if ref.media_type else None,
            created_by=user,
        )

    def read(ref: ArtifactRef) -> LineageEntityRow:
        # An input is what some run already recorded (a training job's Model, say) when that object
        # version is known: the reader does not decide its type, the writer did.
        srn = store.artifact_srn(team, ref.uri, ref.version_id, ref.sha256)
        known = session.scalars(
            select(LineageEntityRow.type).where(LineageEntityRow.srn == srn, LineageEntityRow.kind == "artifact")
        ).first()
        return artifact(ref.model_copy(update={"type": known}) if known else ref)

    for ref in record.inputs:
        store.ensure_association(session, team, read(ref), run, "ContributedTo", user)
    for ref in record.outputs:
        store.ensure_association(session, team, run, artifact(ref), "Produced", user)
    if record.code is not None:
        code = artifact(record.code.model_copy(update={"type": "Code"}))
        store.ensure_association(session, team, code, run, "ContributedTo", user)
    if record.runtime is not None:
        runtime = store.ensure_artifact(
            session,
            team,
            uri=f"runtime:{record.runtime.name}@{record.runtime.version}",
            type="Runtime",
            sha256=record.runtime.digest if len(record.runtime.digest) == 64 else "",
            name=record.runtime.name,
            properties=record.runtime.model_dump(),
            created_by=user,
        )
        store.ensure_association(session, team, runtime, run, "AssociatedWith", user)
    if record.commit is not None:
        commit = commit_artifact(session, team, record.commit, user)
        store.ensure_association(session, team, commit, run, "AssociatedWith", user)
    return run


def commit_artifact(session: Session, team: str, commit: GitCommit, user: str) -> LineageEntityRow:
    """A git commit as a ``Commit`` artifact (uri ``git+<repository>@<sha>``)."""
    return store.ensure_artifact(
        session,
        team,
        uri=commit.uri,
        type="Commit",
        version_id=commit.commit,
        name=commit.commit[:12],
        properties=commit.model_dump(),
        created_by=user,
    )


def job_record_in(session: Session, team: str, job: str) -> JobLineage:
    run = store.entity_by_srn(session, team, job, "job")
    if run.kind != "trial-component":
        raise InvalidInput(f"{job} is a {run.kind}, not a job run", field="job")
    graph = store.query_graph(session, run, direction="both", depth=1)
    props = dict(run.properties or {})
    record = JobLineage(
        job=run.srn,
        job_type=run.type,
        status=str(props.get("status") or ""),
        runtime=props.get("runtime"),
        hyperparameters=props.get("hyperparameters") or {},
        seed=props.get("seed"),
        entry_point=props.get("entry_point") or [],
        environment=props.get("environment") or {},
        experiment_component=str(props.get("experiment_component") or ""),
    )
    by_srn = {n.srn: n for n in graph.nodes}
    for edge in graph.edges:
        if edge.destination == run.srn:
            node = by_srn[edge.source]
            if node.kind != "artifact":
                continue
            if node.type == "Commit":
                record.commit = GitCommit.model_validate(
                    {k: v for k, v in node.properties.items() if k in GitCommit.model_fields}
                )
                continue
            if node.type == "Runtime":
                continue
            ref = ArtifactRef(
                uri=node.uri,
                type=node.type,
                name=node.name,
                version_id=node.version_id,
                sha256=node.sha256,
                media_type=str(node.properties.get("media_type", "")),
            )
            if node.type == "Code":
                record.code = ref
            else:
                record.inputs.append(ref)
        elif edge.source == run.srn and edge.type == "Produced":
            node = by_srn[edge.destination]
            record.outputs.append(
                ArtifactRef(
                    uri=node.uri,
                    type=node.type,
                    name=node.name,
                    version_id=node.version_id,
                    sha256=node.sha256,
                    media_type=str(node.properties.get("media_type", "")),
                )
            )
    record.inputs.sort(key=lambda r: (r.name, r.uri))
    record.outputs.sort(key=lambda r: (r.name, r.uri))
    return record
