"""Experiments service: experiments, trials, trial components, batched metric writes, analytics.

Authorization is per team: experiment resources carry no owner or tags the policies look at,
so single-resource calls name the resource and batch writes and searches name the team's
collection (``trial-component/*``) — one guard call per batch, not per metric.

Components that log input or output artifacts are recorded in the lineage graph in the same
transaction (inputs ``ContributedTo`` the component, the component ``Produced`` its outputs).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from strongroom.core.context import RequestContext
from strongroom.core.errors import Conflict, InvalidInput, NotFound
from strongroom.core.names import Srn, check_name
from strongroom.db.base import utcnow
from strongroom.db.engine import Database
from strongroom.experiments import analytics, views, writes
from strongroom.experiments.db import (
    ArtifactRow,
    ComponentTagRow,
    ExperimentRow,
    MetricRow,
    MetricSummaryRow,
    ParameterRow,
    TrialComponentRow,
    TrialLinkRow,
    TrialRow,
)
from strongroom.experiments.lineage import component_entity, record_artifacts
from strongroom.experiments.models import (
    ArtifactValue,
    BatchResult,
    ComponentCreate,
    ComponentUpdate,
    Experiment,
    ExperimentConfig,
    MetricColumns,
    MetricSeries,
    ParameterValue,
    Trial,
    TrialComponent,
)
from strongroom.guard import Guard
from strongroom.lineage import store as lineage
from strongroom.lineage.models import GitCommit
from strongroom.lineage.service import commit_artifact
from strongroom.policy.engine import Target

MAX_BATCH_COMPONENTS = 10_000
MAX_READ_COMPONENTS = 100  # components read side by side (the console's compare)


def _target(kind: str, team: str, name: str = "*") -> Target:
    check_name(team, "team")
    return Target(kind, team, name)


def _tags(tags: Mapping[str, str] | None) -> dict[str, str]:
    out = dict(tags or {})
    for key, value in out.items():
        writes.check_key(key, "tags")
        if not isinstance(value, str) or len(value) > 256:
            raise InvalidInput(f"tag {key!r} must be a string of at most 256 characters", field="tags")
    return out


class ExperimentsService:
    def __init__(self, db: Database, guard: Guard) -> None:
        self.db = db
        self.guard = guard

    # -- experiments ------------------------------------------------------------------------

    def create_experiment(
        self,
        ctx: RequestContext,
        team: str,
        name: str,
        *,
        display_name: str = "",
        description: str = "",
        tags: Mapping[str, str] | None = None,
    ) -> Experiment:
        check_name(name, "name")
        params = {"name": name, "display_name": display_name, "description": description, "tags": _tags(tags)}
        with (
            self.guard.begin(ctx, "CreateExperiment", _target("experiment", team, name), params=params) as call,
            call.transaction(),
        ):
            if (replayed := call.replay(Experiment)) is not None:
                return replayed
            if self._experiment(call.session, team, name, required=False) is not None:
                raise Conflict(f"team {team} already has an experiment named {name!r}", field="name")
            row = ExperimentRow(
                team=team,
                name=name,
                display_name=display_name or name,
                description=description,
                tags=_tags(tags),
                created_at=utcnow(),
                created_by=ctx.principal.user,
            )
            call.session.add(row)
            call.session.flush()
            lineage.ensure_entity(
                call.session,
                team,
                kind="context",
                type="Experiment",
                srn=str(Srn(team, "experiment", name)),
                name=name,
                created_by=ctx.principal.user,
            )
            call.emit("ExperimentCreated", name=name)
            return call.result(views.experiment_entity(row))

    def describe_experiment(self, ctx: RequestContext, team: str, name: str) -> Experiment:
        with (
            self.guard.begin(ctx, "DescribeExperiment", _target("experiment", team, name)) as call,
            call.transaction(write=False),
        ):
            return views.experiment_entity(self._experiment(call.session, team, name))

    def list_experiments(self, ctx: RequestContext, team: str) -> list[Experiment]:
        with (
            self.guard.begin(ctx, "ListExperiments", _target("experiment", team)) as call,
            call.transaction(write=False),
        ):
            rows = call.session.scalars(
                select(ExperimentRow).where(ExperimentRow.team == team).order_by(ExperimentRow.name)
            )
            return [views.experiment_entity(r) for r in rows]

    def delete_experiment(self, ctx: RequestContext, team: str, name: str) -> None:
        """Delete an experiment; refused while it still has trials."""
        with self.guard.begin(ctx, "DeleteExperiment", _target("experiment", team, name)) as call, call.transaction():
            row = self._experiment(call.session, team, name)
            if call.session.scalars(select(TrialRow.id).where(TrialRow.experiment_id == row.id)).first():
                raise Conflict(f"experiment {name!r} still has trials; delete them first", field="name")
            call.session.delete(row)

    @staticmethod
    def _experiment(session: Session, team: str, name: str, required: bool = True) -> Any:
        row = session.scalars(
            select(ExperimentRow).where(ExperimentRow.team == team, ExperimentRow.name == name)
        ).first()
        if row is None and required:
            raise NotFound(f"team {team} has no experiment named {name!r}", field="experiment_name")
        return row

    # -- trials -----------------------------------------------------------------------------

    def create_trial(
        self,
        ctx: RequestContext,
        team: str,
        name: str,
        experiment_name: str,
        *,
        display_name: str = "",
        tags: Mapping[str, str] | None = None,
    ) -> Trial:
        check_name(name, "name")
        params = {"name": name, "experiment_name": experiment_name, "display_name": display_name}
        with (
            self.guard.begin(ctx, "CreateTrial", _target("trial", team, name), params=params) as call,
            call.transaction(),
        ):
            if (replayed := call.replay(Trial)) is not None:
                return replayed
            experiment = self._experiment(call.session, team, experiment_name)
            if self._trial(call.session, team, name, required=False) is not None:
                raise Conflict(f"team {team} already has a trial named {name!r}", field="name")
            row = TrialRow(
                team=team,
                name=name,
                experiment_id=experiment.id,
                display_name=display_name or name,
                tags=_tags(tags),
                created_at=utcnow(),
                created_by=ctx.principal.user,
            )
            call.session.add(row)
            call.session.flush()
            call.emit("TrialCreated", name=name, experiment=experiment_name)
            return call.result(views.trial_entity(row, experiment_name))

    def describe_trial(self, ctx: RequestContext, team: str, name: str) -> Trial:
        with (
            self.guard.begin(ctx, "DescribeTrial", _target("trial", team, name)) as call,
            call.transaction(write=False),
        ):
            row = self._trial(call.session, team, name)
            experiment = call.session.get(ExperimentRow, row.experiment_id)
            return views.trial_entity(row, experiment.name if experiment else "")

    def list_trials(self, ctx: RequestContext, team: str, experiment_name: str | None = None) -> list[Trial]:
        params = {"experiment_name": experiment_name}
        with (
            self.guard.begin(ctx, "ListTrials", _target("trial", team), params=params) as call,
            call.transaction(write=False),
        ):
            query = (
                select(TrialRow, ExperimentRow.name)
                .join(ExperimentRow, ExperimentRow.id == TrialRow.experiment_id)
                .where(TrialRow.team == team)
            )
            if experiment_name:
                query = query.where(ExperimentRow.name == experiment_name)
            return [views.trial_entity(t, e) for t, e in call.session.execute(query.order_by(TrialRow.name))]

    def delete_trial(self, ctx: RequestContext, team: str, name: str) -> None:
        """Delete a trial; its components stay (they may belong to other trials)."""
        with self.guard.begin(ctx, "DeleteTrial", _target("trial", team, name)) as call, call.transaction():
            row = self._trial(call.session, team, name)
            call.session.execute(delete(TrialLinkRow).where(TrialLinkRow.trial_id == row.id))
            call.session.delete(row)

    @staticmethod
    def _trial(session: Session, team: str, name: str, required: bool = True) -> Any:
        row = session.scalars(select(TrialRow).where(TrialRow.team == team, TrialRow.name == name)).first()
        if row is None and required:
            raise NotFound(f"team {team} has no trial named {name!r}", field="trial_name")
        return row

    def associate_trial_component(self, ctx: RequestContext, team: str, trial: str, component: str) -> None:
        params = {"trial": trial, "component": component}
        with (
            self.guard.begin(ctx, "AssociateTrialComponent", _target("trial", team, trial), params=params) as call,
            call.transaction(),
        ):
            trial_row = self._trial(call.session, team, trial)
            component_row = self._component(call.session, team, component)
            if call.session.get(TrialLinkRow, (trial_row.id, component_row.id)) is None:
                call.session.add(TrialLinkRow(trial_id=trial_row.id, component_id=component_row.id))

    def disassociate_trial_component(self, ctx: RequestContext, team: str, trial: str, component: str) -> None:
        params = {"trial": trial, "component": component}
        with (
            self.guard.begin(ctx, "DisassociateTrialComponent", _target("trial", team, trial), params=params) as call,
            call.transaction(),
        ):
            trial_row = self._trial(call.session, team, trial)
            component_row = self._component(call.session, team, component)
            link = call.session.get(TrialLinkRow, (trial_row.id, component_row.id))
            if link is None:
                raise NotFound(f"{component} is not in trial {trial}", field="component")
            call.session.delete(link)

    # -- trial components -------------------------------------------------------------------

    def create_trial_component(
        self,
        ctx: RequestContext,
        team: str,
        name: str,
        *,
        display_name: str = "",
        status: str = "InProgress",
        source: str = "",
        source_type: str = "",
        start_time: dt.datetime | None = None,
        parameters: Mapping[str, ParameterValue] | None = None,
        inputs: Mapping[str, ArtifactValue] | None = None,
        tags: Mapping[str, str] | None = None,
        trial: str | None = None,
        commit: GitCommit | None = None,
    ) -> TrialComponent:
        """Create a component (optionally with its first parameters and inputs, in a trial).

        ``commit`` is the git state of the working tree the work ran from: it becomes a
        ``Commit`` artifact ``AssociatedWith`` the component in the lineage graph.
        """
        spec = ComponentCreate.model_validate(
            {
                "name": name,
                "display_name": display_name,
                "status": status,
                "source": source,
                "source_type": source_type,
                "start_time": start_time,
                "parameters": dict(parameters or {}),
                "inputs": dict(inputs or {}),
                "tags": dict(tags or {}),
                "trial": trial,
                "commit": commit,
            }
        )
        check_name(name, "name")
        params = {"name": name, "display_name": display_name, "source": source, "trial": trial, "status": status}
        with (
            self.guard.begin(
                ctx, "CreateTrialComponent", _target("trial-component", team, name), params=params
            ) as call,
            call.transaction(),
        ):
            if (replayed := call.replay(TrialComponent)) is not None:
                return replayed
            rows = self._create_rows(call.session, team, [spec], ctx.principal.user)
            call.emit("TrialComponentCreated", name=name, source=source)
            return call.result(views.load_one(call.session, rows[name]))

    def _create_rows(
        self, session: Session, team: str, specs: Sequence[ComponentCreate], user: str
    ) -> dict[str, TrialComponentRow]:
        """Insert new components with their first parameters, inputs, tags, trial and commit."""
        names = [check_name(s.name, "name") for s in specs]
        if len(set(names)) != len(names):
            raise InvalidInput("a component is created twice in one request", field="name")
        for s in specs:
            if s.source:
                Srn.parse(s.source, "source")
        taken: set[str] = set()
        for start in range(0, len(names), 500):
            chunk = names[start : start + 500]
            taken.update(
                session.scalars(
                    select(TrialComponentRow.name).where(
                        TrialComponentRow.team == team, TrialComponentRow.name.in_(chunk)
                    )
                )
            )
        if taken:
            first = sorted(taken)[0]
            raise Conflict(f"team {team} already has a trial component named {first!r}", field="name")
        trial_names = sorted({s.trial for s in specs if s.trial})
        trials = {
            t.name: t.id
            for t in session.scalars(select(TrialRow).where(TrialRow.team == team, TrialRow.name.in_(trial_names)))
        }
        for t in trial_names:
            if t not in trials:
                raise NotFound(f"team {team} has no trial named {t!r}", field="trial")
        now = utcnow()
        rows = {
            s.name: TrialComponentRow(
                team=team,
                name=s.name,
                display_name=s.display_name or s.name,
                status=s.status,
                status_message="",
                source=s.source,
                source_type=s.source_type,
                start_time=s.start_time or now,
                end_time=None,
                created_at=now,
                created_by=user,
            )
            for s in specs
        }
        session.add_all(rows.values())
        session.flush()
        links = [{"trial_id": trials[s.trial], "component_id": rows[s.name].id} for s in specs if s.trial]
        if links:
            session.execute(insert(TrialLinkRow), links)
        updates = [
            ComponentUpdate(name=s.name, parameters=s.parameters, inputs=s.inputs, tags=s.tags)
            for s in specs
            if s.parameters or s.inputs or s.tags
        ]
        self._apply(session, team, rows, updates, [], user)
        commits: dict[str, Any] = {}
        for s in specs:
            if s.commit is None:
                continue
            artifact = commits.get(s.commit.uri)
            if artifact is None:
                artifact = commits[s.commit.uri] = commit_artifact(session, team, s.commit, user)
            run = component_entity(session, team, rows[s.name], user)
            lineage.ensure_association(session, team, artifact, run, "AssociatedWith", user)
        return rows

    def describe_trial_component(self, ctx: RequestContext, team: str, name: str) -> TrialComponent:
        with (
            self.guard.begin(ctx, "DescribeTrialComponent", _target("trial-component", team, name)) as c,
            c.transaction(write=False),
        ):
            return views.load_one(c.session, self._component(c.session, team, name))

    def list_trial_components(
        self,
        ctx: RequestContext,
        team: str,
        trial: str | None = None,
        source: str | None = None,
        *,
        offset: int = 0,
        limit: int = 10_000,
    ) -> list[TrialComponent]:
        """Components in creation order; ``offset``/``limit`` read one page (only its rows are loaded)."""
        if offset < 0 or not 1 <= limit <= 10_000:
            raise InvalidInput("offset is at least 0 and limit from 1 to 10000", field="limit")
        params = {"trial": trial, "source": source} | (
            {"offset": offset, "limit": limit} if offset or limit < 10_000 else {}
        )
        with (
            self.guard.begin(ctx, "ListTrialComponents", _target("trial-component", team), params=params) as call,
            call.transaction(write=False),
        ):
            query = select(TrialComponentRow).where(TrialComponentRow.team == team)
            if trial:
                trial_row = self._trial(call.session, team, trial)
                query = query.join(TrialLinkRow, TrialLinkRow.component_id == TrialComponentRow.id).where(
                    TrialLinkRow.trial_id == trial_row.id
                )
            if source:
                query = query.where(TrialComponentRow.source == source)
            rows = list(call.session.scalars(query.order_by(TrialComponentRow.id).offset(offset).limit(limit)))
            return views.load_many(call.session, rows)

    def delete_trial_component(self, ctx: RequestContext, team: str, name: str) -> None:
        with (
            self.guard.begin(ctx, "DeleteTrialComponent", _target("trial-component", team, name)) as call,
            call.transaction(),
        ):
            row = self._component(call.session, team, name)
            for table in (TrialLinkRow, ParameterRow, ArtifactRow, ComponentTagRow, MetricRow, MetricSummaryRow):
                call.session.execute(delete(table).where(table.component_id == row.id))
            call.session.delete(row)

    def update_trial_component(self, ctx: RequestContext, team: str, update: ComponentUpdate) -> TrialComponent:
        """Set fields, merge parameters/artifacts/tags, append metrics of one component."""
        target = _target("trial-component", team, update.name)
        with (
            self.guard.begin(ctx, "UpdateTrialComponent", target, params=_update_params(update)) as call,
            call.transaction(),
        ):
            row = self._component(call.session, team, update.name)
            self._apply(call.session, team, {row.name: row}, [update], [], ctx.principal.user)
            return views.load_one(call.session, row)

    def batch_update(
        self,
        ctx: RequestContext,
        team: str,
        updates: Sequence[ComponentUpdate] = (),
        metric_columns: Sequence[MetricColumns] = (),
        creates: Sequence[ComponentCreate] = (),
    ) -> BatchResult:
        """Create components, apply updates and append metrics in one guarded transaction.

        All or nothing: an unknown component, a name taken or a bad value rejects the whole
        batch. This is what the SDK's background writer sends.
        """
        created = [c.name for c in creates]
        names = sorted({u.name for u in updates} | {m.component for m in metric_columns} | set(created))
        if len(names) > MAX_BATCH_COMPONENTS:
            raise InvalidInput(f"a batch touches at most {MAX_BATCH_COMPONENTS} components", field="components")
        points = sum(len(u.metrics) for u in updates) + sum(len(m.names) for m in metric_columns)
        params = {"components": names[:100], "component_count": len(names), "created": len(created), "metrics": points}
        with (
            self.guard.begin(ctx, "BatchWriteTrialComponents", _target("trial-component", team), params=params) as call,
            call.transaction(),
        ):
            if (replayed := call.replay(BatchResult)) is not None:
                return replayed
            rows = self._create_rows(call.session, team, creates, ctx.principal.user) if creates else {}
            # Components whose fields change are loaded as rows; those that only gain metric
            # points need their id only (the common case: one durable log_metric).
            updated = {u.name for u in updates}
            ids = {name: row.id for name, row in rows.items()}
            ids.update(
                writes.component_ids(call.session, team, [n for n in names if n not in rows and n not in updated])
            )
            wanted = [n for n in names if n not in rows and n in updated]
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                rows.update(
                    (r.name, r)
                    for r in call.session.scalars(
                        select(TrialComponentRow).where(
                            TrialComponentRow.team == team, TrialComponentRow.name.in_(chunk)
                        )
                    )
                )
            ids.update((name, row.id) for name, row in rows.items())
            missing = [n for n in names if n not in ids]
            if missing:
                raise NotFound(f"team {team} has no trial component named {missing[0]!r}", field="components")
            result = self._apply(call.session, team, rows, updates, metric_columns, ctx.principal.user, ids)
            return call.result(result.model_copy(update={"created": len(created)}))

    def metric_series(self, ctx: RequestContext, team: str, component: str, name: str) -> MetricSeries:
        target = _target("trial-component", team, component)
        with (
            self.guard.begin(ctx, "DescribeTrialComponent", target, params={"metric": name}) as call,
            call.transaction(write=False),
        ):
            row = self._component(call.session, team, component)
            points = call.session.execute(
                select(MetricRow.step, MetricRow.value, MetricRow.timestamp)
                .where(MetricRow.component_id == row.id, MetricRow.name == name)
                .order_by(MetricRow.id)
            ).all()
            return MetricSeries(
                component=component,
                name=name,
                steps=[p[0] for p in points],
                values=[p[1] for p in points],
                timestamps=[p[2] for p in points],
            )

    def describe_trial_components(self, ctx: RequestContext, team: str, names: Sequence[str]) -> list[TrialComponent]:
        """Several components in one read (in the order asked); an unknown name raises NotFound."""
        wanted = list(dict.fromkeys(check_name(n, "names") for n in names))
        if len(wanted) > MAX_READ_COMPONENTS:
            raise InvalidInput(f"read at most {MAX_READ_COMPONENTS} components at once", field="names")
        target = _target("trial-component", team)
        with (
            self.guard.begin(ctx, "SearchTrialComponents", target, params={"names": wanted}) as call,
            call.transaction(write=False),
        ):
            rows = {
                r.name: r
                for r in call.session.scalars(
                    select(TrialComponentRow).where(TrialComponentRow.team == team, TrialComponentRow.name.in_(wanted))
                )
            }
            missing = [n for n in wanted if n not in rows]
            if missing:
                raise NotFound(f"team {team} has no trial component named {missing[0]!r}", field="names")
            return views.load_many(call.session, [rows[n] for n in wanted])

    def metric_series_of(
        self, ctx: RequestContext, team: str, components: Sequence[str], names: Sequence[str] | None = None
    ) -> list[MetricSeries]:
        """The series of metrics ``names`` (every metric when None) of several components, in one
        read: ordered by component as asked, then metric name; a metric a component lacks is left out."""
        wanted = list(dict.fromkeys(check_name(c, "components") for c in components))
        if len(wanted) > MAX_READ_COMPONENTS:
            raise InvalidInput(f"read at most {MAX_READ_COMPONENTS} components at once", field="components")
        params = {"components": wanted, "metrics": list(names)[:100] if names is not None else None}
        with (
            self.guard.begin(ctx, "SearchTrialComponents", _target("trial-component", team), params=params) as call,
            call.transaction(write=False),
        ):
            ids: dict[int, str] = {
                row_id: row_name
                for row_id, row_name in call.session.execute(
                    select(TrialComponentRow.id, TrialComponentRow.name).where(
                        TrialComponentRow.team == team, TrialComponentRow.name.in_(wanted)
                    )
                )
            }
            query = select(MetricRow.component_id, MetricRow.name, MetricRow.step, MetricRow.value, MetricRow.timestamp)
            query = query.where(MetricRow.component_id.in_(list(ids)))
            if names is not None:
                query = query.where(MetricRow.name.in_(list(names)))
            found: dict[tuple[str, str], MetricSeries] = {}
            for component_id, name, step, value, timestamp in call.session.execute(query.order_by(MetricRow.id)):
                series = found.get((ids[component_id], name))
                if series is None:
                    series = found[(ids[component_id], name)] = MetricSeries(
                        component=ids[component_id], name=name, steps=[], values=[], timestamps=[]
                    )
                series.steps.append(step)
                series.values.append(value)
                series.timestamps.append(timestamp)
            order = {c: i for i, c in enumerate(wanted)}
            return sorted(found.values(), key=lambda s: (order[s.component], s.name))

    def search(self, ctx: RequestContext, team: str, request: analytics.SearchRequest) -> analytics.Columns:
        """The analytics table: one row per matching component (see ``experiments.analytics``)."""
        params = request.model_dump(mode="json", by_alias=True)
        with (
            self.guard.begin(ctx, "SearchTrialComponents", _target("trial-component", team), params=params) as call,
            call.transaction(write=False),
        ):
            return analytics.build(call.session, team, request)

    # -- jobs -------------------------------------------------------------------------------

    def start_job_component(
        self,
        ctx: RequestContext,
        team: str,
        config: ExperimentConfig,
        *,
        source: str,
        source_type: str,
        parameters: Mapping[str, ParameterValue] | None = None,
        inputs: Mapping[str, ArtifactValue] | None = None,
    ) -> TrialComponent:
        """What the jobs service calls when a job is given an experiment config.

        Creates the job's trial component (named after the job, ``<job>-<type>``, source = the
        job's resource name, status InProgress) with its hyperparameters and input channels, in
        the configured trial. Finish it with ``finish_job_component``.
        """
        job = Srn.parse(source, "source")
        suffix = "-" + "".join(c for c in source_type.lower() if c.isalnum())[:20]
        name = (job.name[: 63 - len(suffix)] + suffix).strip("-")
        return self.create_trial_component(
            ctx,
            team,
            name,
            display_name=config.trial_component_display_name or job.name,
            source=source,
            source_type=source_type,
            parameters=parameters,
            inputs=inputs,
            trial=config.trial_name,
        )

    def finish_job_component(
        self,
        ctx: RequestContext,
        team: str,
        name: str,
        *,
        status: str,
        status_message: str = "",
        metrics: Sequence[Mapping[str, Any]] = (),
        outputs: Mapping[str, ArtifactValue] | None = None,
    ) -> TrialComponent:
        """Record a job's final metrics (``{"name", "value", "step"?, "timestamp"?}``), outputs and status."""
        update = ComponentUpdate.model_validate(
            {
                "name": name,
                "status": status,
                "status_message": status_message,
                "end_time": utcnow(),
                "metrics": list(metrics),
                "outputs": dict(outputs or {}),
            }
        )
        return self.update_trial_component(ctx, team, update)

    # -- internals --------------------------------------------------------------------------

    @staticmethod
    def _component(session: Session, team: str, name: str, required: bool = True) -> Any:
        row = session.scalars(
            select(TrialComponentRow).where(TrialComponentRow.team == team, TrialComponentRow.name == name)
        ).first()
        if row is None and required:
            raise NotFound(f"team {team} has no trial component named {name!r}", field="trial_component_name")
        return row

    def _apply(
        self,
        session: Session,
        team: str,
        rows: Mapping[str, TrialComponentRow],
        updates: Sequence[ComponentUpdate],
        metric_columns: Sequence[MetricColumns],
        user: str,
        ids: Mapping[str, int] | None = None,
    ) -> BatchResult:
        """Apply ``updates`` to ``rows`` and append ``metric_columns`` (by component id: ``ids``,
        else the rows' own)."""
        params: list[dict[str, Any]] = []
        tags: list[dict[str, Any]] = []
        artifacts: list[dict[str, Any]] = []
        batch = writes.MetricBatch()
        for u in updates:
            row = rows[u.name]
            for field in ("display_name", "status", "status_message", "start_time", "end_time"):
                value = getattr(u, field)
                if value is not None:
                    setattr(row, field, value)
            params.extend(writes.parameter_row(row.id, k, v) for k, v in u.parameters.items())
            tags.extend({"component_id": row.id, "key": k, "value": v} for k, v in _tags(u.tags).items())
            artifacts.extend(writes.artifact_rows(row.id, "input", u.inputs))
            artifacts.extend(writes.artifact_rows(row.id, "output", u.outputs))
            if u.metrics:
                batch.extend(
                    row.id,
                    [m.name for m in u.metrics],
                    [m.value for m in u.metrics],
                    [m.step for m in u.metrics],
                    [m.timestamp for m in u.metrics],
                )
            if u.inputs or u.outputs:
                record_artifacts(session, team, row, u.inputs, u.outputs, user)
        for m in metric_columns:
            component_id = ids[m.component] if ids is not None else rows[m.component].id
            batch.extend(component_id, m.names, m.values, m.steps, m.timestamps)
        writes.put_parameters(session, params)
        writes.put_tags(session, tags)
        writes.put_artifacts(session, artifacts)
        writes.put_metrics(session, batch)
        return BatchResult(components=len(rows), metrics=len(batch), parameters=len(params), artifacts=len(artifacts))


def _update_params(update: ComponentUpdate) -> dict[str, Any]:
    return {
        "name": update.name,
        "status": update.status,
        "parameters": sorted(update.parameters),
        "inputs": sorted(update.inputs),
        "outputs": sorted(update.outputs),
        "metrics": len(update.metrics),
    }
