"""The catalog product "Team Environment": everything a data-science team needs, in one launch.

Steps (each through the owning service, with the catalog's launch role, so each is authorized
and audited): the team; its customer-managed key (alias ``default``); a data bucket and a model
bucket encrypted by default with that key (``<team>-data``, ``<team>-models``; every object is
versioned); the team git repository (``<team>``); the team portfolio granting the Notebook
product to the team's DataScientists; and the team policy that keeps the two buckets from being
deleted except by terminating the environment.

Terminate removes them newest first. It stops (ERROR, with the reason) rather than destroy data:
a bucket that still holds objects is not deleted. The key is scheduled for deletion with the
platform's default waiting period (it can be cancelled until then). The team itself is kept:
teams are identities that the audit trail refers to.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import select

from strongroom.catalog.models import ParameterSpec, Product, ProductVersion
from strongroom.catalog.provisioner import Provisioner, ProvisioningContext, Step
from strongroom.catalog.service import LAUNCH_ROLE_USER, CatalogService
from strongroom.core.context import RequestContext
from strongroom.core.errors import Conflict, Forbidden, NotFound
from strongroom.db.engine import Database
from strongroom.gitrepo.service import GitService
from strongroom.guard import Guard
from strongroom.identity.db import TeamRow
from strongroom.identity.service import IdentityService, team_target
from strongroom.kms.service import KmsService
from strongroom.storage.service import StorageService
from strongroom.team_policies.service import PolicyService

TEAM_PATTERN = r"[a-z0-9]([a-z0-9-]{0,48}[a-z0-9])?"
TEAM_ENVIRONMENT = Product(
    name="team-environment",
    display_name="Team Environment",
    description="A team with its customer-managed key, encrypted data and model buckets, git repository, "
    "notebook portfolio and policies",
    versions=[
        ProductVersion(
            name="v1",
            parameters=[
                ParameterSpec(
                    name="TeamName",
                    description="Name of the team",
                    allowed_pattern=TEAM_PATTERN,
                    constraint_description="1-50 lowercase letters, digits and '-', not ending with '-'",
                ),
                ParameterSpec(name="Description", description="What the team works on", default="", max_length=1024),
                ParameterSpec(
                    name="KeyRotationDays",
                    type="Number",
                    default="365",
                    min_value=0,
                    max_value=3650,
                    allowed_pattern=r"[0-9]{1,4}",
                    description="Rotate the team key every N days (0 = no automatic rotation)",
                ),
            ],
        )
    ],
)
NOTEBOOK_PORTFOLIO = "notebooks"
POLICY_NAME = "team-environment"


def data_bucket(team: str) -> str:
    return f"{team}-data"


def model_bucket(team: str) -> str:
    return f"{team}-models"


def team_policy(team: str) -> str:
    return (
        '@id("keep-team-buckets")\n'
        '@message("the team data and model buckets are removed only by terminating the Team Environment")\n'
        'forbid (principal, action == Action::"DeleteBucket", resource)\n'
        f'when {{ ["{data_bucket(team)}", "{model_bucket(team)}"].contains(resource.name) && '
        'context.role != "CatalogProvisioner" };\n'
    )


class _TeamStep(Step):
    name = "team"
    kind = "team"

    def __init__(self, identity: IdentityService, db: Database) -> None:
        self.identity, self.db = identity, db

    def create(self, pctx: ProvisioningContext) -> tuple[dict[str, Any], bool]:
        try:
            self.identity.create_team(pctx.ctx, pctx.team, pctx.parameters.get("Description", ""))
        except Conflict:
            with self.db.read() as session:
                row = session.get(TeamRow, pctx.team)
            # made by an interrupted earlier attempt of this launch, or a team that existed before
            return {"team": pctx.team}, row is None or row.created_by != LAUNCH_ROLE_USER
        return {"team": pctx.team}, False

    def delete(self, pctx: ProvisioningContext, ref: Mapping[str, Any]) -> None:
        return None  # teams are identities the audit trail refers to: kept (see module docstring)


class _KeyStep(Step):
    name = "key"
    kind = "key"

    def __init__(self, kms: KmsService) -> None:
        self.kms = kms

    def create(self, pctx: ProvisioningContext) -> tuple[dict[str, Any], bool]:
        days = int(float(pctx.parameters.get("KeyRotationDays", "365"))) or None
        try:
            key = self.kms.create_key(
                pctx.ctx, pctx.team, "default", f"customer-managed key of team {pctx.team}", rotation_period_days=days
            )
            return {"key_id": key.id}, False
        except Conflict:
            key_id = self.kms.resolve_id(pctx.team, "default")
            return {"key_id": key_id}, False

    def delete(self, pctx: ProvisioningContext, ref: Mapping[str, Any]) -> None:
        key_id = ref.get("key_id") or self.kms.resolve_id(pctx.team, "default")
        if not key_id:
            return
        try:
            self.kms.schedule_deletion(pctx.ctx, pctx.team, str(key_id))
        except (Conflict, NotFound):
            return  # already pending deletion, or gone


class _BucketStep(Step):
    kind = "bucket"

    def __init__(self, storage: StorageService, step_name: str, bucket: Callable[[str], str], what: str) -> None:
        self.storage, self._bucket, self.what = storage, bucket, what
        self.name = step_name  # type: ignore[misc]

    def create(self, pctx: ProvisioningContext) -> tuple[dict[str, Any], bool]:
        name = self._bucket(pctx.team)
        key_id = str(pctx.resources.get("key", {}).get("key_id") or "default")
        try:
            self.storage.create_bucket(
                pctx.ctx, pctx.team, name, key=key_id, description=f"team {pctx.team} {self.what}"
            )
        except Conflict:
            existing = self.storage._bucket_row(name)
            if existing is None or existing.team != pctx.team:
                raise
            return {"bucket": name}, existing.created_by != LAUNCH_ROLE_USER
        return {"bucket": name}, False

    def delete(self, pctx: ProvisioningContext, ref: Mapping[str, Any]) -> None:
        try:
            self.storage.delete_bucket(pctx.ctx, str(ref.get("bucket") or self._bucket(pctx.team)))
        except NotFound:
            return


class _RepositoryStep(Step):
    name = "repository"
    kind = "repository"

    def __init__(self, git: GitService) -> None:
        self.git = git

    def create(self, pctx: ProvisioningContext) -> tuple[dict[str, Any], bool]:
        try:
            self.git.create(pctx.ctx, pctx.team, pctx.team, f"team {pctx.team} code and notebooks")
        except Conflict:
            return {"repository": pctx.team}, False
        return {"repository": pctx.team}, False

    def delete(self, pctx: ProvisioningContext, ref: Mapping[str, Any]) -> None:
        try:
            self.git.delete(pctx.ctx, pctx.team, str(ref.get("repository") or pctx.team))
        except NotFound:
            return


class _PortfolioStep(Step):
    name = "portfolio"
    kind = "portfolio"

    def __init__(self, catalog: Callable[[], CatalogService]) -> None:
        self.catalog = catalog

    def create(self, pctx: ProvisioningContext) -> tuple[dict[str, Any], bool]:
        with contextlib.suppress(Conflict):
            self.catalog().create_portfolio(
                pctx.ctx,
                pctx.team,
                NOTEBOOK_PORTFOLIO,
                f"Notebooks for team {pctx.team}",
                products=["notebook"],
                grants=["DataScientist"],
            )
        return {"portfolio": NOTEBOOK_PORTFOLIO}, False

    def delete(self, pctx: ProvisioningContext, ref: Mapping[str, Any]) -> None:
        try:
            self.catalog().delete_portfolio(pctx.ctx, pctx.team, NOTEBOOK_PORTFOLIO)
        except NotFound:
            return


class _PolicyStep(Step):
    name = "policy"
    kind = "policy"

    def __init__(self, policies: PolicyService) -> None:
        self.policies = policies

    def create(self, pctx: ProvisioningContext) -> tuple[dict[str, Any], bool]:
        with contextlib.suppress(Conflict):
            self.policies.attach(
                pctx.ctx,
                pctx.team,
                POLICY_NAME,
                team_policy(pctx.team),
                "keeps the team's buckets until the Team Environment is terminated",
            )
        return {"policy": POLICY_NAME}, False

    def delete(self, pctx: ProvisioningContext, ref: Mapping[str, Any]) -> None:
        try:
            self.policies.detach(pctx.ctx, pctx.team, POLICY_NAME)
        except NotFound:
            return


class TeamEnvironmentProvisioner(Provisioner):
    product = TEAM_ENVIRONMENT
    platform_grants = ("PlatformAdmin", "DataScienceAdmin")

    def __init__(
        self,
        db: Database,
        guard: Guard,
        identity: IdentityService,
        kms: KmsService,
        storage: StorageService,
        git: GitService,
        policies: PolicyService,
        catalog: Callable[[], CatalogService],
    ) -> None:
        self.db, self.guard = db, guard
        self._steps: list[Step] = [
            _TeamStep(identity, db),
            _KeyStep(kms),
            _BucketStep(storage, "data-bucket", data_bucket, "data"),
            _BucketStep(storage, "model-bucket", model_bucket, "models"),
            _RepositoryStep(git),
            _PortfolioStep(catalog),
            _PolicyStep(policies),
        ]
        self._catalog = catalog

    def steps(self, version: str) -> Sequence[Step]:
        return self._steps

    def name_of(self, parameters: Mapping[str, str]) -> tuple[str, str]:
        return parameters["TeamName"], "team-environment"

    def check_launch(self, ctx: RequestContext, team: str, parameters: Mapping[str, str]) -> dict[str, str]:
        with self.db.read() as session:
            exists = session.get(TeamRow, team) is not None
        if not exists:
            try:
                with self.guard.begin(ctx, "CreateTeam", team_target(team)):
                    pass
            except Forbidden:
                raise Forbidden(
                    f"team {team} does not exist, and only a PlatformAdmin may create a team; "
                    "ask a PlatformAdmin to launch the Team Environment",
                    field="parameters.TeamName",
                ) from None
        return dict(parameters)

    def check_terminate(self, ctx: RequestContext, team: str, name: str) -> None:
        from strongroom.catalog.db import ProvisionedProductRow
        from strongroom.catalog.models import Status

        with self.db.read() as session:
            others = session.scalars(
                select(ProvisionedProductRow.name).where(
                    ProvisionedProductRow.team == team,
                    ProvisionedProductRow.live_name.is_not(None),
                    ProvisionedProductRow.product != TEAM_ENVIRONMENT.name,
                    ProvisionedProductRow.status != Status.TERMINATED.value,
                )
            ).all()
        if others:
            raise Conflict(
                f"team {team} still has provisioned products ({', '.join(sorted(others))}); terminate them first",
                field="name",
            )

    def outputs(self, pctx: ProvisioningContext) -> dict[str, str]:
        key = pctx.resources.get("key", {})
        return {
            "TeamName": pctx.team,
            "KmsKeyId": str(key.get("key_id", "")),
            "DataBucket": f"sr://{data_bucket(pctx.team)}",
            "ModelBucket": f"sr://{model_bucket(pctx.team)}",
            "GitRepository": f"/git/{pctx.team}/{pctx.team}.git",
            "NotebookPortfolio": NOTEBOOK_PORTFOLIO,
        }
