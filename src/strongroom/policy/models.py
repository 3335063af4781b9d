"""Policy entities."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel


class PolicyAttachment(BaseModel):
    team: str
    name: str
    policy: str
    description: str = ""
    created_by: str
    created_at: dt.datetime


class SimulationResult(BaseModel):
    decision: str
    principal: str
    action: str
    resource: str
    acting_as: str | None
    determining_policies: list[str]
    messages: list[str]
    explanation: str
    context: dict[str, Any]
