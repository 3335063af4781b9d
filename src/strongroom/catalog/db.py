"""Catalog rows: portfolios, provisioned products, the resources each step created, and the event log.

Products themselves are not rows: they are defined by the provisioners the platform ships.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from strongroom.catalog.models import (
    Operation,
    Portfolio,
    ProvisionedProduct,
    ProvisionedResource,
    ProvisioningEvent,
    Status,
)
from strongroom.db.base import Base, UtcDateTime


class PortfolioRow(Base):
    __tablename__ = "catalog_portfolios"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    team: Mapped[str] = mapped_column(String(64), default="")
    name: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(String(1024), default="")
    products: Mapped[list[str]] = mapped_column(JSON, default=list)
    grants: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_by: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())

    __table_args__ = (UniqueConstraint("team", "name"),)

    def to_entity(self) -> Portfolio:
        return Portfolio(
            team=self.team,
            name=self.name,
            description=self.description,
            products=sorted(self.products or []),
            grants=sorted(self.grants or []),
            created_by=self.created_by,
            created_at=self.created_at,
            srn=f"srn:strongroom:{self.team}:portfolio/{self.name}",
        )


class ProvisionedProductRow(Base):
    __tablename__ = "catalog_provisioned_products"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    team: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(64))
    product: Mapped[str] = mapped_column(String(64))
    version: Mapped[str] = mapped_column(String(64))
    owner: Mapped[str] = mapped_column(String(64))
    launched_by: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), index=True)
    operation: Mapped[str] = mapped_column(String(16))
    status_message: Mapped[str] = mapped_column(Text, default="")
    parameters: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    # Before an update: {"version": ..., "parameters": ...}, restored when the update fails.
    previous: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    outputs: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    # Name stays unique among live products of a team; a terminated product frees its name.
    live_name: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())

    __table_args__ = (UniqueConstraint("team", "live_name"),)

    def to_entity(
        self, resources: list[ProvisionedResource] | None = None, events: list[ProvisioningEvent] | None = None
    ) -> ProvisionedProduct:
        return ProvisionedProduct(
            id=self.id,
            team=self.team,
            name=self.name,
            product=self.product,
            version=self.version,
            owner=self.owner,
            launched_by=self.launched_by,
            status=Status(self.status),
            operation=Operation(self.operation),
            status_message=self.status_message,
            parameters=dict(self.parameters or {}),
            outputs=dict(self.outputs or {}),
            created_at=self.created_at,
            updated_at=self.updated_at,
            srn=f"srn:strongroom:{self.team}:provisioned-product/{self.name}",
            resources=resources or [],
            events=events or [],
        )


class ProvisionedResourceRow(Base):
    """What one step created. Written *before* the step acts ("creating"), so nothing is orphaned."""

    __tablename__ = "catalog_provisioned_resources"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    product_id: Mapped[str] = mapped_column(ForeignKey("catalog_provisioned_products.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    step: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(64), default="")
    ref: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    state: Mapped[str] = mapped_column(String(16))
    adopted: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())

    __table_args__ = (UniqueConstraint("product_id", "step"),)

    def to_entity(self) -> ProvisionedResource:
        return ProvisionedResource(
            step=self.step,
            kind=self.kind,
            ref=dict(self.ref or {}),
            state=self.state,  # type: ignore[arg-type]
            adopted=self.adopted,
        )


class ProvisioningEventRow(Base):
    __tablename__ = "catalog_provisioning_events"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    product_id: Mapped[str] = mapped_column(ForeignKey("catalog_provisioned_products.id"), index=True)
    time: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    kind: Mapped[str] = mapped_column(String(64))
    step: Mapped[str] = mapped_column(String(64), default="")
    message: Mapped[str] = mapped_column(Text, default="")

    def to_entity(self) -> ProvisioningEvent:
        return ProvisioningEvent(seq=self.id, time=self.time, kind=self.kind, step=self.step, message=self.message)
