"""Model monitoring in the shape the workshop's users know (notebook 02, steps 8-12).

monitor = DefaultModelMonitor(role="MLOpsEngineer", volume_kms_key="risk-key", session=s, team="risk")
monitor.suggest_baseline(baseline_dataset="sr://risk-data/train_headers.csv",
                         dataset_format=DatasetFormat.csv(header=True),
                         output_s3_uri="sr://risk-models/baselining/results", excluded_columns=["Label"])
monitor.create_monitoring_schedule(monitor_schedule_name="credit-monitor", endpoint_input="xgb-endpoint",
                                   output_s3_uri="sr://risk-models/reports",
                                   schedule_cron_expression=CronExpressionGenerator.hourly())
monitor.run_now(wait=True)
monitor.latest_monitoring_constraint_violations().frame()

Feature-attribution drift (the model now relies on other features) is the same with
:class:`ModelExplainabilityMonitor`: ``suggest_baseline(..., model_uri=...)`` writes the model's
global SHAP values (``analysis.json``), ``create_monitoring_schedule(..., analysis_config=...)``
checks each window's attributions against them (nDCG < 0.9 is a ``feature_attribution_drift_check``).
"""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from strongroom.alerts.models import TeamWebhook
from strongroom.core.errors import InvalidInput, StrongroomError
from strongroom.jobs.models import Job
from strongroom.monitor.models import EXECUTION_DONE, Execution, Schedule
from strongroom.sdk.jobs import RunningJob, _environment, default_team
from strongroom.sdk.paths import q
from strongroom.sdk.resources import _Client
from strongroom.storage.keys import parse_uri

if TYPE_CHECKING:
    import pandas as pd

    from strongroom.sdk.session import Session


class MonitoringClient(_Client):
    """The REST calls (``session.monitoring``); :class:`DefaultModelMonitor` is built on them."""

    def suggest_baseline(self, team: str, spec: dict[str, Any], *, idempotency_key: str | None = None) -> Job:
        return self._s.call(
            "POST",
            f"/api/v1/teams/{q(team)}/monitoring/baselines",
            Job,
            json_body=spec,
            idempotency_key=idempotency_key,
        )

    def create_schedule(self, team: str, spec: dict[str, Any], *, idempotency_key: str | None = None) -> Schedule:
        return self._s.call(
            "POST",
            f"/api/v1/teams/{q(team)}/monitoring-schedules",
            Schedule,
            json_body=spec,
            idempotency_key=idempotency_key,
        )

    def describe_schedule(self, team: str, name: str) -> Schedule:
        return self._s.call("GET", f"/api/v1/teams/{q(team)}/monitoring-schedules/{q(name)}", Schedule)

    def list_schedules(self, team: str) -> list[Schedule]:
        return self._pages(f"/api/v1/teams/{q(team)}/monitoring-schedules", Schedule)

    def stop_schedule(self, team: str, name: str) -> Schedule:
        return self._s.call("POST", f"/api/v1/teams/{q(team)}/monitoring-schedules/{q(name)}/stop", Schedule)

    def start_schedule(self, team: str, name: str) -> Schedule:
        return self._s.call("POST", f"/api/v1/teams/{q(team)}/monitoring-schedules/{q(name)}/start", Schedule)

    def delete_schedule(self, team: str, name: str) -> None:
        self._s.request("DELETE", f"/api/v1/teams/{q(team)}/monitoring-schedules/{q(name)}")

    def run_now(
        self, team: str, name: str, start: dt.datetime | None = None, end: dt.datetime | None = None
    ) -> Execution:
        body = {"start": start.isoformat() if start else None, "end": end.isoformat() if end else None}
        return self._s.call(
            "POST", f"/api/v1/teams/{q(team)}/monitoring-schedules/{q(name)}/executions", Execution, json_body=body
        )

    def list_executions(self, team: str, name: str, limit: int = 100) -> list[Execution]:
        path = f"/api/v1/teams/{q(team)}/monitoring-schedules/{q(name)}/executions"
        return self._pages(path, Execution, {"limit": limit})

    def describe_execution(self, team: str, name: str, execution: str) -> Execution:
        path = f"/api/v1/teams/{q(team)}/monitoring-schedules/{q(name)}/executions/{q(execution)}"
        return self._s.call("GET", path, Execution)

    def set_alert_webhook(self, team: str, url: str) -> TeamWebhook:
        """The team's own https:// webhook for its monitoring alerts (a DataScienceAdmin call)."""
        return self._s.call("PUT", f"/api/v1/teams/{q(team)}/alert-webhook", TeamWebhook, json_body={"url": url})

    def describe_alert_webhook(self, team: str) -> TeamWebhook:
        return self._s.call("GET", f"/api/v1/teams/{q(team)}/alert-webhook", TeamWebhook)

    def delete_alert_webhook(self, team: str) -> None:
        self._s.request("DELETE", f"/api/v1/teams/{q(team)}/alert-webhook")

    def wait_execution(self, team: str, name: str, execution: str, timeout: float = 600.0) -> Execution:
        """Poll until the execution ends (any final status; read ``status`` and ``exit_message``)."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.describe_execution(team, name, execution)
            if found.status in EXECUTION_DONE:
                return found
            if time.monotonic() > deadline:
                raise TimeoutError(f"monitoring execution {execution} still {found.status} after {timeout:.0f} s")
            time.sleep(1.0)


class DatasetFormat:
    """``DatasetFormat.csv(header=True)``: how the baseline dataset is written."""

    @staticmethod
    def csv(header: bool = True, output_columns_position: str = "START") -> dict[str, Any]:
        return {"csv": {"header": header, "output_columns_position": output_columns_position}}


class CronExpressionGenerator:
    """Schedule expressions: ``hourly()``, ``daily(hour)``; near-real-time with ``every_minutes``."""

    @staticmethod
    def hourly() -> str:
        return "cron(0 * ? * * *)"

    @staticmethod
    def daily(hour: int = 0) -> str:
        if not 0 <= hour <= 23:
            raise InvalidInput("hour must be between 0 and 23", field="hour")
        return f"cron(0 {hour} ? * * *)"

    @staticmethod
    def daily_every_x_hours(hour_interval: int, starting_hour: int = 0) -> str:
        return f"cron(0 {starting_hour}/{hour_interval} ? * * *)"


class MonitoringFile:
    """A JSON file the monitor wrote (``statistics.json``, ``constraints.json``,
    ``constraint_violations.json``): ``body_dict`` and a per-feature DataFrame ``frame()``."""

    def __init__(self, body_dict: dict[str, Any], file_s3_uri: str, session: Session | None = None) -> None:
        self.body_dict = body_dict
        self.file_s3_uri = file_s3_uri
        self.session = session

    @classmethod
    def from_s3_uri(cls, uri: str, session: Session) -> MonitoringFile:
        bucket, key = parse_uri(uri)
        return cls(json.loads(session.buckets.get_object(bucket, key)), uri, session)

    def frame(self) -> pd.DataFrame:
        """One row per feature (or per violation), nested fields flattened (``pandas.json_normalize``)."""
        import pandas as pd

        from strongroom.monitor.constraints import constraints_frame, statistics_frame

        if "violations" in self.body_dict:
            return pd.json_normalize(self.body_dict["violations"])
        if "explanations" in self.body_dict:  # analysis.json: one row per feature, most important first
            method = next(iter(self.body_dict["explanations"].values()))
            values = next(iter(method.values()))["global_shap_values"]
            frame = pd.DataFrame({"name": list(values), "mean_abs_shap": list(values.values())})
            return frame.sort_values("mean_abs_shap", ascending=False, kind="stable").reset_index(drop=True)
        if "dataset" in self.body_dict:
            return statistics_frame(self.body_dict)
        return constraints_frame(self.body_dict)

    def save(self, uri: str | None = None) -> str:
        """Write ``body_dict`` (edited thresholds, say) to ``uri`` (default: where it came from); the new URI."""
        if self.session is None:
            raise InvalidInput("this file has no session to save through", field="session")
        target = uri or self.file_s3_uri
        bucket, key = parse_uri(target)
        self.session.buckets.put_object(bucket, key, json.dumps(self.body_dict, indent=2).encode())
        self.file_s3_uri = target
        return target


class MonitoringExecution:
    """One execution of a schedule: ``describe()``, ``constraint_violations()``, ``statistics()``."""

    def __init__(self, session: Session, team: str, schedule: str, execution: Execution) -> None:
        self.session, self.team, self.schedule, self.execution = session, team, schedule, execution

    @property
    def id(self) -> str:
        return self.execution.id

    def refresh(self) -> Execution:
        self.execution = self.session.monitoring.describe_execution(self.team, self.schedule, self.execution.id)
        return self.execution

    def describe(self) -> dict[str, Any]:
        """Status, exit message, window, job and output URIs (``MonitoringExecutionStatus`` etc.)."""
        found = self.refresh()
        described = found.model_dump(mode="json")
        described.update(
            {
                "MonitoringExecutionStatus": found.status,
                "ExitMessage": found.exit_message,
                "ProcessingJobName": found.job_name,
                "MonitoringScheduleName": self.schedule,
            }
        )
        return described

    def wait(self, timeout: float = 600.0) -> Execution:
        self.execution = self.session.monitoring.wait_execution(self.team, self.schedule, self.execution.id, timeout)
        return self.execution

    def _file(self, name: str) -> MonitoringFile:
        found = self.refresh()
        if found.status not in ("Completed", "CompletedWithViolations"):
            raise InvalidInput(
                f"execution {found.id} is {found.status} and has no {name}: {found.exit_message}", field="execution"
            )
        return MonitoringFile.from_s3_uri(f"{found.output_uri}/{name}", self.session)

    def constraint_violations(self) -> MonitoringFile:
        return self._file("constraint_violations.json")

    def statistics(self) -> MonitoringFile:
        return self._file("statistics.json")

    def analysis(self) -> MonitoringFile:
        """An explainability execution's window attributions (``analysis.json``)."""
        return self._file("analysis.json")

    def report(self) -> str:
        """The execution's self-contained HTML report."""
        found = self.refresh()
        bucket, key = parse_uri(f"{found.output_uri}/report.html")
        return self.session.buckets.get_object(bucket, key).decode()


class DefaultModelMonitor:
    """Baselines and monitoring schedules for one team's endpoint.

    ``role`` names the role the monitor's jobs act as (the caller's grant; MLOpsEngineer by the
    default policy), ``volume_kms_key`` the team key its jobs' volumes and outputs use.
    """

    def __init__(
        self,
        role: str = "MLOpsEngineer",
        instance_count: int = 1,
        instance_type: str = "ml.m5.xlarge",
        volume_size_in_gb: int = 1,
        volume_kms_key: str | None = None,
        output_kms_key: str | None = None,
        max_runtime_in_seconds: int = 3600,
        base_job_name: str | None = None,
        network_config: Any = None,
        *,
        session: Session | None = None,
        team: str | None = None,
        memory_mb: int = 2048,
    ) -> None:
        from strongroom.sdk.session import Session

        self.role = role
        self.session = session or Session()
        self.team = team or default_team(self.session)
        self.instance_count = instance_count
        self.instance_type = instance_type
        # the notebook's team key when not given (as the jobs SDK does), else the team key's alias
        self.volume_kms_key = volume_kms_key or output_kms_key or _environment("KMS_KEY", "") or "default"
        self.max_runtime_in_seconds = max_runtime_in_seconds
        self.base_job_name = base_job_name or "baseline"
        self.resources = {
            "instance_count": instance_count,
            "memory_mb": memory_mb,
            "scratch_mb": max(64, min(volume_size_in_gb, 64) * 1024),
            "max_runtime_seconds": max(60, max_runtime_in_seconds),
            "volume_kms_key": self.volume_kms_key,
        }
        self.latest_baselining_job: RunningJob | None = None
        self.baseline_output_uri: str | None = None
        self.monitoring_schedule_name: str | None = None
        self.excluded_columns: list[str] = []

    # -- baseline -------------------------------------------------------------------------------

    def suggest_baseline(
        self,
        baseline_dataset: str,
        dataset_format: dict[str, Any] | None = None,
        output_s3_uri: str | None = None,
        *,
        excluded_columns: Sequence[str] = (),
        feature_names: Sequence[str] = (),
        job_name: str | None = None,
        wait: bool = True,
        logs: bool = False,
    ) -> RunningJob:
        """Start the baseline job: ``statistics.json`` and ``constraints.json`` of the dataset
        (less ``excluded_columns``, the label) in ``output_s3_uri``."""
        if not output_s3_uri:
            raise InvalidInput("output_s3_uri (an sr:// prefix for the baseline files) is needed", field="output_uri")
        return self._suggest(
            baseline_dataset, dataset_format, output_s3_uri, excluded_columns, feature_names, job_name, wait, logs, {}
        )

    def _suggest(
        self,
        baseline_dataset: str,
        dataset_format: dict[str, Any] | None,
        output_s3_uri: str,
        excluded_columns: Sequence[str],
        feature_names: Sequence[str],
        job_name: str | None,
        wait: bool,
        logs: bool,
        extra: dict[str, Any],
    ) -> RunningJob:
        header = bool((dataset_format or DatasetFormat.csv()).get("csv", {}).get("header", True))
        name = job_name or f"{self.base_job_name}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:4]}"[:63]
        spec = {
            "job_name": name,
            "baseline_dataset": baseline_dataset,
            "output_uri": output_s3_uri.rstrip("/"),
            "header": header,
            "feature_names": list(feature_names),
            "excluded_columns": list(excluded_columns),
            "resources": self.resources,
            **extra,
        }
        job = self.session.monitoring.suggest_baseline(self.team, spec, idempotency_key=uuid.uuid4().hex)
        running = RunningJob(self.session, self.team, job.name)
        self.latest_baselining_job = running
        self.baseline_output_uri = output_s3_uri.rstrip("/")
        self.excluded_columns = list(excluded_columns)
        if wait:
            running.wait(logs=logs)
        return running

    def baseline_statistics(self) -> MonitoringFile:
        """The latest baseline's ``statistics.json``."""
        return MonitoringFile.from_s3_uri(f"{self._baseline()}/statistics.json", self.session)

    def suggested_constraints(self) -> MonitoringFile:
        """The latest baseline's ``constraints.json`` (edit ``body_dict`` and ``save()`` to change thresholds)."""
        return MonitoringFile.from_s3_uri(f"{self._baseline()}/constraints.json", self.session)

    def _baseline(self) -> str:
        if self.baseline_output_uri is None:
            raise InvalidInput("no baseline yet: call suggest_baseline first", field="baseline")
        return self.baseline_output_uri

    # -- schedule -------------------------------------------------------------------------------

    def create_monitoring_schedule(
        self,
        monitor_schedule_name: str | None = None,
        endpoint_input: str | None = None,
        output_s3_uri: str | None = None,
        statistics: MonitoringFile | str | None = None,
        constraints: MonitoringFile | str | None = None,
        schedule_cron_expression: str | None = None,
        enable_cloudwatch_metrics: bool = True,
        *,
        every_minutes: int | None = None,
        every_records: int | None = None,
        excluded_columns: Sequence[str] | None = None,
    ) -> Schedule:
        """A schedule checking the endpoint's captured requests against the baseline.

        With neither ``schedule_cron_expression`` nor ``every_minutes``/``every_records`` it runs hourly.
        """
        if not monitor_schedule_name or not endpoint_input or not output_s3_uri:
            raise InvalidInput(
                "monitor_schedule_name, endpoint_input and output_s3_uri are needed", field="monitor_schedule_name"
            )
        if every_minutes is None and every_records is None and schedule_cron_expression is None:
            schedule_cron_expression = CronExpressionGenerator.hourly()
        spec = {
            "name": monitor_schedule_name,
            "endpoint": endpoint_input,
            "output_uri": output_s3_uri.rstrip("/"),
            "statistics_uri": _uri_of(statistics, self, "statistics.json"),
            "constraints_uri": _uri_of(constraints, self, "constraints.json"),
            "schedule_cron_expression": schedule_cron_expression,
            "every_minutes": every_minutes,
            "every_records": every_records,
            "excluded_columns": list(excluded_columns or []),
            "enable_metrics": enable_cloudwatch_metrics,
            "resources": self.resources,
        }
        return self._create(spec)

    def _create(self, spec: dict[str, Any]) -> Schedule:
        created = self.session.monitoring.create_schedule(self.team, spec, idempotency_key=uuid.uuid4().hex)
        self.monitoring_schedule_name = created.name
        return created

    def _schedule(self) -> str:
        if self.monitoring_schedule_name is None:
            raise InvalidInput("no monitoring schedule yet: call create_monitoring_schedule first", field="schedule")
        return self.monitoring_schedule_name

    def describe_schedule(self) -> dict[str, Any]:
        found = self.session.monitoring.describe_schedule(self.team, self._schedule())
        described = found.model_dump(mode="json")
        described.update({"MonitoringScheduleName": found.name, "MonitoringScheduleStatus": found.status})
        return described

    def stop_monitoring_schedule(self) -> Schedule:
        return self.session.monitoring.stop_schedule(self.team, self._schedule())

    def start_monitoring_schedule(self) -> Schedule:
        return self.session.monitoring.start_schedule(self.team, self._schedule())

    def delete_monitoring_schedule(self) -> None:
        self.session.monitoring.delete_schedule(self.team, self._schedule())
        self.monitoring_schedule_name = None

    # -- executions -----------------------------------------------------------------------------

    def run_now(
        self,
        start: dt.datetime | None = None,
        end: dt.datetime | None = None,
        *,
        wait: bool = True,
        timeout: float = 600.0,
    ) -> MonitoringExecution:
        """One execution over ``[start, end)``, by default over the capture since the last window.
        It starts once the window's capture is uploaded (``monitor_capture_lag_seconds``)."""
        name = self._schedule()
        execution = MonitoringExecution(
            self.session, self.team, name, self.session.monitoring.run_now(self.team, name, start, end)
        )
        if wait:
            execution.wait(timeout)
        return execution

    def list_executions(self) -> list[MonitoringExecution]:
        """Oldest first, as the workshop's notebook reads them (``executions[-1]`` is the latest)."""
        name = self._schedule()
        found = self.session.monitoring.list_executions(self.team, name)
        return [MonitoringExecution(self.session, self.team, name, e) for e in reversed(found)]

    def latest_monitoring_constraint_violations(self) -> MonitoringFile | None:
        """The violations of the latest execution that completed (None if none has)."""
        for execution in reversed(self.list_executions()):
            if execution.execution.status in ("Completed", "CompletedWithViolations"):
                return execution.constraint_violations()
        return None

    def latest_monitoring_statistics(self) -> MonitoringFile | None:
        for execution in reversed(self.list_executions()):
            if execution.execution.status in ("Completed", "CompletedWithViolations"):
                return execution.statistics()
        return None


class ModelExplainabilityMonitor(DefaultModelMonitor):
    """Feature-attribution drift of one team's endpoint (the managed service's explainability monitor).

    The baseline is the endpoint model's global SHAP values (mean |TreeSHAP| per feature, exact,
    XGBoost ``pred_contribs``) over the training data; each execution explains the window's
    captured requests with the same model and compares the two rankings with nDCG.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.base_job_name == "baseline":
            self.base_job_name = "explainability-baseline"

    def suggest_baseline(  # type: ignore[override]
        self,
        baseline_dataset: str,
        model_uri: str,
        dataset_format: dict[str, Any] | None = None,
        output_s3_uri: str | None = None,
        *,
        excluded_columns: Sequence[str] = (),
        feature_names: Sequence[str] = (),
        job_name: str | None = None,
        wait: bool = True,
        logs: bool = False,
    ) -> RunningJob:
        """Start the baseline job: ``analysis.json``, the global SHAP values of ``model_uri`` (the
        ``model.tar.gz`` the endpoint serves) over the dataset less ``excluded_columns`` (the label),
        in ``output_s3_uri``."""
        if not output_s3_uri:
            raise InvalidInput("output_s3_uri (an sr:// prefix for the baseline files) is needed", field="output_uri")
        extra = {"monitoring_type": "ModelExplainability", "model_uri": model_uri}
        return self._suggest(
            baseline_dataset,
            dataset_format,
            output_s3_uri,
            excluded_columns,
            feature_names,
            job_name,
            wait,
            logs,
            extra,
        )

    def baseline_analysis(self) -> MonitoringFile:
        """The latest baseline's ``analysis.json`` (``frame()``: features by mean |SHAP|)."""
        return MonitoringFile.from_s3_uri(f"{self._baseline()}/analysis.json", self.session)

    def create_monitoring_schedule(  # type: ignore[override]
        self,
        monitor_schedule_name: str | None = None,
        endpoint_input: str | None = None,
        output_s3_uri: str | None = None,
        analysis_config: MonitoringFile | str | None = None,
        schedule_cron_expression: str | None = None,
        enable_cloudwatch_metrics: bool = True,
        *,
        every_minutes: int | None = None,
        every_records: int | None = None,
        attribution_threshold: float | None = None,
    ) -> Schedule:
        """A schedule checking the attributions of the endpoint's captured requests against the
        baseline's (``analysis_config``: its ``analysis.json``, by default the latest baseline's);
        an nDCG below ``attribution_threshold`` (default 0.9) is a violation. Hourly by default."""
        if not monitor_schedule_name or not endpoint_input or not output_s3_uri:
            raise InvalidInput(
                "monitor_schedule_name, endpoint_input and output_s3_uri are needed", field="monitor_schedule_name"
            )
        if every_minutes is None and every_records is None and schedule_cron_expression is None:
            schedule_cron_expression = CronExpressionGenerator.hourly()
        spec = {
            "name": monitor_schedule_name,
            "endpoint": endpoint_input,
            "output_uri": output_s3_uri.rstrip("/"),
            "monitoring_type": "ModelExplainability",
            "analysis_uri": _uri_of(analysis_config, self, "analysis.json"),
            "attribution_threshold": attribution_threshold,
            "schedule_cron_expression": schedule_cron_expression,
            "every_minutes": every_minutes,
            "every_records": every_records,
            "enable_metrics": enable_cloudwatch_metrics,
            "resources": self.resources,
        }
        return self._create(spec)

    def latest_monitoring_analysis(self) -> MonitoringFile | None:
        """The window attributions of the latest execution that read captured rows (None if none has)."""
        for execution in reversed(self.list_executions()):
            if execution.execution.status in ("Completed", "CompletedWithViolations") and execution.execution.rows:
                return execution.analysis()
        return None


def _uri_of(given: MonitoringFile | str | None, monitor: DefaultModelMonitor, name: str) -> str:
    if isinstance(given, MonitoringFile):
        return given.file_s3_uri
    if isinstance(given, str) and given:
        return given
    try:
        return f"{monitor._baseline()}/{name}"
    except StrongroomError:
        raise InvalidInput(f"pass {name.split('.')[0]}= (or call suggest_baseline first)", field=name) from None


__all__ = [
    "CronExpressionGenerator",
    "DatasetFormat",
    "DefaultModelMonitor",
    "ModelExplainabilityMonitor",
    "MonitoringClient",
    "MonitoringExecution",
    "MonitoringFile",
]
