"""The monitoring service: baselines, schedules, and the executions users start and read.

Every baseline and every execution is a job of kind ``monitoring`` running the built-in
``model-monitor`` algorithm (:mod:`strongroom.monitor.inside.job`) in a sandbox, as the schedule
creator's execution role: its inputs (the baseline files and the window's capture files) are
decrypted only inside the sandbox, its outputs encrypted under the team key. The platform's side
(opening due windows, starting and finishing executions) is :mod:`strongroom.monitor.executions`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from strongroom.core.context import RequestContext
from strongroom.core.errors import Conflict, InvalidInput, NotFound, StrongroomError
from strongroom.db.base import utcnow
from strongroom.db.engine import Database
from strongroom.guard import Guard
from strongroom.jobs.models import Job
from strongroom.jobs.service import JobService
from strongroom.kms.service import KmsService
from strongroom.monitor import timing
from strongroom.monitor.constraints import Constraints
from strongroom.monitor.db import MonitoringExecutionRow, MonitoringScheduleRow
from strongroom.monitor.executions import (
    INPUT,
    METRIC_LINE,
    endpoint_capture,
    find_schedule,
    job_spec,
    new_execution,
    schedule_target,
)
from strongroom.monitor.models import (
    DEFAULT_ATTRIBUTION_THRESHOLD,
    BaselineSpec,
    Execution,
    RunNow,
    Schedule,
    ScheduleSpec,
)
from strongroom.monitor.statistics import DatasetStatistics
from strongroom.policy.engine import Target
from strongroom.storage.keys import parse_uri
from strongroom.storage.service import StorageService


class MonitoringService:
    def __init__(
        self,
        db: Database,
        guard: Guard,
        jobs: JobService,
        storage: StorageService,
        kms: KmsService,
        *,
        capture_lag_seconds: float = 10.0,
    ) -> None:
        self.db = db
        self.guard = guard
        self.jobs = jobs
        self.storage = storage
        self.kms = kms
        self.capture_lag = dt.timedelta(seconds=capture_lag_seconds)
        self.system = RequestContext.system()
        self.wake: Callable[[], None] = lambda: None

    # -- baselines ------------------------------------------------------------------------------

    def suggest_baseline(self, ctx: RequestContext, team: str, spec: BaselineSpec) -> Job:
        """Start a sandboxed job writing ``statistics.json`` and ``constraints.json`` to ``output_uri``
        (``DataQuality``), or the model's global SHAP values over the dataset, ``analysis.json``
        (``ModelExplainability``)."""
        explains = spec.monitoring_type == "ModelExplainability"
        hyper: dict[str, str | int | float | bool] = {
            "mode": "attribution-baseline" if explains else "baseline",
            "header": spec.header,
            "feature_names": json.dumps(spec.feature_names),
            "excluded_columns": json.dumps(spec.excluded_columns),
        }
        inputs = [{"name": "baseline", "source": spec.baseline_dataset, "destination": f"{INPUT}/baseline"}]
        if explains:
            inputs.append({"name": "model", "source": spec.model_uri, "destination": f"{INPUT}/model"})
        job = job_spec(
            team,
            spec.job_name,
            spec.resources,
            inputs=inputs,
            output_uri=spec.output_uri,
            hyperparameters=hyper,
            metrics=[{"name": "rows", "regex": METRIC_LINE + r"rows=(\d+)"}],
        )
        return self.jobs.create_job(ctx, job)

    # -- schedules ------------------------------------------------------------------------------

    def create_schedule(self, ctx: RequestContext, team: str, spec: ScheduleSpec) -> Schedule:
        """``CreateMonitoringSchedule``: check the endpoint and the baseline files, then schedule."""
        target = Target("monitoring-schedule", team, spec.name, owner=ctx.principal.user)
        params = spec.model_dump(mode="json")
        with self.guard.begin(ctx, "CreateMonitoringSchedule", target, params=params) as call:
            self._no_schedule(team, spec.name)
            capture_uri, _ = endpoint_capture(self.db, team, spec.endpoint)
            if not capture_uri:
                raise InvalidInput(
                    f"endpoint {spec.endpoint} has no data capture; monitoring reads its captured requests",
                    field="endpoint",
                )
            features = self._features(ctx, spec)
            threshold = None
            if spec.monitoring_type == "ModelExplainability":
                threshold = (
                    DEFAULT_ATTRIBUTION_THRESHOLD if spec.attribution_threshold is None else spec.attribution_threshold
                )
            self._own_bucket(ctx, team, spec.output_uri, "output_uri")
            try:  # the executions' jobs need it: say so now rather than at the first window
                self.kms.describe_key(ctx, team, spec.resources.volume_kms_key)
            except StrongroomError as exc:
                raise type(exc)(exc.detail, field="resources.volume_kms_key") from None
            now = utcnow()
            cron, expression, next_run = "", "", None
            if spec.schedule_cron_expression is not None:
                cron = timing.cron_expression(spec.schedule_cron_expression)
                expression, next_run = spec.schedule_cron_expression, timing.next_fire(cron, now)
            elif spec.every_minutes is not None:
                expression = f"every {spec.every_minutes} minutes"
                next_run = now + dt.timedelta(minutes=spec.every_minutes)
            else:
                expression = f"every {spec.every_records} records"
            with call.transaction():
                if (replayed := call.replay(Schedule)) is not None:
                    return replayed
                if call.session.scalars(
                    select(MonitoringScheduleRow.id).where(
                        MonitoringScheduleRow.team == team, MonitoringScheduleRow.name == spec.name
                    )
                ).first():
                    raise self._exists(team, spec.name)
                grant = call.decision.grant
                row = MonitoringScheduleRow(
                    id=uuid.uuid4().hex,
                    team=team,
                    name=spec.name,
                    endpoint=spec.endpoint,
                    status="Scheduled",
                    expression=expression,
                    cron=cron,
                    every_minutes=spec.every_minutes,
                    every_records=spec.every_records,
                    output_uri=spec.output_uri.rstrip("/"),
                    statistics_uri=spec.statistics_uri,
                    constraints_uri=spec.constraints_uri,
                    feature_names=features,
                    excluded_columns=list(spec.excluded_columns),
                    enable_metrics=spec.enable_metrics,
                    resources=spec.resources.model_dump(mode="json"),
                    created_by=ctx.principal.user,
                    role=grant.role if grant else "MLOpsEngineer",
                    created_at=now,
                    next_run=next_run,
                    last_window_end=now,
                    failure_reason="",
                    monitoring_type=spec.monitoring_type,
                    analysis_uri=spec.analysis_uri,
                    attribution_threshold=threshold,
                    records_counted=0,
                )
                call.session.add(row)
                call.emit("MonitoringScheduleCreated", schedule=spec.name, endpoint=spec.endpoint)
                created = call.result(row.to_entity())
        self.wake()
        return created

    def describe_schedule(self, ctx: RequestContext, team: str, name: str) -> Schedule:
        with (
            self.guard.begin(ctx, "DescribeMonitoringSchedule", schedule_target(team, name)) as call,
            call.transaction(write=False),
        ):
            row = find_schedule(call.session, team, name)
            last = call.session.scalars(
                select(MonitoringExecutionRow.status)
                .where(MonitoringExecutionRow.schedule_id == row.id)
                .order_by(MonitoringExecutionRow.created_at.desc())
                .limit(1)
            ).first()
            return row.to_entity(last or "")

    def list_schedules(self, ctx: RequestContext, team: str) -> list[Schedule]:
        with (
            self.guard.begin(ctx, "ListMonitoringSchedules", schedule_target(team, "*")) as call,
            call.transaction(write=False),
        ):
            rows = call.session.scalars(
                select(MonitoringScheduleRow)
                .where(MonitoringScheduleRow.team == team)
                .order_by(MonitoringScheduleRow.created_at)
            )
            return [r.to_entity() for r in rows]

    def set_schedule_status(self, ctx: RequestContext, team: str, name: str, *, running: bool) -> Schedule:
        """``StartMonitoringSchedule`` / ``StopMonitoringSchedule``: a stopped schedule starts no
        execution (executions already started finish)."""
        action = "StartMonitoringSchedule" if running else "StopMonitoringSchedule"
        with self.guard.begin(ctx, action, schedule_target(team, name)) as call, call.transaction():
            row = find_schedule(call.session, team, name)
            now = utcnow()
            row.status = "Scheduled" if running else "Stopped"
            if running:
                if row.cron:
                    row.next_run = timing.next_fire(row.cron, now)
                elif row.every_minutes:
                    row.last_window_end = max(row.last_window_end, now)
                    row.next_run = now + dt.timedelta(minutes=row.every_minutes)
            call.emit(f"MonitoringSchedule{'Started' if running else 'Stopped'}", schedule=name)
            entity = row.to_entity()
        self.wake()
        return entity

    def delete_schedule(self, ctx: RequestContext, team: str, name: str) -> None:
        """``DeleteMonitoringSchedule``: the schedule and its execution records (reports stay in the bucket)."""
        with self.guard.begin(ctx, "DeleteMonitoringSchedule", schedule_target(team, name)) as call:
            with call.transaction():
                row = find_schedule(call.session, team, name)
                schedule_id = row.id
                running = call.session.scalars(
                    select(MonitoringExecutionRow).where(
                        MonitoringExecutionRow.schedule_id == schedule_id,
                        MonitoringExecutionRow.status.in_(("Pending", "InProgress")),
                    )
                ).all()
                jobs = [e.job_name for e in running if e.status == "InProgress"]
                for execution in call.session.scalars(
                    select(MonitoringExecutionRow).where(MonitoringExecutionRow.schedule_id == schedule_id)
                ):
                    call.session.delete(execution)
                call.session.delete(row)
                call.emit("MonitoringScheduleDeleted", schedule=name)
            for job in jobs:
                with contextlib.suppress(StrongroomError):  # it ended meanwhile
                    self.jobs.stop(self.system, team, job, f"monitoring schedule {name} was deleted")

    # -- executions -----------------------------------------------------------------------------

    def run_now(self, ctx: RequestContext, team: str, name: str, request: RunNow | None = None) -> Execution:
        """``StartMonitoringExecution``: one execution over ``[start, end)`` (by default from the
        end of the last window to now); it starts once the window's capture is uploaded."""
        request = request or RunNow()
        params = request.model_dump(mode="json")
        with (
            self.guard.begin(ctx, "StartMonitoringExecution", schedule_target(team, name), params=params) as call,
            call.transaction(),
        ):
            row = find_schedule(call.session, team, name)
            now = utcnow()
            end = request.end or now
            start = request.start or min(row.last_window_end, end - dt.timedelta(seconds=1))
            if start >= end:
                raise InvalidInput("start must be before end", field="start")
            execution = new_execution(row, "run-now", start, end, now, self.capture_lag)
            call.session.add(execution)
            if request.end is None or end > row.last_window_end:
                row.last_window_end = max(row.last_window_end, end)
            call.emit("MonitoringExecutionScheduled", schedule=name, execution=execution.id)
            entity = execution.to_entity(row.monitoring_type)
        self.wake()
        return entity

    def list_executions(self, ctx: RequestContext, team: str, name: str, limit: int = 100) -> list[Execution]:
        """Newest first."""
        if not 1 <= limit <= 1000:
            raise InvalidInput("limit must be between 1 and 1000", field="limit")
        with (
            self.guard.begin(ctx, "ListMonitoringExecutions", schedule_target(team, name)) as call,
            call.transaction(write=False),
        ):
            row = find_schedule(call.session, team, name)
            rows = call.session.scalars(
                select(MonitoringExecutionRow)
                .where(MonitoringExecutionRow.schedule_id == row.id)
                .order_by(MonitoringExecutionRow.created_at.desc())
                .limit(limit)
            )
            return [r.to_entity(row.monitoring_type) for r in rows]

    def describe_execution(self, ctx: RequestContext, team: str, name: str, execution_id: str) -> Execution:
        with (
            self.guard.begin(
                ctx, "ListMonitoringExecutions", schedule_target(team, name), params={"execution": execution_id}
            ) as call,
            call.transaction(write=False),
        ):
            row = find_schedule(call.session, team, name)
            found = call.session.get(MonitoringExecutionRow, execution_id)
            if found is None or found.schedule_id != row.id:
                raise NotFound(f"schedule {name} has no execution {execution_id!r}", field="execution")
            return found.to_entity(row.monitoring_type)

    # -- helpers ------------------------------------------------------------------------------

    def _no_schedule(self, team: str, name: str) -> None:
        with self.db.read() as session:
            if session.scalars(
                select(MonitoringScheduleRow.id).where(
                    MonitoringScheduleRow.team == team, MonitoringScheduleRow.name == name
                )
            ).first():
                raise self._exists(team, name)

    @staticmethod
    def _exists(team: str, name: str) -> Conflict:
        return Conflict(
            f"team {team} already has a monitoring schedule named {name!r}; delete it first or choose another name",
            field="name",
        )

    def _features(self, ctx: RequestContext, spec: ScheduleSpec) -> list[str]:
        """The monitored features, in the order captured fields map onto them, from the baseline files."""
        if spec.monitoring_type == "ModelExplainability":
            document = self._read_json(ctx, spec.analysis_uri, "analysis_uri")
            names = analysis_features(document)
            if names is None:
                raise InvalidInput(
                    f"{spec.analysis_uri} is not an explainability baseline: it has no "
                    "explanations.<method>.<label>.global_shap_values of feature names to numbers",
                    field="analysis_uri",
                )
            if not any(v > 0 for v in names.values()):
                raise InvalidInput(f"{spec.analysis_uri}: the baseline attributions are all zero", field="analysis_uri")
            return list(names)
        statistics = DatasetStatistics.from_json(self._read_json(ctx, spec.statistics_uri, "statistics_uri"))
        constraints = Constraints.from_json(self._read_json(ctx, spec.constraints_uri, "constraints_uri"))
        unknown = [n for n in spec.excluded_columns if n not in statistics.names]
        if unknown:
            raise InvalidInput(f"excluded_columns {unknown} are not in the baseline", field="excluded_columns")
        features = [n for n in statistics.names if n not in spec.excluded_columns]
        if not features:
            raise InvalidInput("the baseline has no feature left to monitor", field="statistics_uri")
        missing = [f.name for f in constraints.features if f.name not in statistics.names]
        if missing:
            raise InvalidInput(
                f"constraints name features the baseline statistics do not have: {missing}",
                field="constraints_uri",
            )
        return features

    def _read_json(self, ctx: RequestContext, uri: str, field: str) -> dict[str, Any]:
        bucket, key = parse_uri(uri, field)
        try:
            data = self.storage.get_object_bytes(ctx, bucket, key)
        except StrongroomError as exc:
            raise type(exc)(f"{field}: {exc.detail}", field=field) from None
        try:
            document = json.loads(data)
        except ValueError as exc:
            raise InvalidInput(f"{uri} is not JSON: {exc}", field=field) from None
        if not isinstance(document, dict):
            raise InvalidInput(f"{uri} is not a JSON object", field=field)
        try:
            if field == "statistics_uri":
                DatasetStatistics.from_json(document)
            elif field == "constraints_uri":
                Constraints.from_json(document)
        except StrongroomError as exc:
            raise InvalidInput(f"{uri}: {exc.detail}", field=field) from None
        return document

    def _own_bucket(self, ctx: RequestContext, team: str, uri: str, field: str) -> None:
        bucket, _ = parse_uri(uri, field)
        try:
            found = self.storage.describe_bucket(ctx, bucket)
        except StrongroomError as exc:
            raise type(exc)(f"{uri}: {exc.detail}", field=field) from None
        if found.team != team:
            raise InvalidInput(
                f"{uri} belongs to team {found.team}; monitors write to their own team's buckets", field=field
            )


def analysis_features(document: dict[str, Any]) -> dict[str, float] | None:
    """``analysis.json``'s first ``global_shap_values`` (feature -> mean |SHAP|, in the model's
    feature order), or None when it has none or they are not finite non-negative numbers."""
    explanations = document.get("explanations")
    if not isinstance(explanations, dict):
        return None
    for method in explanations.values():
        for label in method.values() if isinstance(method, dict) else ():
            values = label.get("global_shap_values") if isinstance(label, dict) else None
            if isinstance(values, dict) and values:
                found: dict[str, float] = {}
                for name, value in values.items():
                    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < math.inf:
                        return None
                    found[str(name)] = float(value)
                return found
    return None
