"""Job specs (what a user submits) and jobs (what the platform reports).

The spec follows the managed service's vocabulary: channels under ``/opt/ml``, hyperparameters,
resources, security (network isolation, volume KMS key, inter-node encryption), managed spot,
experiment config. Every field is checked when the spec is built; a bad spec never creates a job.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field, field_validator, model_validator

from strongroom.core.errors import InvalidInput
from strongroom.core.names import check_name
from strongroom.jobs import contract
from strongroom.storage.keys import parse_uri

JobKind = Literal["processing", "training", "transform", "explainability", "monitoring"]
JobStatus = Literal["Pending", "InProgress", "Completed", "Failed", "Stopping", "Stopped"]
TERMINAL = ("Completed", "Failed", "Stopped")
CHANNEL = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
ML_ROOT = "/opt/ml"
BUILTIN_ALGORITHMS = {
    "xgboost": "strongroom.algorithms.xgboost.train",
    "explain": "strongroom.explain.job",
    "model-monitor": "strongroom.monitor.inside.job",
}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _sr_uri(value: str, field: str) -> str:
    bucket, _ = parse_uri(value, field)
    if not bucket:
        raise InvalidInput(f"{value!r} names no bucket (sr://bucket/key)", field=field)
    return value


def _channel_name(value: str, field: str) -> str:
    if not CHANNEL.fullmatch(value):
        raise InvalidInput(f"{field.split('.')[0][:-1]} name {value!r}: 1-32 of a-z 0-9 _ -", field=field)
    return value


def _sandbox_path(value: str, field: str) -> str:
    if not value.startswith(ML_ROOT + "/") or ".." in value.split("/") or "\0" in value:
        raise InvalidInput(f"{value!r} must be a path under {ML_ROOT}/ without '..'", field=field)
    return value.rstrip("/")


class CodeSpec(Strict):
    """Either a built-in ``algorithm`` or user code: ``source`` is an ``sr://`` script or a
    ``.tar.gz`` of a source directory, ``entry_point`` the script inside it."""

    algorithm: Literal["xgboost", "explain", "model-monitor"] | None = None
    source: str | None = None
    version_id: str | None = Field(default=None, max_length=64)
    entry_point: str | None = None
    arguments: list[str] = Field(default_factory=list, max_length=256)

    @model_validator(mode="after")
    def _one_kind(self) -> CodeSpec:
        if (self.algorithm is None) == (self.source is None):
            raise InvalidInput("give either code.algorithm (built-in) or code.source (an sr:// script)", field="code")
        if self.source is not None:
            _sr_uri(self.source, "code.source")
            if self.source.endswith((".tar.gz", ".tgz")) and not self.entry_point:
                raise InvalidInput(
                    "a source archive needs code.entry_point (the script to run)", field="code.entry_point"
                )
        if self.entry_point is not None and (
            self.entry_point.startswith("/") or ".." in self.entry_point.split("/") or not self.entry_point
        ):
            raise InvalidInput("code.entry_point must be a relative path inside the source", field="code.entry_point")
        for arg in self.arguments:
            if "\0" in arg or len(arg) > 4096:
                raise InvalidInput(
                    "code.arguments must be strings without NUL, up to 4096 characters", field="code.arguments"
                )
        return self


class InputChannel(Strict):
    name: str
    source: str
    destination: str | None = None
    content_type: str | None = Field(default=None, max_length=128)
    version_id: str | None = Field(default=None, max_length=64)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _channel_name(value, "inputs.name")

    @field_validator("source")
    @classmethod
    def _source(cls, value: str) -> str:
        return _sr_uri(value, "inputs.source")

    @field_validator("destination")
    @classmethod
    def _destination(cls, value: str | None) -> str | None:
        return None if value is None else _sandbox_path(value, "inputs.destination")


class OutputChannel(Strict):
    name: str
    destination: str
    source: str | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _channel_name(value, "outputs.name")

    @field_validator("destination")
    @classmethod
    def _destination(cls, value: str) -> str:
        return _sr_uri(value, "outputs.destination")

    @field_validator("source")
    @classmethod
    def _source(cls, value: str | None) -> str | None:
        return None if value is None else _sandbox_path(value, "outputs.source")


class Resources(Strict):
    instance_count: int = Field(default=1, ge=1, le=16)
    cpus: float = Field(default=1.0, gt=0, le=64)
    memory_mb: int = Field(default=4096, ge=128, le=1024 * 1024)
    scratch_mb: int = Field(default=2048, ge=16, le=1024 * 1024)
    max_runtime_seconds: int = Field(default=86400, ge=1, le=28 * 86400)


class Security(Strict):
    network_isolation: bool = True
    volume_kms_key: str = Field(default="", max_length=256)
    inter_node_encryption: bool = True


class Spot(Strict):
    use_spot: bool = False
    max_wait_seconds: int | None = Field(default=None, ge=1, le=28 * 86400)
    checkpoint_uri: str | None = None

    @field_validator("checkpoint_uri")
    @classmethod
    def _uri(cls, value: str | None) -> str | None:
        return None if value is None else _sr_uri(value, "spot.checkpoint_uri")


class ExperimentConfig(Strict):
    experiment_name: str
    trial_name: str
    trial_component_display_name: str | None = Field(default=None, max_length=128)


class MetricDefinition(Strict):
    name: str = Field(max_length=128)
    regex: str = Field(max_length=512)

    @field_validator("regex")
    @classmethod
    def _regex(cls, value: str) -> str:
        try:
            compiled = re.compile(value)
        except re.error as exc:
            raise InvalidInput(
                f"metric regex {value!r} does not compile: {exc}", field="metric_definitions.regex"
            ) from None
        if compiled.groups < 1:
            raise InvalidInput(
                f"metric regex {value!r} needs one group capturing the value", field="metric_definitions.regex"
            )
        return value


class JobSpec(Strict):
    """What to run, on what, where the results go, and under which controls."""

    name: str
    team: str
    kind: JobKind
    runtime: str = "default"
    code: CodeSpec
    inputs: list[InputChannel] = Field(default_factory=list, max_length=32)
    outputs: list[OutputChannel] = Field(default_factory=list, max_length=32)
    hyperparameters: dict[str, str | int | float | bool] = Field(default_factory=dict)
    environment: dict[str, str] = Field(default_factory=dict)
    resources: Resources = Field(default_factory=Resources)
    security: Security = Field(default_factory=Security)
    spot: Spot = Field(default_factory=Spot)
    experiment_config: ExperimentConfig | None = None
    metric_definitions: list[MetricDefinition] = Field(default_factory=list, max_length=64)
    tags: dict[str, str] = Field(default_factory=dict)
    provenance: dict[str, Any] = Field(default_factory=dict)
    # Object versions to read instead of the latest (uri -> version id): how reproduction pins inputs.
    input_versions: dict[str, str] = Field(default_factory=dict, max_length=10_000)

    @model_validator(mode="after")
    def _check(self) -> JobSpec:
        check_name(self.name, "name")
        check_name(self.team, "team")
        check_name(self.runtime, "runtime")
        names = [c.name for c in self.inputs]
        if len(set(names)) != len(names):
            raise InvalidInput("two input channels share a name", field="inputs.name")
        outs = [o.name for o in self.outputs]
        if len(set(outs)) != len(outs):
            raise InvalidInput("two outputs share a name", field="outputs.name")
        for name in self.environment:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,127}", name) or name.startswith(("SM_", "STRONGROOM_")):
                raise InvalidInput(f"environment variable {name!r} is invalid or reserved", field="environment")
        wait = self.spot.max_wait_seconds
        if self.spot.use_spot and wait is not None and wait < self.resources.max_runtime_seconds:
            raise InvalidInput(
                "spot.max_wait_seconds must be at least resources.max_runtime_seconds",
                field="spot.max_wait_seconds",
            )
        if self.kind == "training" and not self.outputs:
            raise InvalidInput(
                "a training job needs an output for its model (outputs: [{name: model, destination: sr://...}])",
                field="outputs",
            )
        return self

    def program_environment(self, instance_count: int) -> dict[str, str]:
        """What the job's program gets on top of the sandbox's environment: the user's
        ``environment``, then the managed container's ``SM_*`` contract, which it cannot override."""
        env = dict(self.environment)
        env.update(
            {
                "SM_MODEL_DIR": contract.MODEL_DIR,
                "SM_OUTPUT_DIR": contract.OUTPUT_DIR,
                "SM_OUTPUT_DATA_DIR": f"{contract.OUTPUT_DIR}/data",
                "SM_INPUT_CONFIG_DIR": contract.CONFIG_DIR,
                "SM_CHECKPOINT_DIR": contract.CHECKPOINT_DIR,
                "SM_CHANNELS": json.dumps([c.name for c in self.inputs]),
                "SM_HPS": json.dumps(self.hyperparameters),
                "SM_CURRENT_HOST": "algo-1",
                "SM_HOSTS": json.dumps([f"algo-{i + 1}" for i in range(instance_count)]),
                "SM_NUM_CPUS": str(os.cpu_count() or 1),
                "STRONGROOM_JOB": self.srn,
                "STRONGROOM_SOCKET": contract.SOCKET,
                "STRONGROOM_TOKEN_FILE": f"{contract.RUN_DIR}/token",
                "PYTHONUNBUFFERED": "1",
            }
        )
        for channel in self.inputs:
            env[f"SM_CHANNEL_{channel.name.upper().replace('-', '_')}"] = self.input_destination(channel)
        return env

    def early_start(self) -> dict[str, Any] | None:
        """For the built-in XGBoost on one instance (platform code, no user code): the program the
        job agent starts before anything else, so its interpreter and imports overlap the agent's
        own and the input download; it then waits for the agent's word that its inputs are in place.
        The executor writes it into the job's config, so the agent needs no model of the spec first."""
        if self.code.algorithm != "xgboost" or self.resources.instance_count > 1:
            return None
        return {
            "module": BUILTIN_ALGORITHMS[self.code.algorithm],
            "arguments": list(self.code.arguments),
            "environment": self.program_environment(1),
        }

    def input_destination(self, channel: InputChannel) -> str:
        if channel.destination:
            return channel.destination
        if self.kind == "processing":
            return f"{ML_ROOT}/processing/input/{channel.name}"
        return f"{ML_ROOT}/input/data/{channel.name}"

    def output_source(self, output: OutputChannel) -> str:
        if output.source:
            return output.source
        if self.kind == "training":
            return f"{ML_ROOT}/model"
        if self.kind == "transform":
            return f"{ML_ROOT}/transform/output"
        return f"{ML_ROOT}/processing/output/{output.name}"

    @property
    def srn(self) -> str:
        return f"srn:strongroom:{self.team}:job/{self.name}"


class StatusTransition(BaseModel):
    status: str
    start: dt.datetime
    end: dt.datetime | None = None
    message: str = ""


# What each secondary status is spent on, as a user reads the timeline.
PHASES = {
    "Starting": "sandbox start",
    "Downloading": "input download and decryption",
    "Parsing": "parsing",
    "Training": "training",
    "Processing": "processing",
    "Transforming": "transforming",
    "Uploading": "output encryption and upload",
    "Completing": "completion (outputs, lineage)",
    "Interrupted": "interrupted, waiting to resume",
    "Stopping": "stopping",
}


class TimelinePhase(BaseModel):
    """One phase of a job's life and how long it took (from the status transitions)."""

    phase: str
    start: dt.datetime
    end: dt.datetime | None = None
    seconds: float | None = None


class ResolvedInput(BaseModel):
    name: str
    uri: str
    version_id: str
    sha256: str
    size: int


class ProducedOutput(BaseModel):
    name: str
    uri: str
    version_id: str
    sha256: str
    size: int


class Job(BaseModel):
    """A job as the platform reports it (``jobs[-1].describe()``)."""

    srn: str
    name: str
    team: str
    kind: JobKind
    spec: JobSpec
    status: JobStatus
    secondary_status: str
    status_transitions: list[StatusTransition]
    failure_reason: str = ""
    created_by: str
    role: str
    created_at: dt.datetime
    started_at: dt.datetime | None = None
    ended_at: dt.datetime | None = None
    attempts: int = 0
    billable_seconds: float = 0.0
    total_seconds: float = 0.0
    spot_savings_percent: float | None = None
    exit_code: int | None = None
    inputs_resolved: list[ResolvedInput] = Field(default_factory=list)
    outputs_produced: list[ProducedOutput] = Field(default_factory=list)
    runtime_version: dict[str, str] = Field(default_factory=dict)
    code_resolved: dict[str, Any] = Field(default_factory=dict)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def timeline(self) -> list[TimelinePhase]:
        """Where the time went: queue, sandbox start, input download and decryption, parsing (the
        built-in XGBoost), training or processing, output encryption and upload, completion (the
        sandbox is gone; outputs and lineage are recorded); per attempt. Each phase starts when the
        platform saw it start, so the phases add up to the job's total time."""
        phases: list[TimelinePhase] = []
        for index, step in enumerate(self.status_transitions):
            if step.status in TERMINAL:
                continue
            name = PHASES.get(step.status, step.status)
            if index == 0 and step.status == "Starting":
                name = "queue"
            seconds = None if step.end is None else round((step.end - step.start).total_seconds(), 3)
            phases.append(TimelinePhase(phase=name, start=step.start, end=step.end, seconds=seconds))
        return phases


class LogLine(BaseModel):
    seq: int
    time: dt.datetime
    stream: str
    text: str


class MetricPoint(BaseModel):
    name: str
    step: int
    value: float
    time: dt.datetime
