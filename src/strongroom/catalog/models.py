"""Catalog entities: products, their versions and typed parameters, portfolios, provisioned products."""

from __future__ import annotations

import datetime as dt
import enum
import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from strongroom.core.errors import InvalidInput

ParameterType = Literal["String", "Number"]


class ParameterSpec(BaseModel):
    """One typed launch parameter of a product version (as the managed catalog's template parameters)."""

    name: str
    type: ParameterType = "String"
    description: str = ""
    default: str | None = None
    allowed_values: list[str] = Field(default_factory=list)
    allowed_pattern: str = ""
    constraint_description: str = ""
    min_value: float | None = None
    max_value: float | None = None
    max_length: int = 4096

    @model_validator(mode="after")
    def _self_consistent(self) -> ParameterSpec:
        if self.default is not None and (self.allowed_values or self.allowed_pattern):
            self.check(self.default)
        return self

    def check(self, value: object) -> str:
        """Return ``value`` as the parameter's string form, or raise ``InvalidInput`` naming the parameter."""
        field = f"parameters.{self.name}"
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise InvalidInput(f"parameter {self.name} must be a string or a number", field=field)
        text = str(value)
        if len(text) > self.max_length:
            raise InvalidInput(f"parameter {self.name} is longer than {self.max_length} characters", field=field)
        hint = f" ({self.constraint_description})" if self.constraint_description else ""
        if self.allowed_values and text not in self.allowed_values:
            raise InvalidInput(
                f"parameter {self.name}={text!r} is not allowed; choose one of {', '.join(self.allowed_values)}{hint}",
                field=field,
            )
        if self.allowed_pattern and not re.fullmatch(self.allowed_pattern, text):
            raise InvalidInput(
                f"parameter {self.name}={text!r} does not match the pattern {self.allowed_pattern}{hint}", field=field
            )
        if self.type == "Number":
            try:
                number = float(text)
            except ValueError:
                raise InvalidInput(f"parameter {self.name}={text!r} is not a number", field=field) from None
            if self.min_value is not None and number < self.min_value:
                raise InvalidInput(f"parameter {self.name} must be at least {self.min_value:g}{hint}", field=field)
            if self.max_value is not None and number > self.max_value:
                raise InvalidInput(f"parameter {self.name} must be at most {self.max_value:g}{hint}", field=field)
        return text


class ProductVersion(BaseModel):
    """A version of a product: its parameters (the provisioner implements it)."""

    name: str
    description: str = ""
    parameters: list[ParameterSpec] = Field(default_factory=list)
    active: bool = True

    def resolve(self, given: Mapping[str, object], previous: Mapping[str, str] | None = None) -> dict[str, str]:
        """Check ``given`` against the parameters; fill defaults (or ``previous`` values, for updates).

        Raises:
            InvalidInput: an unknown parameter, a missing required one, or a value its constraints refuse.
        """
        known = {p.name for p in self.parameters}
        for name in given:
            if name not in known:
                raise InvalidInput(
                    f"product version {self.name} has no parameter {name!r}; parameters: {', '.join(sorted(known))}",
                    field=f"parameters.{name}",
                )
        resolved: dict[str, str] = {}
        for spec in self.parameters:
            if spec.name in given:
                resolved[spec.name] = spec.check(given[spec.name])
            elif previous is not None and spec.name in previous:
                resolved[spec.name] = spec.check(previous[spec.name])
            elif spec.default is not None:
                resolved[spec.name] = spec.default
            else:
                raise InvalidInput(
                    f"parameter {spec.name} is required: {spec.description}", field=f"parameters.{spec.name}"
                )
        return resolved


class Product(BaseModel):
    """A product in the catalog. Products are implemented by provisioners shipped with the platform."""

    name: str
    display_name: str
    description: str = ""
    owner: str = "Strongroom"
    versions: list[ProductVersion]
    srn: str = ""

    def version(self, name: str | None) -> ProductVersion:
        """The named version (default: the newest active one)."""
        if name is None:
            active = [v for v in self.versions if v.active]
            if not active:
                raise InvalidInput(f"product {self.name} has no active version", field="version")
            return active[-1]
        for version in self.versions:
            if version.name == name:
                if not version.active:
                    raise InvalidInput(f"version {name} of {self.name} is deprecated", field="version")
                return version
        names = ", ".join(v.name for v in self.versions)
        raise InvalidInput(f"product {self.name} has no version {name!r}; versions: {names}", field="version")


class PortfolioGrant(BaseModel):
    """Holders of ``role`` (in the portfolio's team; in any team for the platform portfolio) may launch."""

    role: str


class Portfolio(BaseModel):
    """Products granted to roles. ``team`` is empty for the platform portfolio."""

    team: str
    name: str
    description: str = ""
    products: list[str] = Field(default_factory=list)
    grants: list[str] = Field(default_factory=list)
    created_by: str = ""
    created_at: dt.datetime
    srn: str = ""


class Status(enum.StrEnum):
    """Lifecycle of a provisioned product."""

    UNDER_CHANGE = "UNDER_CHANGE"
    AVAILABLE = "AVAILABLE"
    TAINTED = "TAINTED"
    ERROR = "ERROR"
    TERMINATED = "TERMINATED"


class Operation(enum.StrEnum):
    """What the provisioning engine is doing to a provisioned product."""

    NONE = "none"
    LAUNCH = "launch"
    UPDATE = "update"
    ROLLBACK = "rollback"
    REVERT = "revert"
    TERMINATE = "terminate"


class ProvisionedResource(BaseModel):
    """Something a provisioning step created (and terminate or rollback removes)."""

    step: str
    kind: str = ""
    ref: dict[str, Any] = Field(default_factory=dict)
    state: Literal["creating", "created", "deleted"] = "creating"
    adopted: bool = False


class ProvisioningEvent(BaseModel):
    """One line of a provisioned product's event log."""

    seq: int
    time: dt.datetime
    kind: str
    step: str = ""
    message: str = ""


class ProvisionedProduct(BaseModel):
    id: str
    team: str
    name: str
    product: str
    version: str
    owner: str
    launched_by: str
    status: Status
    operation: Operation
    status_message: str = ""
    parameters: dict[str, str] = Field(default_factory=dict)
    outputs: dict[str, str] = Field(default_factory=dict)
    created_at: dt.datetime
    updated_at: dt.datetime
    srn: str = ""
    resources: list[ProvisionedResource] = Field(default_factory=list)
    events: list[ProvisioningEvent] = Field(default_factory=list)

    @property
    def settled(self) -> bool:
        """True once the engine has nothing more to do (not UNDER_CHANGE)."""
        return self.status != Status.UNDER_CHANGE
