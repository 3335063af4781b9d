"""KMS rows. Key material is stored only as a keyring handle: wrapped by the root key (local)
or the id of a non-extractable object inside the HSM (pkcs11)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from strongroom.db.base import Base, UtcDateTime
from strongroom.kms.models import Key, KeyVersion


class KeyRow(Base):
    __tablename__ = "kms_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    team: Mapped[str] = mapped_column(String(64), index=True)
    description: Mapped[str] = mapped_column(String(1024), default="")
    keyring: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16))
    primary_version: Mapped[int] = mapped_column(Integer)
    rotation_period_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    next_rotation_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    deletion_date: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    policy: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    created_by: Mapped[str] = mapped_column(String(64))

    versions: Mapped[list[KeyVersionRow]] = relationship(
        order_by="KeyVersionRow.version", cascade="all, delete-orphan", lazy="selectin"
    )
    aliases: Mapped[list[KeyAliasRow]] = relationship(
        order_by="KeyAliasRow.alias", cascade="all, delete-orphan", lazy="selectin"
    )

    def to_entity(self) -> Key:
        return Key(
            id=self.id,
            team=self.team,
            srn=f"srn:strongroom:{self.team}:key/{self.id}",
            aliases=[a.alias for a in self.aliases],
            description=self.description,
            keyring=self.keyring,
            state=self.state,  # type: ignore[arg-type]
            primary_version=self.primary_version,
            versions=[v.to_entity() for v in self.versions],
            rotation_period_days=self.rotation_period_days,
            next_rotation_at=self.next_rotation_at,
            deletion_date=self.deletion_date,
            has_policy=bool(self.policy),
            created_at=self.created_at,
            created_by=self.created_by,
        )


class KeyVersionRow(Base):
    __tablename__ = "kms_key_versions"

    key_id: Mapped[str] = mapped_column(ForeignKey("kms_keys.id"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    handle: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    state: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    destroyed_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), nullable=True)

    def to_entity(self) -> KeyVersion:
        return KeyVersion(
            version=self.version,
            state=self.state,  # type: ignore[arg-type]
            created_at=self.created_at,
            destroyed_at=self.destroyed_at,
        )


class KeyAliasRow(Base):
    """A team-unique name for a key (``risk-key``); several aliases may name one key."""

    __tablename__ = "kms_key_aliases"

    team: Mapped[str] = mapped_column(String(64), primary_key=True)
    alias: Mapped[str] = mapped_column(String(64), primary_key=True)
    key_id: Mapped[str] = mapped_column(ForeignKey("kms_keys.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
