"""Experiment entities: experiments, trials, trial components, metrics, and what writes carry.

The shapes follow the managed service's Experiments API that workshop users know: a trial
component has parameters (numbers or strings), input and output artifacts (name -> uri, media
type, content hash, object version), metrics as time series with summaries, a status, start and
end times, a source (the job that produced it) and tags.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from strongroom.lineage.models import GitCommit
from strongroom.storage.keys import parse_uri

STATUSES = ("InProgress", "Completed", "Failed", "Stopped")
Status = Literal["InProgress", "Completed", "Failed", "Stopped"]
ParameterValue = float | int | str | bool

MAX_PARAMETER_NAME = 256
MAX_STRING_VALUE = 2500
MAX_URI = 2048


class Experiment(BaseModel):
    name: str
    team: str
    srn: str
    display_name: str = ""
    description: str = ""
    tags: dict[str, str] = {}
    created_at: dt.datetime
    created_by: str


class Trial(BaseModel):
    name: str
    team: str
    srn: str
    experiment_name: str
    display_name: str = ""
    tags: dict[str, str] = {}
    created_at: dt.datetime
    created_by: str


class ArtifactValue(BaseModel):
    """One input or output of a trial component."""

    model_config = ConfigDict(extra="forbid")

    value: str = Field(max_length=MAX_URI, description="the artifact's uri, e.g. sr://bucket/key")
    media_type: str = Field(default="", max_length=256)
    sha256: str = Field(default="", max_length=64)
    version_id: str = Field(default="", max_length=128)

    @field_validator("value")
    @classmethod
    def _uri(cls, value: str) -> str:
        if value.startswith("sr://"):
            parse_uri(value, "value")  # the object-put key rules, as everywhere an sr:// URI is accepted
        return value

    @field_validator("sha256")
    @classmethod
    def _hex(cls, value: str) -> str:
        if value and (len(value) != 64 or any(c not in "0123456789abcdef" for c in value)):
            raise ValueError("sha256 must be 64 lowercase hex digits")
        return value


class MetricSummary(BaseModel):
    name: str
    count: int
    min: float
    max: float
    avg: float
    std_dev: float
    last: float
    last_step: int | None = None
    last_timestamp: dt.datetime | None = None


class MetricPoint(BaseModel):
    """One metric value; ``timestamp`` is seconds since the epoch (the client's clock)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=MAX_PARAMETER_NAME)
    value: float
    step: int | None = None
    timestamp: float | None = None

    @field_validator("value")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("metric values must be finite numbers")
        return value


class TrialComponent(BaseModel):
    name: str
    team: str
    srn: str
    display_name: str = ""
    status: Status = "InProgress"
    status_message: str = ""
    source: str = ""
    source_type: str = ""
    start_time: dt.datetime | None = None
    end_time: dt.datetime | None = None
    parameters: dict[str, ParameterValue] = {}
    inputs: dict[str, ArtifactValue] = {}
    outputs: dict[str, ArtifactValue] = {}
    metrics: list[MetricSummary] = []
    tags: dict[str, str] = {}
    trials: list[str] = []
    created_at: dt.datetime
    created_by: str


class ComponentCreate(BaseModel):
    """A new trial component (what create calls and batch items carry)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=64)
    display_name: str = Field(default="", max_length=256)
    status: Status = "InProgress"
    source: str = Field(default="", max_length=512)
    source_type: str = Field(default="", max_length=64)
    start_time: dt.datetime | None = None
    parameters: dict[str, ParameterValue] = Field(default_factory=dict)
    inputs: dict[str, ArtifactValue] = Field(default_factory=dict)
    tags: dict[str, str] = Field(default_factory=dict, max_length=50)
    trial: str | None = Field(default=None, max_length=64)
    commit: GitCommit | None = None


class ComponentUpdate(BaseModel):
    """Everything a write to one existing component can carry (what one batch item holds)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="", max_length=64, description="the component (set from the path for PATCH)")
    display_name: str | None = Field(default=None, max_length=256)
    status: Status | None = None
    status_message: str | None = Field(default=None, max_length=1024)
    start_time: dt.datetime | None = None
    end_time: dt.datetime | None = None
    parameters: dict[str, ParameterValue] = Field(default_factory=dict)
    inputs: dict[str, ArtifactValue] = Field(default_factory=dict)
    outputs: dict[str, ArtifactValue] = Field(default_factory=dict)
    tags: dict[str, str] = Field(default_factory=dict)
    metrics: list[MetricPoint] = Field(default_factory=list)


class MetricColumns(BaseModel):
    """Metrics of one component in columns: the compact form the SDK's background writer sends."""

    model_config = ConfigDict(extra="forbid")

    component: str = Field(max_length=64)
    names: list[str]
    values: list[float]
    steps: list[int | None]
    timestamps: list[float]


class BatchResult(BaseModel):
    components: int
    created: int = 0
    metrics: int
    parameters: int
    artifacts: int


class MetricSeries(BaseModel):
    component: str
    name: str
    steps: list[int | None]
    values: list[float]
    timestamps: list[float]


class ExperimentConfig(BaseModel):
    """What a job is given to create its trial component automatically.

    Accepts the managed service's keys (``ExperimentName``, ...) and snake_case ones alike, so
    ``ExperimentConfig.model_validate(job_spec.experiment_config.model_dump())`` works.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    experiment_name: str = Field(alias="ExperimentName", max_length=64)
    trial_name: str = Field(alias="TrialName", max_length=64)
    trial_component_display_name: str | None = Field(default=None, alias="TrialComponentDisplayName", max_length=256)
