"""The catalog product "Notebook": JupyterLab in a sandbox for one DataScientist (or MLOpsEngineer) of a team."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select

from strongroom.catalog.models import ParameterSpec, Product, ProductVersion
from strongroom.catalog.provisioner import Provisioner, ProvisioningContext, Step, StepPending
from strongroom.core.context import Grant, RequestContext
from strongroom.core.errors import Forbidden, InvalidInput, NotFound, StrongroomError
from strongroom.core.names import NAME_PATTERN
from strongroom.db.engine import Database
from strongroom.identity.db import MembershipRow
from strongroom.notebooks.models import SIZES, NotebookStatus
from strongroom.notebooks.service import RUNTIMES, NotebookService

NAME_RULE = "1-63 lowercase letters, digits and '-', starting with a letter or digit"
PARAMETERS = [
    ParameterSpec(
        name="TeamName",
        description="The team the notebook belongs to",
        allowed_pattern=NAME_PATTERN.pattern,
        constraint_description=NAME_RULE,
    ),
    ParameterSpec(
        name="NotebookName",
        description="Name of the notebook in the team",
        allowed_pattern=NAME_PATTERN.pattern,
        constraint_description=NAME_RULE,
    ),
    ParameterSpec(
        name="Owner",
        description="The team member the notebook acts for (default: you)",
        default="",
        allowed_pattern=f"|{NAME_PATTERN.pattern}",
        constraint_description="a user name",
    ),
    ParameterSpec(
        name="InstanceSize",
        description="CPU and memory limits: " + ", ".join(s.label for s in SIZES.values()),
        default="small",
        allowed_values=list(SIZES),
    ),
    ParameterSpec(
        name="VolumeSizeGiB",
        type="Number",
        description="Size of the notebook's home volume in GiB",
        default="5",
        min_value=1,
        max_value=1024,
        allowed_pattern=r"[0-9]{1,4}",
        constraint_description="a whole number of GiB",
    ),
    ParameterSpec(
        name="OnCreateScript",
        description="bash script run once, inside the sandbox, when the volume is new",
        default="",
        max_length=16384,
    ),
    ParameterSpec(
        name="OnStartScript",
        description="bash script run inside the sandbox on every start",
        default="",
        max_length=16384,
    ),
    ParameterSpec(
        name="ExecutionRole",
        description="The role the notebook's kernels act with: the owner's DataScientist or MLOpsEngineer "
        "role in the team, or (an operator's own notebook) the owner's PlatformAdmin role",
        default="DataScientist",
        allowed_values=["DataScientist", "MLOpsEngineer", "PlatformAdmin"],
    ),
    ParameterSpec(
        name="Runtime",
        description="The notebook's Python environment",
        default=RUNTIMES[0],
        allowed_values=list(RUNTIMES),
    ),
]
NOTEBOOK = Product(
    name="notebook",
    display_name="Notebook",
    description="JupyterLab with no internet access, the team's rights only, an encrypted team bucket "
    "and the team's git repository, reachable only through the platform",
    versions=[ProductVersion(name="v1", description="JupyterLab 4 on the platform's Python", parameters=PARAMETERS)],
)
IMMUTABLE = ("TeamName", "NotebookName", "Owner", "ExecutionRole")


class NotebookStep(Step):
    name = "notebook"
    kind = "notebook"

    def __init__(self, notebooks: NotebookService) -> None:
        self.notebooks = notebooks

    def create(self, pctx: ProvisioningContext) -> tuple[dict[str, Any], bool]:
        p = pctx.parameters
        notebook = self.notebooks.create(
            pctx.ctx,
            pctx.team,
            pctx.name,
            owner=pctx.owner,
            size=p["InstanceSize"],
            volume_gib=int(float(p["VolumeSizeGiB"])),
            on_create=p["OnCreateScript"],
            on_start=p["OnStartScript"],
            runtime=p["Runtime"],
            provisioned_product_id=pctx.product_id,
            role=p.get("ExecutionRole") or "DataScientist",
        )
        return {"notebook_id": notebook.id, "team": notebook.team, "name": notebook.name}, False

    def ready(self, pctx: ProvisioningContext, ref: Mapping[str, Any]) -> None:
        notebook = self.notebooks.status_of(str(ref.get("notebook_id", "")))
        if notebook is None:
            raise NotFound("the notebook disappeared")
        if notebook.status == NotebookStatus.FAILED:
            raise StrongroomError(notebook.reason or "the notebook failed to start")
        if notebook.status in (NotebookStatus.STOPPED, NotebookStatus.STOPPING) and notebook.desired == "stopped":
            return  # stopped on purpose: still provisioned
        if notebook.status != NotebookStatus.IN_SERVICE:
            raise StepPending

    def delete(self, pctx: ProvisioningContext, ref: Mapping[str, Any]) -> None:
        notebook_id = str(ref.get("notebook_id", "")) or self.notebooks.notebook_id(pctx.team, pctx.name)
        if not notebook_id:
            return
        current = self.notebooks.status_of(notebook_id)
        if current is None or current.status == NotebookStatus.DELETED:
            return
        if current.desired != "deleted":
            try:
                self.notebooks.delete(pctx.ctx, pctx.team, pctx.name)
            except NotFound:
                return
        if not self.notebooks.is_gone(pctx.team, pctx.name, notebook_id):
            raise StepPending

    def update(self, pctx: ProvisioningContext, ref: Mapping[str, Any], old: Mapping[str, str]) -> dict[str, Any]:
        p = pctx.parameters
        self.notebooks.reconfigure(
            pctx.ctx,
            pctx.team,
            pctx.name,
            size=p["InstanceSize"],
            volume_gib=int(float(p["VolumeSizeGiB"])),
            on_start=p["OnStartScript"],
            runtime=p["Runtime"],
        )
        return dict(ref)


class NotebookProvisioner(Provisioner):
    product = NOTEBOOK
    # Operators may launch their own notebook (ExecutionRole=PlatformAdmin) in any team.
    platform_grants = ("PlatformAdmin",)

    def __init__(self, db: Database, notebooks: NotebookService) -> None:
        self.db = db
        self.notebooks = notebooks

    def steps(self, version: str) -> Sequence[Step]:
        return [NotebookStep(self.notebooks)]

    def name_of(self, parameters: Mapping[str, str]) -> tuple[str, str]:
        return parameters["TeamName"], parameters["NotebookName"]

    def check_launch(self, ctx: RequestContext, team: str, parameters: Mapping[str, str]) -> dict[str, str]:
        resolved = dict(parameters)
        owner = resolved.get("Owner") or ctx.principal.user
        resolved["Owner"] = owner
        if resolved.get("ExecutionRole") == "PlatformAdmin":
            if owner != ctx.principal.user or Grant("PlatformAdmin") not in ctx.principal.grants:
                raise Forbidden(
                    "a notebook acting as PlatformAdmin is launched by a PlatformAdmin for themselves",
                    field="parameters.ExecutionRole",
                )
            return resolved
        admin = any(g.role == "DataScienceAdmin" and g.team == team for g in ctx.principal.grants)
        if owner != ctx.principal.user and not admin:
            raise Forbidden(
                "only the team's DataScienceAdmin launches notebooks for someone else", field="parameters.Owner"
            )
        role = resolved.get("ExecutionRole") or "DataScientist"
        with self.db.read() as session:
            held = session.scalars(
                select(MembershipRow.id).where(
                    MembershipRow.user == owner, MembershipRow.team == team, MembershipRow.role == role
                )
            ).first()
        if held is None:
            raise InvalidInput(
                f"{owner} is not a {role} of team {team}: a notebook acts with its owner's {role} role",
                field="parameters.Owner",
            )
        return resolved

    def check_update(self, old: Mapping[str, str], new: Mapping[str, str]) -> None:
        for name in IMMUTABLE:
            if old.get(name) != new.get(name):
                raise InvalidInput(f"{name} cannot change; launch a new notebook instead", field=f"parameters.{name}")

    def outputs(self, pctx: ProvisioningContext) -> dict[str, str]:
        return {"NotebookUrl": f"/notebooks/{pctx.team}/{pctx.name}/", "NotebookName": pctx.name}
