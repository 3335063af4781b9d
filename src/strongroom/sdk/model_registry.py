"""The model registry from Python: package groups, versions and their approval.

As a data scientist::

    package = Model(name="xgb-train-1-model", training_job="xgb-train-1", session=s, team="risk").register(
        model_package_group_name="credit-default", description="first cut")
    package.approval_status          # 'PendingManualApproval'

As an MLOps engineer::

    s.model_registry.approve("risk", "credit-default", 1, reason="AUC 0.78 on the hold-out set")
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from strongroom.sdk.paths import q
from strongroom.sdk.resources import _Client
from strongroom.serving.registry_models import ApprovalStatus, ModelPackageGroup
from strongroom.serving.registry_models import ModelPackage as ModelPackageInfo

if TYPE_CHECKING:
    from strongroom.sdk.session import Session


def _groups(team: str) -> str:
    return f"/api/v1/teams/{q(team)}/model-package-groups"


class ModelRegistry(_Client):
    """``session.model_registry``."""

    def create_group(
        self, team: str, name: str, description: str = "", *, idempotency_key: str | None = None
    ) -> ModelPackageGroup:
        body = {"name": name, "description": description}
        return self._s.call("POST", _groups(team), ModelPackageGroup, json_body=body, idempotency_key=idempotency_key)

    def describe_group(self, team: str, name: str) -> ModelPackageGroup:
        return self._s.call("GET", f"{_groups(team)}/{q(name)}", ModelPackageGroup)

    def list_groups(self, team: str) -> list[ModelPackageGroup]:
        return self._pages(_groups(team), ModelPackageGroup)

    def register(
        self,
        team: str,
        model_package_group_name: str,
        *,
        model_name: str = "",
        training_job: str = "",
        approval_status: ApprovalStatus = "PendingManualApproval",
        description: str = "",
        create_group: bool = True,
        idempotency_key: str | None = None,
    ) -> ModelPackageInfo:
        """Register the group's next version from ``model_name`` or ``training_job``'s model."""
        body = {
            "model_name": model_name,
            "training_job": training_job,
            "approval_status": approval_status,
            "description": description,
            "create_group": create_group,
        }
        return self._s.call(
            "POST",
            f"{_groups(team)}/{q(model_package_group_name)}/versions",
            ModelPackageInfo,
            json_body=body,
            idempotency_key=idempotency_key,
        )

    def describe(self, team: str, model_package_group_name: str, version: int) -> ModelPackageInfo:
        """A version with its approval history (who, when, why)."""
        path = f"{_groups(team)}/{q(model_package_group_name)}/versions/{int(version)}"
        return self._s.call("GET", path, ModelPackageInfo)

    def versions(
        self, team: str, model_package_group_name: str, approval_status: ApprovalStatus | None = None
    ) -> list[ModelPackageInfo]:
        """The group's versions, newest first."""
        params = {"approval_status": approval_status} if approval_status else None
        return self._pages(f"{_groups(team)}/{q(model_package_group_name)}/versions", ModelPackageInfo, params)

    def update_approval(
        self, team: str, model_package_group_name: str, version: int, approval_status: ApprovalStatus, reason: str
    ) -> ModelPackageInfo:
        path = f"{_groups(team)}/{q(model_package_group_name)}/versions/{int(version)}/approval"
        body = {"approval_status": approval_status, "reason": reason}
        return self._s.call("PUT", path, ModelPackageInfo, json_body=body)

    def approve(self, team: str, model_package_group_name: str, version: int, reason: str) -> ModelPackageInfo:
        """Approve a version (MLOpsEngineer); ``reason`` is kept in its history."""
        return self.update_approval(team, model_package_group_name, version, "Approved", reason)

    def reject(self, team: str, model_package_group_name: str, version: int, reason: str) -> ModelPackageInfo:
        """Reject a version (MLOpsEngineer); ``reason`` is kept in its history."""
        return self.update_approval(team, model_package_group_name, version, "Rejected", reason)


class ModelPackage:
    """One registered version, as ``Model.register`` returns it."""

    def __init__(self, info: ModelPackageInfo, *, session: Session) -> None:
        self.info = info
        self.session = session

    @property
    def model_package_group_name(self) -> str:
        return self.info.group

    @property
    def version(self) -> int:
        return self.info.version

    @property
    def approval_status(self) -> ApprovalStatus:
        return self.info.approval_status

    def refresh(self) -> ModelPackage:
        self.info = self.session.model_registry.describe(self.info.team, self.info.group, self.info.version)
        return self

    def approve(self, reason: str) -> ModelPackage:
        self.info = self.session.model_registry.approve(self.info.team, self.info.group, self.info.version, reason)
        return self

    def reject(self, reason: str) -> ModelPackage:
        self.info = self.session.model_registry.reject(self.info.team, self.info.group, self.info.version, reason)
        return self

    def __repr__(self) -> str:
        return f"ModelPackage({self.info.group} v{self.info.version}, {self.info.approval_status})"
