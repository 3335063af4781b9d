"""The model registry: package groups, versions and their approval."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from strongroom.api.deps import context, platform
from strongroom.api.pagination import Page
from strongroom.core.context import RequestContext
from strongroom.platform import Platform
from strongroom.serving.registry_models import (
    ApprovalSpec,
    ApprovalStatus,
    ModelPackage,
    ModelPackageGroup,
    ModelPackageGroupSpec,
    RegisterSpec,
)

router = APIRouter(prefix="/api/v1", tags=["model registry"])
Ctx = Annotated[RequestContext, Depends(context)]
P = Annotated[Platform, Depends(platform)]
GROUPS = "/teams/{team}/model-package-groups"


@router.post(GROUPS, status_code=201)
def create_group(team: str, spec: ModelPackageGroupSpec, ctx: Ctx, p: P) -> ModelPackageGroup:
    return p.model_registry.create_group(ctx, team, spec)


@router.get(GROUPS)
def list_groups(team: str, ctx: Ctx, p: P) -> Page[ModelPackageGroup]:
    return Page[ModelPackageGroup](items=p.model_registry.list_groups(ctx, team))


@router.get(GROUPS + "/{group}")
def describe_group(team: str, group: str, ctx: Ctx, p: P) -> ModelPackageGroup:
    return p.model_registry.describe_group(ctx, team, group)


@router.post(GROUPS + "/{group}/versions", status_code=201)
def register(team: str, group: str, spec: RegisterSpec, ctx: Ctx, p: P) -> ModelPackage:
    return p.model_registry.register(ctx, team, group, spec)


@router.get(GROUPS + "/{group}/versions")
def list_packages(
    team: str, group: str, ctx: Ctx, p: P, approval_status: ApprovalStatus | None = Query(default=None)
) -> Page[ModelPackage]:
    return Page[ModelPackage](items=p.model_registry.list_packages(ctx, team, group, approval_status))


@router.get(GROUPS + "/{group}/versions/{version}")
def describe_package(team: str, group: str, version: int, ctx: Ctx, p: P) -> ModelPackage:
    return p.model_registry.describe(ctx, team, group, version)


@router.put(GROUPS + "/{group}/versions/{version}/approval")
def update_approval(team: str, group: str, version: int, spec: ApprovalSpec, ctx: Ctx, p: P) -> ModelPackage:
    return p.model_registry.update_approval(ctx, team, group, version, spec)
