"""Serving entities and the specs users send: models, endpoint configs, endpoints."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from strongroom.core.names import check_name
from strongroom.storage.keys import parse_uri

EndpointStatus = Literal["Creating", "InService", "Updating", "Failed", "Deleting"]
RUNTIMES = ("xgboost", "script")  # script: the inference.py in the model archive (docs/serving.md)
MAX_INSTANCE_COUNT = 8


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ModelSpec(Strict):
    """``CreateModel``: a model archive (or a training job's output) plus a runtime.

    Give either ``model_data`` (an ``sr://`` ``model.tar.gz``) or ``training_job`` (its output is used).
    Without a ``name``, a training job's model is named as the workshop names it: ``<training-job>-model``.
    """

    name: str = ""
    model_data: str = ""
    training_job: str = ""
    runtime: str = "xgboost"
    network_isolation: bool = True
    kms_key: str = "default"
    tags: dict[str, str] = Field(default_factory=dict, max_length=50)

    @model_validator(mode="after")
    def _check(self) -> ModelSpec:
        if not self.name and self.training_job:
            self.name = f"{self.training_job}-model"
        check_name(self.name, "name")
        if bool(self.model_data) == bool(self.training_job):
            raise ValueError("give exactly one of model_data (an sr:// model.tar.gz) or training_job")
        if self.model_data:
            parse_uri(self.model_data)
        if self.training_job:
            check_name(self.training_job, "training_job")
        if self.runtime not in RUNTIMES:
            raise ValueError(f"runtime must be one of {', '.join(RUNTIMES)}")
        return self


class Model(BaseModel):
    srn: str
    team: str
    name: str
    model_data: str
    version_id: str
    sha256: str
    runtime: str
    network_isolation: bool
    kms_key: str
    source_job: str = ""
    tags: dict[str, str] = Field(default_factory=dict)
    created_by: str
    created_at: dt.datetime


class CaptureContentTypeHeader(Strict):
    csv_content_types: list[str] = Field(default_factory=lambda: ["text/csv"], alias="CsvContentTypes")
    json_content_types: list[str] = Field(default_factory=lambda: ["application/json"], alias="JsonContentTypes")


class CaptureOption(Strict):
    capture_mode: Literal["Input", "Output"] = Field(alias="CaptureMode")


class DataCaptureConfig(Strict):
    """Shaped as the workshop writes it (field names as the managed service spells them)."""

    enable_capture: bool = Field(default=True, alias="EnableCapture")
    initial_sampling_percentage: int = Field(default=100, ge=0, le=100, alias="InitialSamplingPercentage")
    destination_s3_uri: str = Field(alias="DestinationS3Uri")
    capture_options: list[CaptureOption] = Field(
        default_factory=lambda: [CaptureOption(CaptureMode="Input"), CaptureOption(CaptureMode="Output")],
        alias="CaptureOptions",
        min_length=1,
        max_length=2,
    )
    capture_content_type_header: CaptureContentTypeHeader = Field(
        default_factory=CaptureContentTypeHeader, alias="CaptureContentTypeHeader"
    )

    @model_validator(mode="after")
    def _check(self) -> DataCaptureConfig:
        parse_uri(self.destination_s3_uri)
        return self

    @property
    def modes(self) -> set[str]:
        return {o.capture_mode for o in self.capture_options}


class ProductionVariant(Strict):
    variant_name: str = Field(default="AllTraffic", alias="VariantName", pattern=r"^[A-Za-z0-9][A-Za-z0-9-]{0,62}$")
    model_name: str = Field(alias="ModelName")
    initial_instance_count: int = Field(default=1, ge=1, le=MAX_INSTANCE_COUNT, alias="InitialInstanceCount")
    initial_variant_weight: float = Field(default=1.0, ge=0.0, le=1000.0, alias="InitialVariantWeight")
    instance_type: str = Field(default="ml.m4.xlarge", alias="InstanceType", max_length=64)


class EndpointConfigSpec(Strict):
    name: str
    production_variants: list[ProductionVariant] = Field(alias="ProductionVariants", min_length=1, max_length=10)
    data_capture_config: DataCaptureConfig | None = Field(default=None, alias="DataCaptureConfig")
    kms_key: str = "default"

    @model_validator(mode="after")
    def _check(self) -> EndpointConfigSpec:
        check_name(self.name, "name")
        for variant in self.production_variants:
            check_name(variant.model_name, "ProductionVariants.ModelName")
        names = [v.variant_name for v in self.production_variants]
        if len(set(names)) != len(names):
            raise ValueError(f"ProductionVariants: variant names must be unique, got {names}")
        return self


class EndpointConfig(BaseModel):
    srn: str
    team: str
    name: str
    spec: EndpointConfigSpec
    created_by: str
    created_at: dt.datetime


class EndpointSpec(Strict):
    name: str
    endpoint_config_name: str = Field(alias="EndpointConfigName")

    @model_validator(mode="after")
    def _check(self) -> EndpointSpec:
        check_name(self.name, "name")
        check_name(self.endpoint_config_name, "EndpointConfigName")
        return self


class UpdateEndpointSpec(Strict):
    """``UpdateEndpoint``: move an InService endpoint to another endpoint config (blue-green)."""

    endpoint_config_name: str = Field(alias="EndpointConfigName")

    @model_validator(mode="after")
    def _check(self) -> UpdateEndpointSpec:
        check_name(self.endpoint_config_name, "EndpointConfigName")
        return self


class CaptureStats(BaseModel):
    captured: int = 0
    dropped: int = 0
    pending: int = 0
    uploaded_objects: int = 0
    # Group commits: each synchronous write made every record waiting durable at once (captured / flushes per write).
    flushes: int = 0
    # Seconds since the oldest captured record not yet uploaded to the bucket was spooled (0: none).
    lag_seconds: float = 0.0


class InvocationStats(BaseModel):
    """Counted by this platform process since it started (not persisted)."""

    invocations: int = 0
    client_errors: int = 0
    server_errors: int = 0
    mean_latency_ms: float = 0.0


class LatencySummary(BaseModel):
    """A latency histogram: cumulative counts per upper bound (seconds), as Prometheus keeps it."""

    count: int = 0
    sum_seconds: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    buckets: dict[str, int] = Field(default_factory=dict)


class VariantMetrics(BaseModel):
    """One variant's counters since this platform process started (not persisted)."""

    variant: str
    invocations: int = 0
    client_errors: int = 0
    server_errors: int = 0
    model_latency: LatencySummary = Field(default_factory=LatencySummary)
    overhead_latency: LatencySummary = Field(default_factory=LatencySummary)


class EndpointMetrics(BaseModel):
    """``GET .../endpoints/<name>/metrics``: per-variant counters and histograms, and capture."""

    team: str
    endpoint: str
    variants: list[VariantMetrics] = Field(default_factory=list)
    capture: CaptureStats = Field(default_factory=CaptureStats)


class Endpoint(BaseModel):
    srn: str
    team: str
    name: str
    endpoint_config_name: str
    status: EndpointStatus
    failure_reason: str = ""
    url: str
    created_by: str
    created_at: dt.datetime
    updated_at: dt.datetime
    capture: CaptureStats = Field(default_factory=CaptureStats)
    invocations: InvocationStats = Field(default_factory=InvocationStats)
