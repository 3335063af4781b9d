"""Model registry entities and the specs users send: package groups, versions, approvals."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field, model_validator

from strongroom.core.names import check_name
from strongroom.serving.models import Strict

ApprovalStatus = Literal["PendingManualApproval", "Approved", "Rejected"]
APPROVAL_STATUSES: tuple[str, ...] = ("PendingManualApproval", "Approved", "Rejected")
# What a deployment's policy context says of a model that no package version holds.
UNREGISTERED = "Unregistered"
MAX_REASON = 1024


class ModelPackageGroupSpec(Strict):
    """``CreateModelPackageGroup``: a named collection of versions of one model (e.g. ``credit-default``)."""

    name: str
    description: str = Field(default="", max_length=MAX_REASON)

    @model_validator(mode="after")
    def _check(self) -> ModelPackageGroupSpec:
        check_name(self.name, "name")
        return self


class ModelPackageGroup(BaseModel):
    srn: str
    team: str
    name: str
    description: str = ""
    versions: int = 0
    latest_version: int = 0
    latest_approved_version: int = 0
    created_by: str
    created_at: dt.datetime


class RegisterSpec(Strict):
    """``CreateModelPackage``: register a new version of a group from a model or a training job's output.

    Give exactly one of ``model_name`` (an existing model of the team) or ``training_job`` (its
    ``model.tar.gz``, served by the built-in XGBoost runtime). A version registered ``Approved``
    needs the right to approve (MLOpsEngineer).
    """

    model_name: str = ""
    training_job: str = ""
    approval_status: ApprovalStatus = "PendingManualApproval"
    description: str = Field(default="", max_length=MAX_REASON)
    create_group: bool = True

    @model_validator(mode="after")
    def _check(self) -> RegisterSpec:
        if bool(self.model_name) == bool(self.training_job):
            raise ValueError("give exactly one of model_name (a model of your team) or training_job")
        if self.model_name:
            check_name(self.model_name, "model_name")
        if self.training_job:
            check_name(self.training_job, "training_job")
        return self


class ApprovalSpec(Strict):
    """``UpdateModelPackageApproval``: the new status and why (the reason is kept in the history)."""

    approval_status: ApprovalStatus
    reason: str = Field(min_length=1, max_length=MAX_REASON)


class ApprovalChange(BaseModel):
    """One entry of a version's append-only approval history."""

    status: ApprovalStatus
    by: str
    role: str
    at: dt.datetime
    reason: str = ""


class ModelPackage(BaseModel):
    srn: str
    team: str
    group: str
    version: int
    model_name: str = ""
    model_data: str
    version_id: str
    sha256: str
    runtime: str
    source_job: str = ""
    description: str = ""
    approval_status: ApprovalStatus
    approval_history: list[ApprovalChange] = Field(default_factory=list)
    created_by: str
    created_at: dt.datetime
    updated_at: dt.datetime
