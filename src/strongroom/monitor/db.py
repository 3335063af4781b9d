"""Monitoring rows: schedules and their executions (state survives a restart)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Float, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from strongroom.db.base import Base, UtcDateTime
from strongroom.monitor.models import Execution, Resources, Schedule


class MonitoringScheduleRow(Base):
    __tablename__ = "monitoring_schedules"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    team: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(64))
    endpoint: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    # "cron(...)"/five fields, "every N minutes" or "every N records"
    expression: Mapped[str] = mapped_column(String(128))
    cron: Mapped[str] = mapped_column(String(128))
    every_minutes: Mapped[int | None] = mapped_column(Integer, nullable=True)
    every_records: Mapped[int | None] = mapped_column(Integer, nullable=True)
    output_uri: Mapped[str] = mapped_column(Text)
    statistics_uri: Mapped[str] = mapped_column(Text)
    constraints_uri: Mapped[str] = mapped_column(Text)
    # The monitored columns, in the order captured fields map onto them (the baseline's, less excluded).
    feature_names: Mapped[list[str]] = mapped_column(JSON)
    excluded_columns: Mapped[list[str]] = mapped_column(JSON)
    enable_metrics: Mapped[bool] = mapped_column(Boolean)
    resources: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_by: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    next_run: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    last_window_end: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    failure_reason: Mapped[str] = mapped_column(Text)
    # "DataQuality" (statistics + constraints) or "ModelExplainability" (feature-attribution drift
    # against the baseline analysis at ``analysis_uri``, nDCG below ``attribution_threshold``).
    monitoring_type: Mapped[str] = mapped_column(String(32), default="DataQuality", server_default="DataQuality")
    analysis_uri: Mapped[str] = mapped_column(Text, default="", server_default="")
    attribution_threshold: Mapped[float | None] = mapped_column(Float, nullable=True)
    # every_records schedules: captured records counted towards the next window (kept here, not in
    # the scheduler's memory, so a restarted platform carries on counting).
    records_counted: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")

    __table_args__ = (UniqueConstraint("team", "name"),)

    def to_entity(self, last_status: str = "") -> Schedule:
        return Schedule(
            srn=f"srn:strongroom:{self.team}:monitoring-schedule/{self.name}",
            team=self.team,
            name=self.name,
            endpoint=self.endpoint,
            status=self.status,  # type: ignore[arg-type]
            schedule_expression=self.expression,
            output_uri=self.output_uri,
            statistics_uri=self.statistics_uri,
            constraints_uri=self.constraints_uri,
            feature_names=list(self.feature_names),
            excluded_columns=list(self.excluded_columns),
            enable_metrics=self.enable_metrics,
            resources=Resources.model_validate(self.resources),
            created_by=self.created_by,
            created_at=self.created_at,
            next_run=self.next_run,
            last_window_end=self.last_window_end,
            last_execution_status=last_status,
            failure_reason=self.failure_reason,
            monitoring_type=self.monitoring_type,  # type: ignore[arg-type]
            analysis_uri=self.analysis_uri,
            attribution_threshold=self.attribution_threshold,
            records_counted=self.records_counted if self.every_records is not None else None,
        )


class MonitoringExecutionRow(Base):
    __tablename__ = "monitoring_executions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    schedule_id: Mapped[str] = mapped_column(String(32))
    team: Mapped[str] = mapped_column(String(64))
    schedule: Mapped[str] = mapped_column(String(64))
    trigger: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(32), index=True)
    exit_message: Mapped[str] = mapped_column(Text)
    window_start: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    window_end: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    not_before: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    job_name: Mapped[str] = mapped_column(String(64))
    output_uri: Mapped[str] = mapped_column(Text)
    # Feature names and check types only: descriptions can quote captured values, so they stay in
    # the encrypted constraint_violations.json.
    violations: Mapped[list[dict[str, str]]] = mapped_column(JSON)
    distances: Mapped[dict[str, float]] = mapped_column(JSON)
    rows: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    started_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), nullable=True)

    __table_args__ = (Index("ix_monitoring_executions_schedule_created", "schedule_id", "created_at"),)

    def to_entity(self, monitoring_type: str = "DataQuality") -> Execution:
        base = self.output_uri.rstrip("/")
        done = self.status in ("Completed", "CompletedWithViolations")
        explains = monitoring_type == "ModelExplainability"
        return Execution(
            id=self.id,
            srn=f"srn:strongroom:{self.team}:monitoring-execution/{self.schedule}/{self.id}",
            team=self.team,
            schedule=self.schedule,
            trigger=self.trigger,
            status=self.status,  # type: ignore[arg-type]
            exit_message=self.exit_message,
            window_start=self.window_start,
            window_end=self.window_end,
            job_name=self.job_name,
            output_uri=base,
            statistics_uri=f"{base}/statistics.json" if done and not explains else "",
            analysis_uri=f"{base}/analysis.json" if done and explains else "",
            violations_uri=f"{base}/constraint_violations.json" if done else "",
            report_uri=f"{base}/report.html" if done else "",
            violations=list(self.violations),
            distances=dict(self.distances),
            rows=self.rows,
            created_at=self.created_at,
            started_at=self.started_at,
            ended_at=self.ended_at,
        )
