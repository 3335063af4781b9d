"""Audit entities."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel


class AuditEvent(BaseModel):
    seq: int
    id: str
    time: dt.datetime
    principal: str
    token_kind: str
    role: str
    team: str
    action: str
    resource: str
    decision: str
    policies: list[str]
    outcome: str
    error: str
    request_id: str
    source: str
    user_agent: str
    params: dict[str, Any]
    prev_hash: str
    hash: str


class Checkpoint(BaseModel):
    seq: int
    hash: str
    time: dt.datetime
    key_id: str
    prev: str = ""  # the digest of the checkpoint before it ("" for checkpoints older than the chain)


class VerifyReport(BaseModel):
    ok: bool
    events: int
    checkpoints: int
    head_seq: int
    head_hash: str
    problem: str = ""
    first_bad_seq: int | None = None
    first_bad_id: str | None = None
