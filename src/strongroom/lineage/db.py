"""Lineage rows: entities (artifacts, actions, contexts, trial components) and associations.

Upstream queries walk associations from destination to source, downstream ones from source to
destination; each direction has a covering index so a recursive step is one index range scan.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from strongroom.db.base import Base, UtcDateTime

BigId = BigInteger().with_variant(Integer, "sqlite")


class LineageEntityRow(Base):
    __tablename__ = "lineage_entities"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    team: Mapped[str] = mapped_column(String(64))
    srn: Mapped[str] = mapped_column(String(512), unique=True)
    kind: Mapped[str] = mapped_column(String(32))  # artifact | action | context | trial-component
    type: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(256), default="")
    uri: Mapped[str] = mapped_column(String(2048), default="")
    sha256: Mapped[str] = mapped_column(String(64), default="")
    version_id: Mapped[str] = mapped_column(String(128), default="")
    properties: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    created_by: Mapped[str] = mapped_column(String(64))

    __table_args__ = (Index("ix_lineage_entities_team_kind_type", "team", "kind", "type"),)


class LineageAssociationRow(Base):
    __tablename__ = "lineage_associations"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    team: Mapped[str] = mapped_column(String(64))
    source_id: Mapped[int] = mapped_column(BigId, ForeignKey("lineage_entities.id", ondelete="CASCADE"))
    destination_id: Mapped[int] = mapped_column(BigId, ForeignKey("lineage_entities.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    created_by: Mapped[str] = mapped_column(String(64))

    __table_args__ = (
        # downstream walks (and idempotency): source -> destination
        UniqueConstraint("source_id", "destination_id", "type"),
        # upstream walks: destination -> source
        Index("ix_lineage_associations_upstream", "destination_id", "source_id", "type"),
    )
