"""Serving rows: models, endpoint configs, endpoints (their state survives a restart)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from strongroom.db.base import Base, UtcDateTime
from strongroom.serving.models import Endpoint, EndpointConfig, EndpointConfigSpec, Model


class ModelRow(Base):
    __tablename__ = "serving_models"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    team: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(64))
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())

    __table_args__ = (UniqueConstraint("team", "name"),)

    def to_entity(self) -> Model:
        return Model(
            srn=f"srn:strongroom:{self.team}:model/{self.name}",
            team=self.team,
            name=self.name,
            created_by=self.created_by,
            created_at=self.created_at,
            **self.spec,
        )


class EndpointConfigRow(Base):
    __tablename__ = "serving_endpoint_configs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    team: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(64))
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())

    __table_args__ = (UniqueConstraint("team", "name"),)

    def to_entity(self) -> EndpointConfig:
        return EndpointConfig(
            srn=f"srn:strongroom:{self.team}:endpoint-config/{self.name}",
            team=self.team,
            name=self.name,
            spec=EndpointConfigSpec.model_validate(self.spec),
            created_by=self.created_by,
            created_at=self.created_at,
        )


class EndpointRow(Base):
    __tablename__ = "serving_endpoints"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    team: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(64))
    config_name: Mapped[str] = mapped_column(String(64))
    # The endpoint config as it was when the endpoint was created (a later edit cannot change it).
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    # The models it serves, pinned (name -> the model's spec at creation).
    models: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_by: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), index=True)
    failure_reason: Mapped[str] = mapped_column(Text)
    # The capture spool's data key, wrapped under the team key.
    spool_key: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())

    __table_args__ = (UniqueConstraint("team", "name"),)

    def to_entity(self, url: str) -> Endpoint:
        return Endpoint(
            srn=f"srn:strongroom:{self.team}:endpoint/{self.name}",
            team=self.team,
            name=self.name,
            endpoint_config_name=self.config_name,
            status=self.status,  # type: ignore[arg-type]
            failure_reason=self.failure_reason,
            url=url,
            created_by=self.created_by,
            created_at=self.created_at,
            updated_at=self.updated_at,
        )
