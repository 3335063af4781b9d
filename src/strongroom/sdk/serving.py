"""Models, endpoint configs, endpoints and predictors, in the shape the workshop's users know.

model = Model(model_data="sr://risk-models/.../model.tar.gz", name="train-1-model", session=s, team="risk")
predictor = model.deploy(initial_instance_count=1, endpoint_name="train-1-endpoint",
                         data_capture_config=DataCaptureConfig(destination_s3_uri="sr://risk-data/capture"))
predictor.predict("1,2,3")   # -> "0.123"
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from strongroom.core.errors import StrongroomError, Unavailable
from strongroom.sdk.paths import q
from strongroom.sdk.resources import _Client
from strongroom.serving.models import DataCaptureConfig as _CaptureConfig
from strongroom.serving.models import Endpoint, EndpointConfig, EndpointMetrics
from strongroom.serving.models import Model as ModelInfo

if TYPE_CHECKING:
    from strongroom.sdk.model_registry import ModelPackage
    from strongroom.sdk.session import Session


def DataCaptureConfig(
    destination_s3_uri: str,
    *,
    enable_capture: bool = True,
    sampling_percentage: int = 100,
    capture_options: Sequence[str] = ("REQUEST", "RESPONSE"),
    csv_content_types: Sequence[str] = ("text/csv",),
    json_content_types: Sequence[str] = ("application/json",),
) -> dict[str, Any]:
    """The data-capture config as the endpoint config API takes it (``DataCaptureConfig`` dict)."""
    modes = {"REQUEST": "Input", "RESPONSE": "Output", "Input": "Input", "Output": "Output"}
    config = {
        "EnableCapture": enable_capture,
        "InitialSamplingPercentage": sampling_percentage,
        "DestinationS3Uri": destination_s3_uri,
        "CaptureOptions": [{"CaptureMode": modes[o]} for o in capture_options],
        "CaptureContentTypeHeader": {
            "CsvContentTypes": list(csv_content_types),
            "JsonContentTypes": list(json_content_types),
        },
    }
    _CaptureConfig.model_validate(config)
    return config


class Models(_Client):
    def create(
        self,
        team: str,
        name: str = "",
        *,
        model_data: str = "",
        training_job: str = "",
        kms_key: str = "default",
        network_isolation: bool = True,
        runtime: str = "xgboost",
        idempotency_key: str | None = None,
    ) -> ModelInfo:
        """``CreateModel``. Without ``name``, a training job's model is named ``<training-job>-model``;
        ``runtime``: ``xgboost`` (built in) or ``script`` (the archive's own ``inference.py``)."""
        body = {
            "name": name,
            "model_data": model_data,
            "training_job": training_job,
            "kms_key": kms_key,
            "network_isolation": network_isolation,
            "runtime": runtime,
        }
        return self._s.call(
            "POST", f"/api/v1/teams/{q(team)}/models", ModelInfo, json_body=body, idempotency_key=idempotency_key
        )

    def describe(self, team: str, name: str) -> ModelInfo:
        return self._s.call("GET", f"/api/v1/teams/{q(team)}/models/{q(name)}", ModelInfo)

    def list(self, team: str) -> list[ModelInfo]:
        return self._pages(f"/api/v1/teams/{q(team)}/models", ModelInfo)

    def delete(self, team: str, name: str) -> None:
        self._s.request("DELETE", f"/api/v1/teams/{q(team)}/models/{q(name)}")


class EndpointConfigs(_Client):
    def create(
        self,
        team: str,
        name: str,
        production_variants: list[dict[str, Any]],
        data_capture_config: dict[str, Any] | None = None,
        kms_key: str = "default",
    ) -> EndpointConfig:
        body: dict[str, Any] = {"name": name, "ProductionVariants": production_variants, "kms_key": kms_key}
        if data_capture_config is not None:
            body["DataCaptureConfig"] = data_capture_config
        return self._s.call("POST", f"/api/v1/teams/{q(team)}/endpoint-configs", EndpointConfig, json_body=body)

    def describe(self, team: str, name: str) -> EndpointConfig:
        return self._s.call("GET", f"/api/v1/teams/{q(team)}/endpoint-configs/{q(name)}", EndpointConfig)

    def list(self, team: str) -> list[EndpointConfig]:
        return self._pages(f"/api/v1/teams/{q(team)}/endpoint-configs", EndpointConfig)

    def delete(self, team: str, name: str) -> None:
        self._s.request("DELETE", f"/api/v1/teams/{q(team)}/endpoint-configs/{q(name)}")


class Endpoints(_Client):
    def create(self, team: str, name: str, endpoint_config_name: str) -> Endpoint:
        body = {"name": name, "EndpointConfigName": endpoint_config_name}
        return self._s.call("POST", f"/api/v1/teams/{q(team)}/endpoints", Endpoint, json_body=body)

    def describe(self, team: str, name: str) -> Endpoint:
        return self._s.call("GET", f"/api/v1/teams/{q(team)}/endpoints/{q(name)}", Endpoint)

    def list(self, team: str) -> list[Endpoint]:
        return self._pages(f"/api/v1/teams/{q(team)}/endpoints", Endpoint)

    def delete(self, team: str, name: str) -> Endpoint:
        return self._s.call("DELETE", f"/api/v1/teams/{q(team)}/endpoints/{q(name)}", Endpoint)

    def update(
        self, team: str, name: str, endpoint_config_name: str, *, wait: bool = False, timeout: float = 300.0
    ) -> Endpoint:
        """``UpdateEndpoint``: serve ``endpoint_config_name`` instead (blue-green, no failed request).

        With ``wait``, return once it is ``InService`` again, and raise ``Unavailable`` with the
        reason if the new config did not start (the endpoint then still serves the old one).
        """
        body = {"EndpointConfigName": endpoint_config_name}
        endpoint = self._s.call("PUT", f"/api/v1/teams/{q(team)}/endpoints/{q(name)}", Endpoint, json_body=body)
        if not wait:
            return endpoint
        endpoint = self.wait(team, name, timeout)
        if endpoint.endpoint_config_name != endpoint_config_name:
            raise Unavailable(f"endpoint {team}/{name} was not updated: {endpoint.failure_reason}")
        return endpoint

    def metrics(self, team: str, name: str) -> EndpointMetrics:
        """Per-variant invocations, 4xx/5xx, latency histograms, and the capture's counters."""
        return self._s.call("GET", f"/api/v1/teams/{q(team)}/endpoints/{q(name)}/metrics", EndpointMetrics)

    def wait(self, team: str, name: str, timeout: float = 120.0) -> Endpoint:
        """Poll until the endpoint leaves ``Creating`` or ``Updating``; raise if it ends ``Failed``."""
        deadline = time.monotonic() + timeout
        while True:
            endpoint = self.describe(team, name)
            if endpoint.status == "Failed":
                raise Unavailable(f"endpoint {team}/{name} failed: {endpoint.failure_reason}")
            if endpoint.status not in ("Creating", "Updating"):
                return endpoint
            if time.monotonic() > deadline:
                raise Unavailable(f"endpoint {team}/{name} is still {endpoint.status} after {timeout:.0f}s")
            time.sleep(0.25)

    def invoke(
        self,
        team: str,
        name: str,
        body: bytes | str,
        content_type: str = "text/csv",
        target_variant: str = "",
        *,
        explain: bool = False,
        accept: str = "",
    ) -> bytes:
        """``InvokeEndpoint``: the raw answer body (``explain``: with SHAP contributions, as JSON,
        or with ``accept="text/csv"`` as CSV rows ``score,contribution...,bias``)."""
        headers = {"Content-Type": content_type}
        if accept:
            headers["Accept"] = accept
        if target_variant:
            headers["X-Target-Variant"] = target_variant
        payload = body.encode() if isinstance(body, str) else body
        path = f"/endpoints/{q(team)}/{q(name)}/invocations"
        params = {"explain": "true"} if explain else None
        return self._s.request_raw("POST", path, content=payload, headers=headers, params=params).content


class CSVSerializer:
    """Rows to headerless CSV (``serializer=CSV``)."""

    content_type = "text/csv"

    def serialize(self, data: Any) -> bytes:
        if isinstance(data, bytes):
            return data
        if isinstance(data, str):
            return data.encode()
        rows = data.tolist() if hasattr(data, "tolist") else list(data)
        if rows and not isinstance(rows[0], list | tuple):
            rows = [rows]
        return "\n".join(
            ",".join(repr(float(v)) if not isinstance(v, int) else str(v) for v in r) for r in rows
        ).encode()


class JSONSerializer:
    content_type = "application/json"

    def serialize(self, data: Any) -> bytes:
        rows = data.tolist() if hasattr(data, "tolist") else data
        return json.dumps({"instances": rows}).encode()


CSV = CSVSerializer()
JSON = JSONSerializer()


class Predictor:
    """Calls one endpoint: ``Predictor(endpoint_name, serializer=CSV, session=s, team=t).predict(row)``."""

    def __init__(self, endpoint_name: str, *, session: Session, team: str, serializer: Any = CSV) -> None:
        self.endpoint_name = endpoint_name
        self.session = session
        self.team = team
        self.serializer = serializer

    def predict(self, data: Any, target_variant: str = "") -> str:
        """The answer as text: one score per line for CSV (``"0.123"`` for one row)."""
        body = self.serializer.serialize(data)
        answer = self.session.endpoints.invoke(
            self.team, self.endpoint_name, body, self.serializer.content_type, target_variant
        )
        return answer.decode()

    def explain(self, data: Any, target_variant: str = "") -> dict[str, Any]:
        """Scores with their exact per-feature SHAP contributions (``?explain=true``, docs/serving.md)."""
        body = self.serializer.serialize(data)
        answer = self.session.endpoints.invoke(
            self.team, self.endpoint_name, body, self.serializer.content_type, target_variant, explain=True
        )
        result: dict[str, Any] = json.loads(answer)
        return result

    def update_endpoint(self, endpoint_config_name: str, *, wait: bool = True) -> Endpoint:
        """``UpdateEndpoint`` to another endpoint config (blue-green; see ``Endpoints.update``)."""
        return self.session.endpoints.update(self.team, self.endpoint_name, endpoint_config_name, wait=wait)

    def delete_endpoint(self) -> None:
        self.session.endpoints.delete(self.team, self.endpoint_name)


class Model:
    """A model archive plus its runtime (the built-in XGBoost, or ``runtime="script"``: the archive's own
    ``inference.py``); ``deploy`` makes config and endpoint; ``register`` makes a package version."""

    def __init__(
        self,
        model_data: str = "",
        *,
        name: str,
        session: Session,
        team: str,
        training_job: str = "",
        kms_key: str = "default",
        runtime: str = "xgboost",
    ) -> None:
        self.model_data, self.name, self.session, self.team = model_data, name, session, team
        self.training_job, self.kms_key, self.runtime = training_job, kms_key, runtime

    def deploy(
        self,
        *,
        initial_instance_count: int = 1,
        endpoint_name: str,
        instance_type: str = "ml.m4.xlarge",
        data_capture_config: dict[str, Any] | None = None,
        wait: bool = True,
        serializer: Any = CSV,
    ) -> Predictor:
        s = self.session
        try:
            s.models.describe(self.team, self.name)
        except StrongroomError:
            s.models.create(
                self.team,
                self.name,
                model_data=self.model_data,
                training_job=self.training_job,
                kms_key=self.kms_key,
                runtime=self.runtime,
            )
        variant = {
            "VariantName": "AllTraffic",
            "ModelName": self.name,
            "InitialInstanceCount": initial_instance_count,
            "InitialVariantWeight": 1.0,
            "InstanceType": instance_type,
        }
        s.endpoint_configs.create(
            self.team, f"{endpoint_name}-config", [variant], data_capture_config, kms_key=self.kms_key
        )
        s.endpoints.create(self.team, endpoint_name, f"{endpoint_name}-config")
        if wait:
            s.endpoints.wait(self.team, endpoint_name)
        return Predictor(endpoint_name, session=s, team=self.team, serializer=serializer)

    def register(
        self,
        *,
        model_package_group_name: str,
        approval_status: str = "PendingManualApproval",
        description: str = "",
    ) -> ModelPackage:
        """Register this model as the group's next version (the training job's model when the
        model was given one and does not exist yet; a data scientist may register)."""
        from strongroom.sdk.model_registry import ModelPackage

        s = self.session
        by_job = bool(self.training_job)
        if by_job:
            try:
                s.models.describe(self.team, self.name)
                by_job = False
            except StrongroomError:
                pass
        info = s.model_registry.register(
            self.team,
            model_package_group_name,
            model_name="" if by_job else self.name,
            training_job=self.training_job if by_job else "",
            approval_status=approval_status,  # type: ignore[arg-type]
            description=description,
        )
        return ModelPackage(info, session=s)
