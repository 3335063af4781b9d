"""Monitoring entities and the specs users send: baseline jobs, schedules, executions."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from strongroom.core.errors import InvalidInput
from strongroom.core.names import check_name
from strongroom.storage.keys import parse_uri

ScheduleStatus = Literal["Scheduled", "Stopped"]
MonitoringType = Literal["DataQuality", "ModelExplainability"]
"""What a schedule checks: the captured data against baseline statistics and constraints
(``DataQuality``, the default monitor), or the model's feature attributions on the captured data
against a baseline of global SHAP values (``ModelExplainability``: feature-attribution drift)."""
DEFAULT_ATTRIBUTION_THRESHOLD = 0.9
"""nDCG below which attributions drifted (the managed service's default; same as
``strongroom.explain.drift.DEFAULT_THRESHOLD``, repeated here so the SDK needs no SHAP)."""
ExecutionStatus = Literal["Pending", "InProgress", "Completed", "CompletedWithViolations", "Failed", "Stopped"]
EXECUTION_DONE = ("Completed", "CompletedWithViolations", "Failed", "Stopped")
MAX_COLUMNS = 1000


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _uri(value: str, field: str) -> str:
    bucket, _ = parse_uri(value, field)
    if not bucket:
        raise InvalidInput(f"{value!r} names no bucket (sr://bucket/key)", field=field)
    return value


def _columns(value: list[str], field: str) -> list[str]:
    for name in value:
        if not name or len(name) > 256 or "\0" in name:
            raise InvalidInput(f"{field}: column names are 1-256 characters without NUL", field=field)
    if len(set(value)) != len(value):
        raise InvalidInput(f"{field} repeats a column name", field=field)
    return value


class Resources(Strict):
    """What each monitoring job may use (``instance_count`` is recorded; one process does the work)."""

    instance_count: int = Field(default=1, ge=1, le=16)
    memory_mb: int = Field(default=2048, ge=256, le=1024 * 1024)
    scratch_mb: int = Field(default=1024, ge=64, le=1024 * 1024)
    max_runtime_seconds: int = Field(default=3600, ge=60, le=86400)
    volume_kms_key: str = Field(default="default", max_length=256)


class BaselineSpec(Strict):
    """``suggest_baseline``: statistics and suggested constraints of a CSV dataset
    (``DataQuality``), or the global SHAP values of ``model_uri`` over it, ``analysis.json``
    (``ModelExplainability``)."""

    job_name: str
    baseline_dataset: str
    output_uri: str
    monitoring_type: MonitoringType = "DataQuality"
    model_uri: str = ""
    header: bool = True
    feature_names: list[str] = Field(default_factory=list, max_length=MAX_COLUMNS)
    excluded_columns: list[str] = Field(default_factory=list, max_length=MAX_COLUMNS)
    resources: Resources = Field(default_factory=Resources)

    @model_validator(mode="after")
    def _check(self) -> BaselineSpec:
        check_name(self.job_name, "job_name")
        _uri(self.baseline_dataset, "baseline_dataset")
        _uri(self.output_uri, "output_uri")
        _columns(self.feature_names, "feature_names")
        _columns(self.excluded_columns, "excluded_columns")
        if not self.header and not self.feature_names:
            raise InvalidInput("a dataset without a header needs feature_names", field="feature_names")
        if (self.monitoring_type == "ModelExplainability") != bool(self.model_uri):
            raise InvalidInput(
                "an explainability baseline needs model_uri (the model.tar.gz the endpoint serves); "
                "a data-quality baseline takes none",
                field="model_uri",
            )
        if self.model_uri:
            _uri(self.model_uri, "model_uri")
        return self


class ScheduleSpec(Strict):
    """``CreateMonitoringSchedule``: an endpoint's capture checked against a baseline, on a schedule.

    Exactly one of ``schedule_cron_expression`` (``cron(0 * ? * * *)`` or five fields),
    ``every_minutes`` or ``every_records`` (near-real-time).

    A ``DataQuality`` schedule needs ``statistics_uri`` and ``constraints_uri``; a
    ``ModelExplainability`` schedule needs ``analysis_uri`` (the baseline's ``analysis.json``) and
    flags an nDCG below ``attribution_threshold`` (default 0.9).
    """

    name: str
    endpoint: str
    output_uri: str
    monitoring_type: MonitoringType = "DataQuality"
    statistics_uri: str = ""
    constraints_uri: str = ""
    analysis_uri: str = ""
    attribution_threshold: float | None = Field(default=None, ge=0.0, le=1.0)
    schedule_cron_expression: str | None = None
    every_minutes: int | None = Field(default=None, ge=1, le=7 * 24 * 60)
    every_records: int | None = Field(default=None, ge=1, le=100_000_000)
    excluded_columns: list[str] = Field(default_factory=list, max_length=MAX_COLUMNS)
    enable_metrics: bool = True
    resources: Resources = Field(default_factory=Resources)

    @field_validator("output_uri", "statistics_uri", "constraints_uri", "analysis_uri")
    @classmethod
    def _uris(cls, value: str, info: Any) -> str:
        if not value and info.field_name != "output_uri":
            return value  # which ones a type needs is checked below
        return _uri(value, str(info.field_name))

    @model_validator(mode="after")
    def _check(self) -> ScheduleSpec:
        from strongroom.monitor.timing import cron_expression

        check_name(self.name, "name")
        check_name(self.endpoint, "endpoint")
        _columns(self.excluded_columns, "excluded_columns")
        given = (self.schedule_cron_expression, self.every_minutes, self.every_records)
        if sum(v is not None for v in given) != 1:
            raise InvalidInput(
                "give exactly one of schedule_cron_expression, every_minutes or every_records",
                field="schedule_cron_expression",
            )
        if self.schedule_cron_expression is not None:
            cron_expression(self.schedule_cron_expression)
        if self.monitoring_type == "DataQuality":
            for field in ("statistics_uri", "constraints_uri"):
                if not getattr(self, field):
                    raise InvalidInput(f"a data-quality schedule needs {field}", field=field)
            if self.analysis_uri or self.attribution_threshold is not None:
                raise InvalidInput(
                    "analysis_uri and attribution_threshold are for monitoring_type 'ModelExplainability'",
                    field="monitoring_type",
                )
        else:
            if not self.analysis_uri:
                raise InvalidInput(
                    "an explainability schedule needs analysis_uri (its baseline's analysis.json)", field="analysis_uri"
                )
            if self.statistics_uri or self.constraints_uri or self.excluded_columns:
                raise InvalidInput(
                    "statistics_uri, constraints_uri and excluded_columns are for data-quality schedules; an "
                    "explainability schedule reads its features from analysis_uri",
                    field="monitoring_type",
                )
        return self


class RunNow(Strict):
    """One execution now over ``[start, end)``; by default from the end of the last window to now."""

    start: dt.datetime | None = None
    end: dt.datetime | None = None

    @model_validator(mode="after")
    def _check(self) -> RunNow:
        for name in ("start", "end"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                raise InvalidInput(f"{name} needs a time zone (for example 2026-12-06T10:00:00Z)", field=name)
        if self.start is not None and self.end is not None and self.start >= self.end:
            raise InvalidInput("start must be before end", field="start")
        return self


class Schedule(BaseModel):
    srn: str
    team: str
    name: str
    endpoint: str
    status: ScheduleStatus
    schedule_expression: str
    output_uri: str
    statistics_uri: str
    constraints_uri: str
    feature_names: list[str]
    excluded_columns: list[str]
    enable_metrics: bool
    resources: Resources
    created_by: str
    created_at: dt.datetime
    next_run: dt.datetime | None = None
    last_window_end: dt.datetime
    last_execution_status: str = ""
    failure_reason: str = ""
    monitoring_type: MonitoringType = "DataQuality"
    analysis_uri: str = ""
    attribution_threshold: float | None = None
    # every_records schedules: captured records counted towards the next window
    records_counted: int | None = None


class Execution(BaseModel):
    """One monitoring execution: a window of capture checked by one sandboxed job."""

    id: str
    srn: str
    team: str
    schedule: str
    trigger: str
    status: ExecutionStatus
    exit_message: str
    window_start: dt.datetime
    window_end: dt.datetime
    job_name: str
    output_uri: str
    statistics_uri: str
    violations_uri: str
    report_uri: str
    # ModelExplainability: the window's global attributions (analysis.json); "" otherwise
    analysis_uri: str = ""
    violations: list[dict[str, str]] = Field(default_factory=list)
    distances: dict[str, float] = Field(default_factory=dict)
    rows: int | None = None
    created_at: dt.datetime
    started_at: dt.datetime | None = None
    ended_at: dt.datetime | None = None
