"""Audit rows. ``seq`` is the chain position; the unique constraint forbids forks."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from strongroom.db.base import Base, UtcDateTime


class AuditEventRow(Base):
    __tablename__ = "audit_events"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    id: Mapped[str] = mapped_column(String(32), unique=True)
    time: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    principal: Mapped[str] = mapped_column(String(128))
    token_kind: Mapped[str] = mapped_column(String(16))
    role: Mapped[str] = mapped_column(String(64))
    team: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(128))
    resource: Mapped[str] = mapped_column(String(1024))
    decision: Mapped[str] = mapped_column(String(8))
    policies: Mapped[list[str]] = mapped_column(JSON)
    outcome: Mapped[str] = mapped_column(String(64))
    error: Mapped[str] = mapped_column(Text)
    request_id: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(128))
    user_agent: Mapped[str] = mapped_column(String(256))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))

    __table_args__ = (
        Index("ix_audit_events_time", "time"),
        Index("ix_audit_events_request_id", "request_id"),
        # Searches page in chain order: seq second, so a page reads its entries in order and stops
        # (migration 0015_console_indexes).
        Index("ix_audit_events_principal_seq", "principal", "seq"),
        Index("ix_audit_events_action_seq", "action", "seq"),
        Index("ix_audit_events_team_seq", "team", "seq"),
        Index("ix_audit_events_decision_seq", "decision", "seq"),
    )


class AuditCheckpointRow(Base):
    __tablename__ = "audit_checkpoints"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[str] = mapped_column(String(64))
    time: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    key_id: Mapped[str] = mapped_column(String(64))
    signature: Mapped[bytes] = mapped_column(LargeBinary)
    # The digest of the previous checkpoint (``signing.checkpoint_digest``), signed with this one.
    prev: Mapped[str] = mapped_column(String(64), default="", server_default="")


class AuditFlushRow(Base):
    """One row per PostgreSQL backend, bumped by ``AuditLog.make_durable``: a write that commits
    synchronously (and so waits for the WAL flush) without contending with any other."""

    __tablename__ = "audit_flushes"

    backend: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    n: Mapped[int] = mapped_column(BigInteger)
