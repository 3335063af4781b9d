"""Notebook rows and single-use sign-in URLs (stored as hashes, never the token itself)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from strongroom.db.base import Base, UtcDateTime
from strongroom.notebooks.models import SIZES, Notebook, NotebookStatus


class NotebookRow(Base):
    __tablename__ = "notebooks"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    team: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(64))
    live_name: Mapped[str | None] = mapped_column(String(64), nullable=True)
    owner: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(32), server_default="DataScientist")
    status: Mapped[str] = mapped_column(String(16), index=True)
    desired: Mapped[str] = mapped_column(String(16))  # running | stopped | deleted
    size: Mapped[str] = mapped_column(String(16))
    volume_gib: Mapped[int] = mapped_column(Integer)
    runtime: Mapped[str] = mapped_column(String(64))
    on_create: Mapped[str] = mapped_column(Text, default="")
    on_start: Mapped[str] = mapped_column(Text, default="")
    provisioned_product_id: Mapped[str] = mapped_column(String(32), default="")
    reason: Mapped[str] = mapped_column(Text, default="")
    host_pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    generation: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    started_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), nullable=True)

    __table_args__ = (UniqueConstraint("team", "live_name"),)

    def to_entity(self) -> Notebook:
        size = SIZES.get(self.size, SIZES["small"])
        return Notebook(
            id=self.id,
            team=self.team,
            name=self.name,
            owner=self.owner,
            role=self.role,
            status=NotebookStatus(self.status),
            desired=self.desired,
            size=self.size,
            cpus=size.cpus,
            memory_bytes=size.memory_bytes,
            volume_gib=self.volume_gib,
            runtime=self.runtime,
            url_path=f"/notebooks/{self.team}/{self.name}/",
            reason=self.reason,
            provisioned_product_id=self.provisioned_product_id,
            created_at=self.created_at,
            updated_at=self.updated_at,
            started_at=self.started_at,
            srn=f"srn:strongroom:{self.team}:notebook/{self.name}",
        )


class PresignedUrlRow(Base):
    """A sign-in URL: the SHA-256 of its token, who it signs in, until when, whether it was used, and what it
    was derived from."""

    __tablename__ = "notebook_presigned_urls"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    notebook_id: Mapped[str] = mapped_column(String(32), index=True)
    user: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(32))
    team: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    used_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    # The API token the link was made with ("" from an execution role): revoking it voids the link.
    parent_token: Mapped[str] = mapped_column(String(32), default="", server_default="")
