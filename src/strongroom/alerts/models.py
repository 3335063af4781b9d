"""Alert entities (light: the SDK imports them)."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel


class TeamWebhook(BaseModel):
    """A team's own alert webhook (its monitoring alerts are POSTed there)."""

    team: str
    url: str
    updated_by: str
    updated_at: dt.datetime
