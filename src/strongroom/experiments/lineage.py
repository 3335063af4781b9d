"""What experiments record in the lineage graph, inside the experiments service's transaction."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from strongroom.core.names import Srn
from strongroom.experiments.db import TrialComponentRow
from strongroom.experiments.models import ArtifactValue
from strongroom.lineage import store as lineage

JOB_TYPES = ("ProcessingJob", "TrainingJob", "TransformJob")


def record_artifacts(
    session: Session,
    team: str,
    row: TrialComponentRow,
    inputs: Mapping[str, ArtifactValue],
    outputs: Mapping[str, ArtifactValue],
    user: str,
) -> None:
    """Inputs ``ContributedTo`` the component; it ``Produced`` its outputs (uris with a scheme only).

    An artifact named like ``model`` is typed Model, others DataSet.
    """
    run = component_entity(session, team, row, user)
    for direction, artifacts in (("input", inputs), ("output", outputs)):
        for name, a in artifacts.items():
            if "://" not in a.value:
                continue  # a plain value, not a location: nothing to trace
            entity = lineage.ensure_artifact(
                session,
                team,
                uri=a.value,
                type="Model" if "model" in name.lower() else "DataSet",
                sha256=a.sha256,
                version_id=a.version_id,
                name=name,
                properties={"media_type": a.media_type} if a.media_type else None,
                created_by=user,
            )
            if direction == "input":
                lineage.ensure_association(session, team, entity, run, "ContributedTo", user)
            else:
                lineage.ensure_association(session, team, run, entity, "Produced", user)


def component_entity(session: Session, team: str, row: TrialComponentRow, user: str) -> Any:
    """The component's lineage entity (created on first use)."""
    return lineage.ensure_entity(
        session,
        team,
        kind="trial-component",
        type=row.source_type if row.source_type in JOB_TYPES else "Tracker",
        srn=str(Srn(team, "trial-component", row.name)),
        name=row.name,
        properties={"source": row.source} if row.source else None,
        created_by=user,
    )
