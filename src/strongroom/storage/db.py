"""Storage rows. Object bytes live in the blob store, encrypted; a row makes a version visible."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from strongroom.db.base import Base, UtcDateTime
from strongroom.storage.models import Bucket, ObjectVersion


class BucketRow(Base):
    __tablename__ = "buckets"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    team: Mapped[str] = mapped_column(String(64), index=True)
    default_key_id: Mapped[str] = mapped_column(String(32))
    description: Mapped[str] = mapped_column(String(1024), default="")
    policy: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    created_by: Mapped[str] = mapped_column(String(64))

    def to_entity(self) -> Bucket:
        return Bucket(
            name=self.name,
            team=self.team,
            srn=f"srn:strongroom:{self.team}:bucket/{self.name}",
            uri=f"sr://{self.name}",
            default_key_id=self.default_key_id,
            description=self.description,
            has_policy=bool(self.policy),
            created_at=self.created_at,
            created_by=self.created_by,
        )


class ObjectVersionRow(Base):
    __tablename__ = "object_versions"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    bucket_id: Mapped[str] = mapped_column(ForeignKey("buckets.id"))
    key: Mapped[str] = mapped_column(String(1024))
    version_id: Mapped[str] = mapped_column(String(32), unique=True)
    is_latest: Mapped[bool] = mapped_column(Boolean)
    delete_marker: Mapped[bool] = mapped_column(Boolean, default=False)
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    sha256: Mapped[str] = mapped_column(String(64), default="")
    content_type: Mapped[str] = mapped_column(String(256), default="")
    tags: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    blob: Mapped[str] = mapped_column(String(256), default="")
    kms_key_id: Mapped[str] = mapped_column(String(32), default="")
    kms_key_version: Mapped[int] = mapped_column(Integer, default=0)
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary, default=b"")
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    created_by: Mapped[str] = mapped_column(String(64))

    __table_args__ = (
        Index("ix_object_versions_bucket_key", "bucket_id", "key"),
        Index("ix_object_versions_bucket_latest", "bucket_id", "is_latest"),
    )

    def to_entity(self, bucket: str) -> ObjectVersion:
        return ObjectVersion(
            bucket=bucket,
            key=self.key,
            uri=f"sr://{bucket}/{self.key}",
            version_id=self.version_id,
            is_latest=self.is_latest,
            delete_marker=self.delete_marker,
            size=self.size,
            sha256=self.sha256,
            content_type=self.content_type,
            tags=dict(self.tags or {}),
            kms_key_id=self.kms_key_id,
            kms_key_version=self.kms_key_version,
            created_at=self.created_at,
            created_by=self.created_by,
        )
