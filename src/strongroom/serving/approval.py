"""Whether a deployment's models come from an Approved package version, as the policy engine sees it.

A team that wants only approved models deployed attaches a policy such as::

    @id("require-approved-models")
    @message("deploy only models from an Approved model package version")
    forbid (principal, action in [Action::"CreateEndpointConfig", Action::"CreateEndpoint"], resource)
    when { context has model_approval && context.model_approval != "Approved" };

``CreateEndpointConfig`` and ``CreateEndpoint`` re-authorize, once their models are loaded, with
``context.model_approval``: the weakest status among the models they deploy (``Approved``,
``PendingManualApproval``, ``Unregistered``, ``Rejected``). A model counts as a package version's
when every pin matches (archive, object version, content hash, runtime).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from strongroom.core.context import RequestContext
from strongroom.core.errors import Forbidden, StrongroomError
from strongroom.db.base import utcnow
from strongroom.db.engine import Database
from strongroom.guard import Ticket
from strongroom.lineage.service import LineageService
from strongroom.lineage.store import artifact_srn
from strongroom.serving.registry_db import ModelPackageApprovalRow, ModelPackageRow
from strongroom.serving.registry_models import UNREGISTERED

log = logging.getLogger(__name__)
# What must be equal for a model to be the one a package version holds.
PINS = ("model_data", "version_id", "sha256", "runtime", "inference_code")
# Weakest last: a deployment is as approved as its least approved model.
ORDER = ("Approved", "PendingManualApproval", UNREGISTERED, "Rejected")


def same_model(registered: Mapping[str, Any], model: Mapping[str, Any]) -> bool:
    return all(registered.get(pin) == model.get(pin) for pin in PINS)


def packages_of(session: Session, team: str, model: Mapping[str, Any]) -> list[ModelPackageRow]:
    """The package versions that hold ``model`` (a model's spec), newest change first."""
    rows = session.scalars(
        select(ModelPackageRow)
        .where(ModelPackageRow.team == team, ModelPackageRow.sha256 == model.get("sha256", ""))
        .order_by(ModelPackageRow.updated_at.desc())
    )
    return [r for r in rows if same_model(r.model, model)]


def status_of(session: Session, team: str, model: Mapping[str, Any]) -> tuple[str, ModelPackageRow | None]:
    """``Approved`` if any version holding ``model`` is, else the newest version's status, else
    ``Unregistered``; with the version that decided it."""
    rows = packages_of(session, team, model)
    approved = next((r for r in rows if r.approval_status == "Approved"), None)
    if approved is not None:
        return "Approved", approved
    if rows:
        return rows[0].approval_status, rows[0]
    return UNREGISTERED, None


def require_approval(
    call: Ticket,
    team: str,
    models: Mapping[str, Mapping[str, Any]],
    field: str,
    fields: Mapping[str, str] | None = None,
) -> None:
    """Re-authorize ``call`` with ``context.model_approval`` of ``models`` (name -> spec); a refusal
    names ``fields[model]`` (the variant's ``ModelName``) if given, else ``field``.

    Raises:
        Forbidden: a policy refuses the deployment; the detail names the model and its status.
    """
    weakest, culprit, package = "Approved", "", None
    for name in sorted(models):
        status, row = status_of(call.session, team, models[name])
        if ORDER.index(status) > ORDER.index(weakest):
            weakest, culprit, package = status, name, row
    try:
        call.check(call.target, {"model_approval": weakest})
    except Forbidden as exc:
        where = f"model package {package.group_name} version {package.version}" if package else "no model package"
        hint = (
            "register it (strongroom models register) and have an MLOps engineer approve it"
            if package is None
            else "an MLOps engineer approves it with strongroom models approve"
        )
        raise Forbidden(
            f"{exc.detail} (model {culprit!r} is {weakest}: {where}; {hint})",
            field=(fields or {}).get(culprit, field),
            model=culprit,
            model_approval=weakest,
            **exc.extra,
        ) from None


def record_deployment(
    lineage: LineageService, db: Database, ctx: RequestContext, team: str, endpoint_srn: str, models: Mapping[str, Any]
) -> None:
    """The deployment as a ``ModelDeployment`` action that ``ContributedTo`` the endpoint, with every
    deployed ``model.tar.gz``, the package version holding it (if any) and, when that version is
    Approved, its latest approval action ``ContributedTo`` the deployment."""
    links: list[tuple[str, int, str, int]] = []
    with db.read() as session:
        for _, spec in sorted(models.items()):
            status, row = status_of(session, team, spec)
            if row is not None:
                changes = session.scalar(select(func.count()).where(ModelPackageApprovalRow.package_id == row.id))
                links.append((row.group_name, row.version, row.id, int(changes or 0) if status == "Approved" else 0))
    name = "deployment-" + hashlib.sha256(f"{endpoint_srn}\0{utcnow().isoformat()}".encode()).hexdigest()[:24]
    properties = {"endpoint": endpoint_srn, "by": ctx.principal.user, "models": sorted(models)}
    try:
        deployment = lineage.record_action(ctx, team, name, "ModelDeployment", properties)
        lineage.associate(ctx, team, deployment.srn, endpoint_srn, "ContributedTo")
        for _, spec in sorted(models.items()):
            artifact = artifact_srn(team, spec["model_data"], spec.get("version_id", ""), spec.get("sha256", ""))
            lineage.associate(ctx, team, artifact, deployment.srn, "ContributedTo")
        for group, version, row_id, changes in links:
            package = lineage.record_artifact(ctx, team, package_srn(team, group, version), "ModelPackage")
            lineage.associate(ctx, team, package.srn, deployment.srn, "ContributedTo")
            if changes:
                approval = lineage.record_action(ctx, team, approval_action_name(row_id, changes), "Approval")
                lineage.associate(ctx, team, approval.srn, deployment.srn, "ContributedTo")
    except StrongroomError as exc:  # the endpoint exists; a missing lineage edge is logged, not fatal
        log.warning("endpoint %s: deployment lineage not recorded: %s", endpoint_srn, exc.detail)


def package_srn(team: str, group: str, version: int) -> str:
    return f"srn:strongroom:{team}:model-package/{group}/{version}"


def approval_action_name(package_id: str, number: int) -> str:
    """The lineage name of a version's ``number``-th approval change (1 is its registration)."""
    return f"approval-{package_id[:16]}-{number}"
