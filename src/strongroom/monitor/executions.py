"""Monitoring executions, run by the platform's monitoring scheduler (as the system principal):
open the windows schedules make due, start each window's sandboxed job once its capture is
uploaded, and record the outcome (status, exit message, distances, violated checks), raising the
``model-monitor-violations`` alert when there are violations.

Each execution's job runs the built-in ``model-monitor`` algorithm (:mod:`strongroom.monitor.inside.job`)
as the schedule creator's execution role, over the baseline's files and the capture files of every
hour the window touches (see :mod:`strongroom.monitor.timing`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import select

from strongroom.alerts.service import AlertService
from strongroom.core.context import Grant, Principal, RequestContext
from strongroom.core.errors import Conflict, InvalidInput, NotFound, StrongroomError
from strongroom.db.base import utcnow
from strongroom.db.engine import Database
from strongroom.guard import Guard, Ticket
from strongroom.jobs.db import JobMetricRow, JobRow
from strongroom.jobs.models import TERMINAL, JobSpec
from strongroom.jobs.service import JobService
from strongroom.monitor import timing
from strongroom.monitor.db import MonitoringExecutionRow, MonitoringScheduleRow
from strongroom.monitor.models import DEFAULT_ATTRIBUTION_THRESHOLD, EXECUTION_DONE, Resources
from strongroom.policy.engine import Target
from strongroom.serving.db import EndpointRow
from strongroom.serving.models import EndpointConfigSpec
from strongroom.storage.keys import parse_uri
from strongroom.storage.service import StorageService

log = logging.getLogger(__name__)
MAX_CAPTURE_CHANNELS = 30
"""Capture hours (per variant) one execution reads: a day's window and some."""
RESULTS = "/opt/ml/processing/output/results"
INPUT = "/opt/ml/processing/input"
METRIC_LINE = r"\[strongroom\] monitor "


def schedule_target(team: str, name: str) -> Target:
    return Target("monitoring-schedule", team, name)


class ExecutionRunner:
    """The scheduler's side of monitoring: one :meth:`tick` per round."""

    def __init__(
        self,
        db: Database,
        guard: Guard,
        jobs: JobService,
        storage: StorageService,
        alerts: AlertService,
        *,
        capture_lag_seconds: float = 10.0,
        captured: Callable[[str, str], int | None] = lambda team, endpoint: None,
    ) -> None:
        self.db = db
        self.guard = guard
        self.jobs = jobs
        self.storage = storage
        self.alerts = alerts
        self.capture_lag = dt.timedelta(seconds=capture_lag_seconds)
        self.captured = captured
        self.system = RequestContext.system()
        # every_records schedules: the endpoint's capture counter (this process's, restarting at 0
        # with the platform) when its records were last added to the schedule's persisted
        # ``records_counted``. A schedule seen for the first time counts from then if it was created
        # by this process, from 0 if it is older (the endpoint's counter started with this process).
        self._counter_seen: dict[str, int] = {}
        self._process_started = utcnow()

    def tick(self, now: dt.datetime | None = None) -> bool:
        """One round: open due windows, start due executions, finish those whose job ended.
        True while executions are in flight."""
        now = now or utcnow()
        self._open_due_windows(now)
        busy = False
        with self.db.read() as session:
            pending = list(
                session.scalars(
                    select(MonitoringExecutionRow.id)
                    .where(MonitoringExecutionRow.status.in_(("Pending", "InProgress")))
                    .order_by(MonitoringExecutionRow.created_at)
                )
            )
        for execution_id in pending:
            busy = True
            try:
                self._advance(execution_id, now)
            except NotFound:
                continue  # its schedule was deleted meanwhile
            except Exception as exc:  # one bad execution must not stop the others
                log.exception("monitoring execution %s", execution_id)
                with contextlib.suppress(StrongroomError):
                    self._finish(execution_id, "Failed", f"the platform could not run the execution: {exc}")
        return busy

    def _open_due_windows(self, now: dt.datetime) -> None:
        with self.db.read() as session:
            due = list(
                session.scalars(
                    select(MonitoringScheduleRow).where(
                        MonitoringScheduleRow.status == "Scheduled",
                        (MonitoringScheduleRow.next_run <= now) | (MonitoringScheduleRow.every_records.is_not(None)),
                    )
                )
            )
            for row in due:
                session.expunge(row)
        for row in due:
            if row.every_records is not None:
                if not self._count_records(row):
                    continue
                start, end = row.last_window_end, now
            elif row.cron:
                assert row.next_run is not None
                end = timing.previous_fire(row.cron, now + dt.timedelta(microseconds=1))  # the latest fire time
                start = timing.previous_fire(row.cron, end)
            else:
                assert row.every_minutes is not None and row.next_run is not None
                step = dt.timedelta(minutes=row.every_minutes)
                start, end = row.last_window_end, row.next_run
                while end + step <= now:  # the platform was down: one window up to the latest boundary
                    end += step
            self._open_window(row, start, end, now)

    def _count_records(self, row: MonitoringScheduleRow) -> bool:
        """Add the records the endpoint captured since the last look to the schedule's persisted
        count; True when it reaches ``every_records`` (opening the window sets it back to 0)."""
        assert row.every_records is not None
        count = self.captured(row.team, row.endpoint)
        if count is None:
            return False
        default = count if row.created_at >= self._process_started else 0
        seen = self._counter_seen.setdefault(row.id, default)
        new = max(count - seen, 0)  # the endpoint's counter restarts when it is redeployed
        self._counter_seen[row.id] = count
        if new == 0 and row.records_counted < row.every_records:
            return False
        # Bookkeeping of the platform's scheduler (no request, no decision): the window it opens is
        # the audited event; recording every captured batch would flood the audit log.
        with self.db.write() as session:
            stored = session.get(MonitoringScheduleRow, row.id)
            if stored is None:
                return False
            stored.records_counted += new
            return stored.records_counted >= row.every_records

    def _open_window(self, row: MonitoringScheduleRow, start: dt.datetime, end: dt.datetime, now: dt.datetime) -> None:
        with (
            self.guard.begin(
                self.system,
                "UpdateMonitoringExecution",
                schedule_target(row.team, row.name),
                params={"window_start": start.isoformat(), "window_end": end.isoformat()},
            ) as call,
            call.transaction(),
        ):
            found = call.session.get(MonitoringScheduleRow, row.id)
            if found is None or found.status != "Scheduled":
                return
            trigger = "cron" if found.cron else ("records" if found.every_records else "interval")
            if found.cron:
                found.next_run = timing.next_fire(found.cron, now)
            elif found.every_minutes:
                found.next_run = end + dt.timedelta(minutes=found.every_minutes)
            else:
                found.records_counted = 0
            if start >= end:  # a run_now already read past this window's end: nothing new to read
                return
            execution = new_execution(found, trigger, start, end, now, self.capture_lag)
            call.session.add(execution)
            found.last_window_end = max(found.last_window_end, end)
            call.emit("MonitoringExecutionScheduled", schedule=found.name, execution=execution.id)

    def _advance(self, execution_id: str, now: dt.datetime) -> None:
        with self.db.read() as session:
            execution = session.get(MonitoringExecutionRow, execution_id)
            if execution is None:
                return
            schedule = session.get(MonitoringScheduleRow, execution.schedule_id)
            job = session.scalars(
                select(JobRow).where(JobRow.team == execution.team, JobRow.name == execution.job_name)
            ).first()
            for found in (execution, schedule, job):
                if found is not None:
                    session.expunge(found)
        if schedule is None:
            return
        if execution.status == "Pending":
            if job is not None:  # created before a crash: pick it up
                self._mark_started(execution_id)
            elif execution.not_before <= now:
                self._start(execution, schedule)
            return
        if job is None:
            self._finish(execution_id, "Failed", f"its job {execution.job_name} no longer exists")
        elif job.status in TERMINAL:
            self._complete(execution, schedule, job)

    def _start(self, execution: MonitoringExecutionRow, schedule: MonitoringScheduleRow) -> None:
        ctx = execution_ctx(schedule)
        try:
            capture_uri, variants = endpoint_capture(self.db, schedule.team, schedule.endpoint)
            inputs: list[dict[str, Any]]
            if schedule.monitoring_type == "ModelExplainability":
                inputs = [
                    {"name": "baseline-analysis", "source": schedule.analysis_uri},
                    endpoint_model(self.db, schedule),
                ]
            else:
                inputs = [
                    {"name": "baseline-statistics", "source": schedule.statistics_uri},
                    {"name": "baseline-constraints", "source": schedule.constraints_uri},
                ]
            for item in inputs:
                item["destination"] = f"{INPUT}/{item['name']}"
            inputs += self._capture_channels(ctx, capture_uri, schedule.endpoint, variants, execution)
            spec = self._analysis_spec(execution, schedule, inputs)
            self.jobs.create_job(ctx, spec)
        except Conflict:
            pass  # a job of this name exists: created before a restart; it is picked up as started
        except StrongroomError as exc:
            self._finish(execution.id, "Failed", exc.detail)
            return
        self._mark_started(execution.id)

    def _capture_channels(
        self,
        ctx: RequestContext,
        capture_uri: str,
        endpoint: str,
        variants: list[str],
        execution: MonitoringExecutionRow,
    ) -> list[dict[str, Any]]:
        """One input channel per variant and hour of the window that holds capture files."""
        bucket, prefix = parse_uri(capture_uri)
        base = "/".join(p for p in (prefix.strip("/"), endpoint) if p)
        channels: list[dict[str, Any]] = []
        for variant in variants:
            for hour in timing.hours_of(execution.window_start, execution.window_end):
                folder = f"{base}/{variant}/{timing.hour_prefix(hour)}/"
                page = self.storage.list_objects(ctx, bucket, prefix=folder)
                if not any(not o.delete_marker for o in page.objects):
                    continue
                if len(channels) == MAX_CAPTURE_CHANNELS:
                    raise InvalidInput(
                        f"the window {timing.iso(execution.window_start)} .. {timing.iso(execution.window_end)} "
                        f"holds capture in more than {MAX_CAPTURE_CHANNELS} hours; run it as shorter windows",
                        field="end",
                    )
                channels.append(
                    {
                        "name": f"capture-{len(channels)}",
                        "source": f"sr://{bucket}/{folder}",
                        "destination": f"{INPUT}/capture/{_safe(variant)}/{timing.hour_prefix(hour)}",
                    }
                )
        return channels

    def _analysis_spec(
        self, execution: MonitoringExecutionRow, schedule: MonitoringScheduleRow, inputs: list[dict[str, Any]]
    ) -> JobSpec:
        start, end = timing.iso(execution.window_start), timing.iso(execution.window_end)
        explains = schedule.monitoring_type == "ModelExplainability"
        hyper: dict[str, str | int | float | bool] = {
            "mode": "attribution" if explains else "analysis",
            "window_start": start,
            "window_end": end,
            "excluded_columns": json.dumps(schedule.excluded_columns),
            "title": f"{schedule.name}: endpoint {schedule.endpoint}, {start} .. {end}",
        }
        metrics = [
            {"name": "rows", "regex": METRIC_LINE + r"rows=(\d+)"},
            {"name": "violations", "regex": METRIC_LINE + r"violations=(\d+)"},
        ]
        if explains:
            hyper["feature_names"] = json.dumps(schedule.feature_names)
            threshold = schedule.attribution_threshold
            hyper["threshold"] = DEFAULT_ATTRIBUTION_THRESHOLD if threshold is None else threshold
            metrics.append({"name": "ndcg", "regex": METRIC_LINE + r"ndcg=([-+0-9.eE]+)"})
        elif schedule.enable_metrics:
            # one metric per feature (by its position in the baseline), as many as definitions allow
            for index, name in list(enumerate(schedule.feature_names))[:60]:
                metrics.append(
                    {
                        "name": f"feature_baseline_drift_{name}"[:128],
                        "regex": METRIC_LINE + re.escape(f"distance[{index}]=") + r"([-+0-9.eE]+|nan|inf)",
                    }
                )
        return job_spec(
            schedule.team,
            execution.job_name,
            Resources.model_validate(schedule.resources),
            inputs=inputs,
            output_uri=execution.output_uri,
            hyperparameters=hyper,
            metrics=metrics,
            tags={"monitoring-schedule": schedule.name},
        )

    def _mark_started(self, execution_id: str) -> None:
        with self._system(execution_id, {"status": "InProgress"}) as (call, row):
            if row.status == "Pending":
                row.status, row.started_at = "InProgress", utcnow()
                row.exit_message = f"running as job {row.job_name}"
                call.emit("MonitoringExecutionStarted", execution=row.id, job=row.job_name)

    def _complete(self, execution: MonitoringExecutionRow, schedule: MonitoringScheduleRow, job: JobRow) -> None:
        window = f"between {timing.iso(execution.window_start)} and {timing.iso(execution.window_end)}"
        if job.status != "Completed":
            status = "Stopped" if job.status == "Stopped" else "Failed"
            self._finish(execution.id, status, f"the monitoring job {job.name} {job.status}: {job.failure_reason}")
            return
        with self.db.read() as session:
            points = {
                p.name: p.value for p in session.scalars(select(JobMetricRow).where(JobMetricRow.job_id == job.id))
            }
        rows = int(points.get("rows", 0))
        distances = {
            name[len("feature_baseline_drift_") :]: value
            for name, value in points.items()
            if name.startswith("feature_baseline_drift_")
        }
        if rows == 0:
            self._finish(execution.id, "Completed", f"no captured data {window}", rows=0)
            return
        violations = self._read_violations(schedule, execution)
        score = f" (feature attribution nDCG {points['ndcg']:.4f})" if "ndcg" in points else ""
        if violations:
            features = sorted({v["feature_name"] for v in violations})
            message = f"{len(violations)} violation(s) in {rows} rows captured {window}: {', '.join(features)}{score}"
            self._finish(execution.id, "CompletedWithViolations", message, rows, violations, distances)
            self._alert(schedule, execution, message, violations)
        else:
            self._finish(
                execution.id, "Completed", f"no violation in {rows} rows captured {window}{score}", rows, [], distances
            )

    def _read_violations(
        self, schedule: MonitoringScheduleRow, execution: MonitoringExecutionRow
    ) -> list[dict[str, str]]:
        bucket, prefix = parse_uri(execution.output_uri)
        document = json.loads(
            self.storage.get_object_bytes(
                execution_ctx(schedule), bucket, f"{prefix.rstrip('/')}/constraint_violations.json"
            )
        )
        # An attribution violation is about the model's output (its "label"), not one feature.
        return [
            {
                "feature_name": str(v.get("feature_name", v.get("label", ""))),
                "constraint_check_type": str(v["constraint_check_type"]),
            }
            for v in document.get("violations", [])
        ]

    def _alert(
        self,
        schedule: MonitoringScheduleRow,
        execution: MonitoringExecutionRow,
        message: str,
        violations: list[dict[str, str]],
    ) -> None:
        try:
            self.alerts.raise_alert(
                "model-monitor-violations",
                schedule.team,
                f"srn:strongroom:{schedule.team}:monitoring-schedule/{schedule.name}",
                f"monitoring schedule {schedule.name} (endpoint {schedule.endpoint}): {message}",
                to_team=True,
                schedule=schedule.name,
                monitoring_type=schedule.monitoring_type,
                endpoint=schedule.endpoint,
                execution=execution.id,
                window_start=timing.iso(execution.window_start),
                window_end=timing.iso(execution.window_end),
                violations=violations,
                report=f"{execution.output_uri}/report.html",
            )
        except StrongroomError:
            log.exception("monitoring schedule %s: the alert could not be raised", schedule.name)

    def _finish(
        self,
        execution_id: str,
        status: str,
        message: str,
        rows: int | None = None,
        violations: list[dict[str, str]] | None = None,
        distances: dict[str, float] | None = None,
    ) -> None:
        with self._system(execution_id, {"status": status, "message": message[:500]}) as (call, row):
            if row.status in EXECUTION_DONE:
                return
            row.status, row.exit_message, row.ended_at = status, message[:4000], utcnow()
            row.rows = rows
            row.violations = violations or []
            row.distances = distances or {}
            call.emit(
                "MonitoringExecutionFinished",
                execution=row.id,
                status=status,
                violations=len(row.violations),
            )

    @contextmanager
    def _system(self, execution_id: str, params: dict[str, Any]) -> Iterator[tuple[Ticket, MonitoringExecutionRow]]:
        """One audited transition of an execution, by the platform."""
        with self.db.read() as session:
            found = session.get(MonitoringExecutionRow, execution_id)
            if found is None:
                raise NotFound(f"monitoring execution {execution_id} does not exist")
            target = schedule_target(found.team, found.schedule)
        with (
            self.guard.begin(
                self.system, "UpdateMonitoringExecution", target, params={"execution": execution_id, **params}
            ) as call,
            call.transaction(),
        ):
            row = call.session.get(MonitoringExecutionRow, execution_id)
            if row is None:
                raise NotFound(f"monitoring execution {execution_id} does not exist")
            yield call, row


def new_execution(
    row: MonitoringScheduleRow,
    trigger: str,
    start: dt.datetime,
    end: dt.datetime,
    now: dt.datetime,
    lag: dt.timedelta,
) -> MonitoringExecutionRow:
    """A Pending execution of ``row`` over ``[start, end)``, to start ``lag`` after the window ends."""
    execution_id = uuid.uuid4().hex
    stamp = end.strftime("%Y-%m-%d-%H-%M-%S")
    return MonitoringExecutionRow(
        id=execution_id,
        schedule_id=row.id,
        team=row.team,
        schedule=row.name,
        trigger=trigger,
        status="Pending",
        exit_message=f"waiting until {timing.iso(end + lag)} for the window's capture to be uploaded",
        window_start=start,
        window_end=end,
        not_before=max(now, end + lag),
        job_name=f"{row.name[:40].rstrip('-')}-{execution_id[:12]}",
        output_uri=f"{row.output_uri}/{row.endpoint}/{row.name}/{stamp}-{execution_id[:8]}",
        violations=[],
        distances={},
        rows=None,
        created_at=now,
    )


def endpoint_capture(db: Database, team: str, endpoint: str, field: str = "endpoint") -> tuple[str, list[str]]:
    """The endpoint's capture destination ("" without capture) and its variants."""
    with db.read() as session:
        row = session.scalars(select(EndpointRow).where(EndpointRow.team == team, EndpointRow.name == endpoint)).first()
        if row is None:
            raise NotFound(f"team {team} has no endpoint named {endpoint!r}", field=field)
        config = EndpointConfigSpec.model_validate(row.config)
    capture = config.data_capture_config
    uri = capture.destination_s3_uri if capture is not None and capture.enable_capture else ""
    return uri, [v.variant_name for v in config.production_variants]


def endpoint_model(db: Database, schedule: MonitoringScheduleRow) -> dict[str, Any]:
    """The input channel of the model the endpoint serves (its first variant's, at the version the
    endpoint pinned), for an explainability execution to compute SHAP values with."""
    with db.read() as session:
        row = session.scalars(
            select(EndpointRow).where(EndpointRow.team == schedule.team, EndpointRow.name == schedule.endpoint)
        ).first()
        if row is None:
            raise NotFound(f"team {schedule.team} has no endpoint named {schedule.endpoint!r}", field="endpoint")
        config = EndpointConfigSpec.model_validate(row.config)
        models = dict(row.models)
    model = models.get(config.production_variants[0].model_name)
    if not model or not model.get("model_data"):
        raise InvalidInput(f"endpoint {schedule.endpoint} serves no model archive to explain", field="endpoint")
    return {"name": "model", "source": model["model_data"], "version_id": model.get("version_id") or None}


def _safe(variant: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", variant) or "_"


def execution_ctx(schedule: MonitoringScheduleRow) -> RequestContext:
    """The schedule creator's execution role: what the platform acts as for the schedule."""
    principal = Principal(
        user=schedule.created_by,
        token_kind="execution",
        grants=(Grant(schedule.role, schedule.team),),
        scope=f"srn:strongroom:{schedule.team}:monitoring-schedule/{schedule.name}",
    )
    return RequestContext(principal=principal, source="platform", user_agent="strongroom-monitor")


def job_spec(
    team: str,
    name: str,
    resources: Resources,
    *,
    inputs: list[dict[str, Any]],
    output_uri: str,
    hyperparameters: dict[str, str | int | float | bool],
    metrics: list[dict[str, str]],
    tags: dict[str, str] | None = None,
) -> JobSpec:
    return JobSpec.model_validate(
        {
            "name": name,
            "team": team,
            "kind": "monitoring",
            "code": {"algorithm": "model-monitor"},
            "inputs": inputs,
            "outputs": [{"name": "results", "destination": output_uri, "source": RESULTS}],
            "hyperparameters": hyperparameters,
            "resources": {
                "instance_count": 1,  # one streaming pass; no cluster to start
                "cpus": 1.0,
                "memory_mb": resources.memory_mb,
                "scratch_mb": resources.scratch_mb,
                "max_runtime_seconds": resources.max_runtime_seconds,
            },
            "security": {"network_isolation": True, "volume_kms_key": resources.volume_kms_key},
            "metric_definitions": metrics,
            "tags": tags or {},
        }
    )


def find_schedule(session: Any, team: str, name: str) -> MonitoringScheduleRow:
    row = session.scalars(
        select(MonitoringScheduleRow).where(MonitoringScheduleRow.team == team, MonitoringScheduleRow.name == name)
    ).first()
    if row is None:
        raise NotFound(f"team {team} has no monitoring schedule named {name!r}", field="name")
    return row
