"""Job rows: the queue, the state machine, encrypted log lines, metric points, runtimes."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from strongroom.db.base import Base, UtcDateTime
from strongroom.jobs.models import Job, JobSpec, ResolvedInput


class JobRow(Base):
    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    team: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    created_by: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(32))
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), index=True)
    secondary_status: Mapped[str] = mapped_column(String(32))
    transitions: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    failure_reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    started_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer)
    billable_seconds: Mapped[float] = mapped_column(Float)
    exit_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    inputs_resolved: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    outputs_produced: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    runtime_version: Mapped[dict[str, str]] = mapped_column(JSON)
    code_resolved: Mapped[dict[str, Any]] = mapped_column(JSON)
    log_key: Mapped[bytes] = mapped_column(LargeBinary)
    network_isolation: Mapped[bool] = mapped_column(Boolean)
    use_spot: Mapped[bool] = mapped_column(Boolean)
    claimed_by: Mapped[str] = mapped_column(String(64))
    requested: Mapped[str] = mapped_column(String(16))
    not_before: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), nullable=True)

    __table_args__ = (UniqueConstraint("team", "name"), Index("ix_jobs_team_created", "team", "created_at"))

    def to_entity(self) -> Job:
        spec = JobSpec.model_validate(self.spec)
        end = self.ended_at or dt.datetime.now(dt.UTC)
        total = (end - self.created_at).total_seconds()
        savings = None
        if spec.spot.use_spot and self.status == "Completed" and total > 0:
            savings = round(max(0.0, 1 - self.billable_seconds / total) * 100, 1)
        return Job(
            srn=spec.srn,
            name=self.name,
            team=self.team,
            kind=spec.kind,
            spec=spec,
            status=self.status,  # type: ignore[arg-type]
            secondary_status=self.secondary_status,
            status_transitions=self.transitions,  # type: ignore[arg-type]
            failure_reason=self.failure_reason,
            created_by=self.created_by,
            role=self.role,
            created_at=self.created_at,
            started_at=self.started_at,
            ended_at=self.ended_at,
            attempts=self.attempts,
            billable_seconds=round(self.billable_seconds, 3),
            total_seconds=round(total, 3),
            spot_savings_percent=savings,
            exit_code=self.exit_code,
            inputs_resolved=[ResolvedInput.model_validate(i) for i in self.inputs_resolved],
            outputs_produced=self.outputs_produced,  # type: ignore[arg-type]
            runtime_version=self.runtime_version,
            code_resolved=self.code_resolved,
        )


class JobLogRow(Base):
    """One log line, AES-256-GCM under the job's data key (wrapped by the team key in ``jobs.log_key``)."""

    __tablename__ = "job_logs"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    time: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    stream: Mapped[str] = mapped_column(String(8))
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)

    __table_args__ = (UniqueConstraint("job_id", "seq"),)


class JobMetricRow(Base):
    __tablename__ = "job_metrics"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(128))
    step: Mapped[int] = mapped_column(Integer)
    value: Mapped[float] = mapped_column(Float)
    time: Mapped[dt.datetime] = mapped_column(UtcDateTime())


class RuntimeRow(Base):
    """An admin-approved Python environment jobs may run in."""

    __tablename__ = "runtimes"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    python: Mapped[str] = mapped_column(String(1024))
    description: Mapped[str] = mapped_column(String(1024))
    approved_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
