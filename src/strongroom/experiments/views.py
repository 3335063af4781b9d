"""Rows to entities: experiments, trials, and trial components loaded in bulk (no query per row)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from strongroom.core.names import Srn
from strongroom.experiments.analytics import std_dev
from strongroom.experiments.db import (
    ArtifactRow,
    ComponentTagRow,
    ExperimentRow,
    MetricSummaryRow,
    ParameterRow,
    TrialComponentRow,
    TrialLinkRow,
    TrialRow,
)
from strongroom.experiments.models import (
    ArtifactValue,
    Experiment,
    MetricSummary,
    ParameterValue,
    Trial,
    TrialComponent,
)

_CHUNK = 500


def experiment_entity(row: ExperimentRow) -> Experiment:
    return Experiment(
        name=row.name,
        team=row.team,
        srn=str(Srn(row.team, "experiment", row.name)),
        display_name=row.display_name,
        description=row.description,
        tags=dict(row.tags or {}),
        created_at=row.created_at,
        created_by=row.created_by,
    )


def trial_entity(row: TrialRow, experiment_name: str) -> Trial:
    return Trial(
        name=row.name,
        team=row.team,
        srn=str(Srn(row.team, "trial", row.name)),
        experiment_name=experiment_name,
        display_name=row.display_name,
        tags=dict(row.tags or {}),
        created_at=row.created_at,
        created_by=row.created_by,
    )


def summary_entity(s: MetricSummaryRow) -> MetricSummary:
    return MetricSummary(
        name=s.name,
        count=s.count,
        min=s.min,
        max=s.max,
        avg=s.mean,
        std_dev=std_dev(s.count, s.m2),
        last=s.last,
        last_step=s.last_step,
        last_timestamp=dt.datetime.fromtimestamp(s.last_timestamp, dt.UTC),
    )


def load_one(session: Session, row: TrialComponentRow) -> TrialComponent:
    return load_many(session, [row])[0]


def load_many(session: Session, rows: Sequence[TrialComponentRow]) -> list[TrialComponent]:
    """Components with their parameters, artifacts, metric summaries, tags and trials (5 queries a chunk)."""
    ids = [r.id for r in rows]
    parameters: dict[int, dict[str, ParameterValue]] = {i: {} for i in ids}
    inputs: dict[int, dict[str, ArtifactValue]] = {i: {} for i in ids}
    outputs: dict[int, dict[str, ArtifactValue]] = {i: {} for i in ids}
    metrics: dict[int, list[MetricSummary]] = {i: [] for i in ids}
    tags: dict[int, dict[str, str]] = {i: {} for i in ids}
    trials: dict[int, list[str]] = {i: [] for i in ids}
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        for p in session.scalars(select(ParameterRow).where(ParameterRow.component_id.in_(chunk))):
            value = p.number_value if p.number_value is not None else (p.string_value or "")
            parameters[p.component_id][p.name] = value
        for a in session.scalars(select(ArtifactRow).where(ArtifactRow.component_id.in_(chunk))):
            artifact = ArtifactValue(value=a.uri, media_type=a.media_type, sha256=a.sha256, version_id=a.version_id)
            (inputs if a.direction == "input" else outputs)[a.component_id][a.name] = artifact
        for s in session.scalars(
            select(MetricSummaryRow).where(MetricSummaryRow.component_id.in_(chunk)).order_by(MetricSummaryRow.name)
        ):
            metrics[s.component_id].append(summary_entity(s))
        for t in session.scalars(select(ComponentTagRow).where(ComponentTagRow.component_id.in_(chunk))):
            tags[t.component_id][t.key] = t.value
        for component_id, trial in session.execute(
            select(TrialLinkRow.component_id, TrialRow.name)
            .join(TrialRow, TrialRow.id == TrialLinkRow.trial_id)
            .where(TrialLinkRow.component_id.in_(chunk))
            .order_by(TrialRow.name)
        ):
            trials[component_id].append(trial)
    return [
        TrialComponent(
            name=r.name,
            team=r.team,
            srn=str(Srn(r.team, "trial-component", r.name)),
            display_name=r.display_name,
            status=r.status,  # type: ignore[arg-type]
            status_message=r.status_message,
            source=r.source,
            source_type=r.source_type,
            start_time=r.start_time,
            end_time=r.end_time,
            parameters=parameters[r.id],
            inputs=inputs[r.id],
            outputs=outputs[r.id],
            metrics=metrics[r.id],
            tags=tags[r.id],
            trials=trials[r.id],
            created_at=r.created_at,
            created_by=r.created_by,
        )
        for r in rows
    ]
