"""The model registry: package groups, versions registered from models or training jobs, and an
approval status per version with its append-only history (who, when, why).

Data scientists register; MLOps engineers (and the team's admin) approve or reject. Whether an
endpoint may serve a version that is not ``Approved`` is the team's policy (see ``approval``).
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from strongroom.core.context import RequestContext
from strongroom.core.errors import Conflict, InvalidInput, NotFound, StrongroomError
from strongroom.core.names import check_name
from strongroom.db.base import utcnow
from strongroom.db.engine import Database
from strongroom.guard import Guard, Ticket
from strongroom.lineage.service import LineageService
from strongroom.policy.engine import Target
from strongroom.serving.approval import approval_action_name, package_srn
from strongroom.serving.db import ModelRow
from strongroom.serving.registry_db import ModelPackageApprovalRow, ModelPackageGroupRow, ModelPackageRow
from strongroom.serving.registry_models import (
    ApprovalSpec,
    ModelPackage,
    ModelPackageGroup,
    ModelPackageGroupSpec,
    RegisterSpec,
)
from strongroom.serving.service import ServingService

log = logging.getLogger(__name__)
MAX_VERSION = 99_999_999


def _group_target(team: str, group: str) -> Target:
    return Target("model-package-group", team, group)


def _package_target(team: str, group: str, version: int | str) -> Target:
    return Target("model-package", team, f"{group}/{version}")


class ModelRegistry:
    def __init__(
        self, db: Database, guard: Guard, serving: ServingService, lineage: LineageService | None = None
    ) -> None:
        self.db = db
        self.guard = guard
        self.serving = serving
        self.lineage = lineage

    # -- groups ---------------------------------------------------------------------------------

    def create_group(self, ctx: RequestContext, team: str, spec: ModelPackageGroupSpec) -> ModelPackageGroup:
        """``CreateModelPackageGroup``; a group that exists is a ``Conflict``."""
        check_name(team, "team")
        target = _group_target(team, spec.name)
        params = spec.model_dump(mode="json")
        with self.guard.begin(ctx, "CreateModelPackageGroup", target, params=params) as call, call.transaction():
            if (replayed := call.replay(ModelPackageGroup)) is not None:
                return replayed
            row = self._add_group(call, team, spec)
            return call.result(self._group_entity(call.session, row))

    def _add_group(self, call: Ticket, team: str, spec: ModelPackageGroupSpec) -> ModelPackageGroupRow:
        if self._group(call.session, team, spec.name) is not None:
            raise Conflict(
                f"team {team} already has a model package group named {spec.name!r}; register a new version in it",
                field="name",
            )
        row = ModelPackageGroupRow(
            id=uuid.uuid4().hex,
            team=team,
            name=spec.name,
            description=spec.description,
            created_by=call.ctx.principal.user,
            created_at=utcnow(),
        )
        call.session.add(row)
        call.session.flush()
        call.emit("ModelPackageGroupCreated", group=spec.name)
        return row

    def describe_group(self, ctx: RequestContext, team: str, group: str) -> ModelPackageGroup:
        check_name(team, "team")
        check_name(group, "model_package_group_name")
        with (
            self.guard.begin(ctx, "DescribeModelPackageGroup", _group_target(team, group)) as call,
            call.transaction(write=False),
        ):
            return self._group_entity(call.session, self._must_group(call.session, team, group))

    def list_groups(self, ctx: RequestContext, team: str) -> list[ModelPackageGroup]:
        check_name(team, "team")
        with (
            self.guard.begin(ctx, "ListModelPackageGroups", _group_target(team, "*")) as call,
            call.transaction(write=False),
        ):
            rows = call.session.scalars(
                select(ModelPackageGroupRow)
                .where(ModelPackageGroupRow.team == team)
                .order_by(ModelPackageGroupRow.name)
            )
            return [self._group_entity(call.session, r) for r in rows]

    # -- versions -------------------------------------------------------------------------------

    def register(self, ctx: RequestContext, team: str, group: str, spec: RegisterSpec) -> ModelPackage:
        """``CreateModelPackage``: the group's next version, holding the model as it is now.

        The group is created if it does not exist (unless ``create_group`` is false). Registering
        straight as ``Approved`` or ``Rejected`` also needs ``UpdateModelPackageApproval``.
        """
        check_name(team, "team")
        check_name(group, "model_package_group_name")
        params = {"model_package_group_name": group, **spec.model_dump(mode="json")}
        with self.guard.begin(ctx, "CreateModelPackage", _package_target(team, group, "new"), params=params) as call:
            if spec.approval_status != "PendingManualApproval":
                registrant = Target("model-package", team, f"{group}/new", owner=ctx.principal.user)
                with self.guard.begin(ctx, "UpdateModelPackageApproval", registrant):
                    pass
            model = self._model(ctx, team, spec)
            with call.transaction():
                if (replayed := call.replay(ModelPackage)) is not None:
                    return replayed
                group_row = self._group(call.session, team, group)
                if group_row is None:
                    if not spec.create_group:
                        raise NotFound(
                            f"team {team} has no model package group named {group!r}",
                            field="model_package_group_name",
                        )
                    with self.guard.begin(ctx, "CreateModelPackageGroup", _group_target(team, group)):
                        group_row = self._add_group(call, team, ModelPackageGroupSpec(name=group))
                latest = call.session.scalar(
                    select(func.max(ModelPackageRow.version)).where(
                        ModelPackageRow.team == team, ModelPackageRow.group_name == group
                    )
                )
                version = int(latest or 0) + 1
                if version > MAX_VERSION:
                    raise Conflict(
                        f"group {group} has reached {MAX_VERSION} versions", field="model_package_group_name"
                    )
                now = utcnow()
                row = ModelPackageRow(
                    id=uuid.uuid4().hex,
                    team=team,
                    group_name=group,
                    version=version,
                    model=model,
                    sha256=model["sha256"],
                    description=spec.description,
                    approval_status=spec.approval_status,
                    created_by=ctx.principal.user,
                    created_at=now,
                    updated_at=now,
                )
                call.session.add(row)
                call.target = _package_target(team, group, version)
                reason = spec.description or "registered"
                self._add_change(call, row, spec.approval_status, reason, now)
                call.emit("ModelPackageRegistered", group=group, version=version, approval_status=spec.approval_status)
                entity = call.result(row.to_entity(self._history(call.session, row)))
        self._record_lineage(ctx, team, row, model, changes=1)
        return entity

    def _model(self, ctx: RequestContext, team: str, spec: RegisterSpec) -> dict[str, Any]:
        """The pins of the model to register: an existing model's, or a training job's archive's."""
        if spec.model_name:
            with self.db.read() as session:
                found = session.scalars(
                    select(ModelRow).where(ModelRow.team == team, ModelRow.name == spec.model_name)
                ).first()
                if found is None:
                    raise NotFound(f"team {team} has no model named {spec.model_name!r}", field="model_name")
                return {**found.spec, "model_name": found.name}
        source_job, head = self.serving.model_archive(ctx, team, "", spec.training_job)
        return {
            "model_name": "",
            "model_data": head.uri,
            "version_id": head.version_id,
            "sha256": head.sha256,
            "runtime": "xgboost",
            "source_job": source_job,
        }

    def describe(self, ctx: RequestContext, team: str, group: str, version: int) -> ModelPackage:
        """A version with its approval history."""
        check_name(team, "team")
        check_name(group, "model_package_group_name")
        with (
            self.guard.begin(ctx, "DescribeModelPackage", _package_target(team, group, version)) as call,
            call.transaction(write=False),
        ):
            row = self._must_package(call.session, team, group, version)
            return row.to_entity(self._history(call.session, row))

    def list_packages(
        self, ctx: RequestContext, team: str, group: str, approval_status: str | None = None
    ) -> list[ModelPackage]:
        """The group's versions, newest first (optionally only those with ``approval_status``)."""
        check_name(team, "team")
        check_name(group, "model_package_group_name")
        params = {"approval_status": approval_status} if approval_status else {}
        with (
            self.guard.begin(ctx, "ListModelPackages", _package_target(team, group, "*"), params=params) as call,
            call.transaction(write=False),
        ):
            self._must_group(call.session, team, group)
            query = select(ModelPackageRow).where(ModelPackageRow.team == team, ModelPackageRow.group_name == group)
            if approval_status:
                query = query.where(ModelPackageRow.approval_status == approval_status)
            rows = list(call.session.scalars(query.order_by(ModelPackageRow.version.desc())))
            return [r.to_entity(self._history(call.session, r)) for r in rows]

    def update_approval(
        self, ctx: RequestContext, team: str, group: str, version: int, spec: ApprovalSpec
    ) -> ModelPackage:
        """``UpdateModelPackageApproval``: approve or reject a version; the change, who made it, when
        and why are appended to its history. Setting the status it already has is a ``Conflict``."""
        check_name(team, "team")
        check_name(group, "model_package_group_name")
        target = _package_target(team, group, version)
        params = spec.model_dump(mode="json")
        with (
            self.guard.begin(ctx, "UpdateModelPackageApproval", target, params=params) as call,
            call.transaction(),
        ):
            row = self._must_package(call.session, team, group, version)
            # Decided again with the version's registrant as the resource's owner, so a team policy
            # can ask for four eyes: forbid ... when { resource.owner == principal.name }.
            call.check(Target("model-package", team, f"{group}/{version}", owner=row.created_by))
            if row.approval_status == spec.approval_status:
                raise Conflict(f"{group} version {version} is already {spec.approval_status}", field="approval_status")
            now = utcnow()
            row.approval_status, row.updated_at = spec.approval_status, now
            self._add_change(call, row, spec.approval_status, spec.reason, now)
            history = self._history(call.session, row)
            call.emit("ModelPackageApprovalChanged", group=group, version=version, approval_status=spec.approval_status)
            entity = row.to_entity(history)
        self._record_lineage(ctx, team, row, row.model, changes=len(history))
        return entity

    # -- helpers ----------------------------------------------------------------------------------

    def _add_change(self, call: Ticket, row: ModelPackageRow, status: str, reason: str, now: Any) -> None:
        grant = call.decision.grant
        call.session.add(
            ModelPackageApprovalRow(
                package_id=row.id,
                status=status,
                by_user=call.ctx.principal.user,
                role=grant.role if grant else "",
                reason=reason,
                at=now,
            )
        )
        call.session.flush()

    @staticmethod
    def _history(session: Session, row: ModelPackageRow) -> list[Any]:
        changes = session.scalars(
            select(ModelPackageApprovalRow)
            .where(ModelPackageApprovalRow.package_id == row.id)
            .order_by(ModelPackageApprovalRow.id)
        )
        return [c.to_entity() for c in changes]

    @staticmethod
    def _group(session: Session, team: str, name: str) -> ModelPackageGroupRow | None:
        return session.scalars(
            select(ModelPackageGroupRow).where(ModelPackageGroupRow.team == team, ModelPackageGroupRow.name == name)
        ).first()

    def _must_group(self, session: Session, team: str, name: str) -> ModelPackageGroupRow:
        row = self._group(session, team, name)
        if row is None:
            raise NotFound(f"team {team} has no model package group named {name!r}", field="model_package_group_name")
        return row

    @staticmethod
    def _must_package(session: Session, team: str, group: str, version: int) -> ModelPackageRow:
        if not isinstance(version, int) or not 1 <= version <= MAX_VERSION:
            raise InvalidInput(f"version must be a number from 1 to {MAX_VERSION}", field="version")
        row = session.scalars(
            select(ModelPackageRow).where(
                ModelPackageRow.team == team, ModelPackageRow.group_name == group, ModelPackageRow.version == version
            )
        ).first()
        if row is None:
            raise NotFound(f"model package group {group!r} of team {team} has no version {version}", field="version")
        return row

    @staticmethod
    def _group_entity(session: Session, row: ModelPackageGroupRow) -> ModelPackageGroup:
        versions = list(
            session.execute(
                select(ModelPackageRow.version, ModelPackageRow.approval_status).where(
                    ModelPackageRow.team == row.team, ModelPackageRow.group_name == row.name
                )
            )
        )
        approved = [v for v, status in versions if status == "Approved"]
        return ModelPackageGroup(
            srn=f"srn:strongroom:{row.team}:model-package-group/{row.name}",
            team=row.team,
            name=row.name,
            description=row.description,
            versions=len(versions),
            latest_version=max((v for v, _ in versions), default=0),
            latest_approved_version=max(approved, default=0),
            created_by=row.created_by,
            created_at=row.created_at,
        )

    def _record_lineage(
        self, ctx: RequestContext, team: str, row: ModelPackageRow, model: dict[str, Any], *, changes: int
    ) -> None:
        """model.tar.gz --ContributedTo--> package version --ContributedTo--> approval action (the
        archive is the one its training job produced, so the chain reaches the job and its data)."""
        if self.lineage is None:
            return
        try:
            artifact = self.lineage.record_artifact(
                ctx,
                team,
                model["model_data"],
                "Model",
                sha256=model["sha256"],
                version_id=model["version_id"],
                properties={"model": model.get("model_name", "")} if model.get("model_name") else None,
            )
            package = self.lineage.record_artifact(
                ctx,
                team,
                package_srn(team, row.group_name, row.version),
                "ModelPackage",
                properties={"group": row.group_name, "version": row.version},
            )
            self.lineage.associate(ctx, team, artifact.srn, package.srn, "ContributedTo")
            action = self.lineage.record_action(
                ctx,
                team,
                approval_action_name(row.id, changes),
                "Approval",
                {"status": row.approval_status, "by": ctx.principal.user, "version": row.version},
            )
            self.lineage.associate(ctx, team, package.srn, action.srn, "ContributedTo")
        except StrongroomError as exc:  # the version exists; a missing lineage edge is logged, not fatal
            log.warning("model package %s/%s: lineage not recorded: %s", row.group_name, row.version, exc.detail)
