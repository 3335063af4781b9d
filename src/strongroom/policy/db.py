"""Rows owned by the policy layer: team policy attachments and idempotency records."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from strongroom.db.base import Base, UtcDateTime


class PolicyAttachmentRow(Base):
    __tablename__ = "policy_attachments"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    team: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(64))
    policy: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())

    __table_args__ = (UniqueConstraint("team", "name"),)


class IdempotencyRow(Base):
    """The result of a create call, kept so that a retried request returns it again."""

    __tablename__ = "idempotency_records"

    principal: Mapped[str] = mapped_column(String(128), primary_key=True)
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    action: Mapped[str] = mapped_column(String(128))
    request_hash: Mapped[str] = mapped_column(String(64))
    result: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Indexed so that records past their retention are found without reading the table
    # (``guard.idempotency``, migration 0017).
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), index=True)
