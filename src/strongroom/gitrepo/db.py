"""Repository rows; the repositories themselves are bare git directories under the home."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from strongroom.db.base import Base, UtcDateTime
from strongroom.gitrepo.models import Repository


class RepositoryRow(Base):
    __tablename__ = "git_repositories"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    team: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(String(1024))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())

    __table_args__ = (UniqueConstraint("team", "name"),)

    def to_entity(self) -> Repository:
        return Repository(
            team=self.team,
            name=self.name,
            description=self.description,
            created_by=self.created_by,
            created_at=self.created_at,
            srn=f"srn:strongroom:{self.team}:repository/{self.name}",
        )
