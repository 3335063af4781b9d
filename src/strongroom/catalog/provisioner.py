"""The one interface a product implements: a ``Provisioner`` made of ordered ``Step``s.

The provisioning engine (``strongroom.catalog.engine``) drives the steps as a durable state
machine: before a step acts, the engine records that it is "creating"; after, what it created
(its ``ref``). So a platform that stops at any point finds, on restart, every step that may
have left something behind, and either continues (``create`` again: steps are idempotent) or
rolls back (``delete`` each recorded resource, newest first).

Steps act through the platform's services with the catalog's launch role
(``ProvisioningContext.ctx``), so everything they do is authorized and audited like any call.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from strongroom.catalog.models import Product
from strongroom.core.context import RequestContext


@dataclass(frozen=True)
class ProvisioningContext:
    """What a step knows: the provisioned product, its parameters, and the launch-role context."""

    ctx: RequestContext
    product_id: str
    team: str
    name: str
    owner: str
    version: str
    parameters: Mapping[str, str]
    resources: Mapping[str, Mapping[str, Any]]  # step name -> ref of what earlier steps created

    @property
    def srn(self) -> str:
        return f"srn:strongroom:{self.team}:provisioned-product/{self.name}"


class StepPending(Exception):
    """Raised by ``Step.ready`` (or ``update``) to say "not yet, ask again on the next round"."""


class Step(abc.ABC):
    """One resource-creating step of a product."""

    name: ClassVar[str]
    kind: ClassVar[str] = ""

    @abc.abstractmethod
    def create(self, pctx: ProvisioningContext) -> tuple[dict[str, Any], bool]:
        """Create the resource (or find the one an interrupted earlier attempt created).

        Returns ``(ref, adopted)``: ``ref`` is JSON that ``delete`` needs; ``adopted`` is True when
        the resource existed before this product and must survive its termination.
        """

    @abc.abstractmethod
    def delete(self, pctx: ProvisioningContext, ref: Mapping[str, Any]) -> None:
        """Remove what ``create`` made; succeed if it is already gone. ``ref`` may be empty when
        the platform stopped between recording the step and finishing it."""

    def ready(self, pctx: ProvisioningContext, ref: Mapping[str, Any]) -> None:
        """Raise ``StepPending`` until the resource is usable; raise any error if it failed."""
        return None

    def update(self, pctx: ProvisioningContext, ref: Mapping[str, Any], old: Mapping[str, str]) -> dict[str, Any]:
        """Bring the resource to ``pctx.parameters`` (``old`` were the previous ones); return the new ref."""
        return dict(ref)


class Provisioner(abc.ABC):
    """A product: its definition and the steps that provision it."""

    product: ClassVar[Product]
    # Roles the built-in platform portfolio grants this product to (in any team they hold the role in).
    platform_grants: ClassVar[tuple[str, ...]] = ()

    @abc.abstractmethod
    def steps(self, version: str) -> Sequence[Step]:
        """The ordered steps of ``version``."""

    def name_of(self, parameters: Mapping[str, str]) -> tuple[str, str]:
        """``(team, provisioned product name)`` the parameters launch into; default: TeamName and Name."""
        return parameters["TeamName"], parameters.get("Name") or parameters["TeamName"]

    def check_launch(self, ctx: RequestContext, team: str, parameters: Mapping[str, str]) -> dict[str, str]:
        """Launch-time checks beyond the parameter constraints (e.g. that the owner is a team member);
        may fill parameters that depend on the caller. Raises ``InvalidInput``/``Forbidden``."""
        return dict(parameters)

    def check_update(self, old: Mapping[str, str], new: Mapping[str, str]) -> None:
        """Raise ``InvalidInput`` if an update changes a parameter that cannot change."""
        return None

    def check_terminate(self, ctx: RequestContext, team: str, name: str) -> None:
        """Raise ``Conflict`` if terminating now would break something (e.g. notebooks still exist)."""
        return None

    def outputs(self, pctx: ProvisioningContext) -> dict[str, str]:
        """Outputs shown once AVAILABLE (e.g. ``NotebookUrl``)."""
        return {}
