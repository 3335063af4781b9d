"""Alert rows: each team's own webhook for its monitoring alerts."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from strongroom.db.base import Base, UtcDateTime


class TeamAlertWebhookRow(Base):
    __tablename__ = "team_alert_webhooks"

    team: Mapped[str] = mapped_column(String(64), primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    updated_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
