"""Model registry rows: package groups, versions and their append-only approval history."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from strongroom.db.base import Base, UtcDateTime
from strongroom.serving.registry_models import ApprovalChange, ModelPackage


class ModelPackageGroupRow(Base):
    __tablename__ = "serving_model_package_groups"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    team: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())

    __table_args__ = (UniqueConstraint("team", "name"),)


class ModelPackageRow(Base):
    __tablename__ = "serving_model_packages"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    team: Mapped[str] = mapped_column(String(64))
    group_name: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    # The model as registered (archive, object version, content hash, runtime): what a
    # deployment's model must match, pin for pin, to count as this version.
    model: Mapped[dict[str, Any]] = mapped_column(JSON)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    description: Mapped[str] = mapped_column(Text)
    approval_status: Mapped[str] = mapped_column(String(32))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())

    __table_args__ = (UniqueConstraint("team", "group_name", "version"),)

    def to_entity(self, history: list[ApprovalChange]) -> ModelPackage:
        return ModelPackage(
            srn=f"srn:strongroom:{self.team}:model-package/{self.group_name}/{self.version}",
            team=self.team,
            group=self.group_name,
            version=self.version,
            model_name=self.model.get("model_name", ""),
            model_data=self.model["model_data"],
            version_id=self.model["version_id"],
            sha256=self.sha256,
            runtime=self.model["runtime"],
            source_job=self.model.get("source_job", ""),
            description=self.description,
            approval_status=self.approval_status,  # type: ignore[arg-type]
            approval_history=history,
            created_by=self.created_by,
            created_at=self.created_at,
            updated_at=self.updated_at,
        )


class ModelPackageApprovalRow(Base):
    """One approval change. Rows are only ever added: the history of who decided what, when, why."""

    __tablename__ = "serving_model_package_approvals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    package_id: Mapped[str] = mapped_column(String(32), index=True)
    status: Mapped[str] = mapped_column(String(32))
    by_user: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text)
    at: Mapped[dt.datetime] = mapped_column(UtcDateTime())

    def to_entity(self) -> ApprovalChange:
        return ApprovalChange(
            status=self.status,  # type: ignore[arg-type]
            by=self.by_user,
            role=self.role,
            at=self.at,
            reason=self.reason,
        )
