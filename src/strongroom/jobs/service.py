"""The job service: submit, describe, list, stop, interrupt, read logs and metrics; and the
state transitions the scheduler and executors make (as the platform's system principal)."""

from __future__ import annotations

import builtins
import datetime as dt
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import CursorResult, Select, func, insert, select, update
from sqlalchemy.orm import Session

from strongroom.algorithms.xgboost.hyperparameters import validate as validate_xgboost
from strongroom.core.context import RequestContext
from strongroom.core.errors import Conflict, InvalidInput, NotFound, StrongroomError
from strongroom.db.base import utcnow
from strongroom.db.engine import Database
from strongroom.guard import Guard, Ticket
from strongroom.jobs import logs
from strongroom.jobs.db import JobLogRow, JobMetricRow, JobRow
from strongroom.jobs.models import (
    TERMINAL,
    Job,
    JobSpec,
    LogLine,
    MetricPoint,
    ResolvedInput,
)
from strongroom.jobs.runtimes import RuntimeRegistry
from strongroom.jobs.tracking import JobTracking
from strongroom.kms.service import KmsService
from strongroom.policy.engine import Target
from strongroom.storage.keys import parse_uri
from strongroom.storage.service import StorageService

CREATE_ACTIONS = {
    "processing": "CreateProcessingJob",
    "training": "CreateTrainingJob",
    "transform": "CreateTransformJob",
    "explainability": "CreateProcessingJob",
    "monitoring": "CreateMonitoringJob",
}
MAX_INPUT_OBJECTS = 10_000


def job_target(team: str, name: str) -> Target:
    """Jobs of every kind share one name space per team: ``srn:strongroom:<team>:job/<name>``."""
    return Target("job", team, name)


@dataclass
class Progress:
    """What an executor reports in one flush."""

    lines: list[tuple[str, str]] = field(default_factory=list)
    metrics: list[tuple[str, int, float]] = field(default_factory=list)
    # (secondary status, message, when the executor saw it), in order: a phase starts when its status
    # was observed, not when the batch reached the database (up to a flush interval later).
    statuses: list[tuple[str, str, dt.datetime]] = field(default_factory=list)


class JobService:
    def __init__(
        self,
        db: Database,
        guard: Guard,
        kms: KmsService,
        storage: StorageService,
        runtimes: RuntimeRegistry,
        *,
        max_scratch_mb: int,
        max_instance_count: int,
        tracking: JobTracking | None = None,
    ) -> None:
        self.db = db
        self.guard = guard
        self.kms = kms
        self.storage = storage
        self.runtimes = runtimes
        self.max_scratch_mb = max_scratch_mb
        self.max_instance_count = max_instance_count
        self.tracking = tracking

    # -- submission -------------------------------------------------------------------------

    def create_job(self, ctx: RequestContext, spec: JobSpec) -> Job:
        """Check the spec, authorize it (guardrails included), pin its inputs, create it Pending."""
        action = CREATE_ACTIONS[spec.kind]
        target = Target("job", spec.team, spec.name, owner=ctx.principal.user, tags=spec.tags)
        context = {
            "network_isolation": spec.security.network_isolation,
            "volume_kms_key": spec.security.volume_kms_key,
            "inter_node_encryption": spec.security.inter_node_encryption,
        }
        params = spec.model_dump(mode="json", exclude={"provenance"})
        with self.guard.begin(ctx, action, target, params=params, context=context) as ticket:
            if ctx.idempotency_key is None or not ctx.idempotency_key:
                self._reject_duplicate(spec)
            self._check_limits(spec)
            runtime = self.runtimes.resolve(spec.runtime)
            key_ref = self._key_ref(spec)
            self.kms.describe_key(ctx, spec.team, key_ref)
            resolved = self._resolve_inputs(ctx, spec)
            code = self._resolve_code(ctx, spec)
            self._check_outputs(ctx, spec)
            if self.tracking is not None:
                self.tracking.check(ctx, spec)
            job_id = uuid.uuid4().hex
            data_key = self.kms.generate_data_key(ctx, spec.team, key_ref, logs.log_context(spec.team, job_id))
            with ticket.transaction() as call:
                if (replayed := call.replay(Job)) is not None:
                    return replayed
                exists = call.session.scalars(
                    select(JobRow.id).where(JobRow.team == spec.team, JobRow.name == spec.name)
                ).first()
                if exists is not None:
                    raise Conflict(
                        f"team {spec.team} already has a job named {spec.name!r}; job names are unique", field="name"
                    )
                now = utcnow()
                grant = ticket.decision.grant
                row = JobRow(
                    id=job_id,
                    team=spec.team,
                    name=spec.name,
                    kind=spec.kind,
                    created_by=ctx.principal.user,
                    role=grant.role if grant else "",
                    spec=spec.model_dump(mode="json"),
                    status="Pending",
                    secondary_status="Starting",
                    transitions=[
                        {
                            "status": "Starting",
                            "start": now.isoformat(),
                            "end": None,
                            "message": "queued; waiting for capacity",
                        }
                    ],
                    failure_reason="",
                    created_at=now,
                    attempts=0,
                    billable_seconds=0.0,
                    inputs_resolved=[r.model_dump() for r in resolved],
                    outputs_produced=[],
                    runtime_version=runtime.versions,
                    code_resolved=code,
                    log_key=data_key.wrapped,
                    network_isolation=spec.security.network_isolation,
                    use_spot=spec.spot.use_spot,
                    claimed_by="",
                    requested="",
                    not_before=None,
                )
                call.session.add(row)
                call.emit("JobCreated", job=job_id, kind=spec.kind)
                created = call.result(row.to_entity())
            if self.tracking is not None:
                self.tracking.created(ctx, created)
        return created

    def _reject_duplicate(self, spec: JobSpec) -> None:
        with self.db.read() as session:
            exists = session.scalars(
                select(JobRow.id).where(JobRow.team == spec.team, JobRow.name == spec.name)
            ).first()
        if exists is not None:
            raise Conflict(
                f"team {spec.team} already has a job named {spec.name!r}; job names are unique", field="name"
            )

    def _check_limits(self, spec: JobSpec) -> None:
        if spec.resources.scratch_mb > self.max_scratch_mb:
            raise InvalidInput(
                f"resources.scratch_mb={spec.resources.scratch_mb} is over this platform's limit of "
                f"{self.max_scratch_mb} MB per job (scratch is memory-backed tmpfs)",
                field="resources.scratch_mb",
            )
        if spec.resources.instance_count > self.max_instance_count:
            raise InvalidInput(
                f"resources.instance_count={spec.resources.instance_count} is over the limit of "
                f"{self.max_instance_count}",
                field="resources.instance_count",
            )
        if spec.code.algorithm == "explain":
            channels = {c.name for c in spec.inputs}
            if not {"model", "dataset"} <= channels:
                raise InvalidInput("an explainability job needs 'model' and 'dataset' input channels", field="inputs")
            if not any(o.name == "report" for o in spec.outputs):
                raise InvalidInput("an explainability job needs a 'report' output", field="outputs")
        if (spec.kind == "monitoring") != (spec.code.algorithm == "model-monitor"):
            # The monitoring role's jobs write their outputs as the team (policy
            # "monitoring-job-writes-its-outputs"): only the platform's own code runs in them.
            raise InvalidInput(
                "a monitoring job runs the built-in code.algorithm 'model-monitor', and that algorithm only "
                "runs as kind 'monitoring'",
                field="code.algorithm",
            )
        if spec.code.algorithm == "xgboost":
            validate_xgboost({k: v for k, v in spec.hyperparameters.items()})
            if spec.kind == "training" and not any(c.name == "train" for c in spec.inputs):
                raise InvalidInput("the built-in XGBoost algorithm needs a 'train' input channel", field="inputs")

    @staticmethod
    def _key_ref(spec: JobSpec) -> str:
        ref = spec.security.volume_kms_key
        if ref.startswith("srn:strongroom:"):
            ref = ref.rsplit("/", 1)[-1]
        return ref

    def _resolve_inputs(self, ctx: RequestContext, spec: JobSpec) -> builtins.list[ResolvedInput]:
        """Pin every input object to a version: the latest, or the one ``input_versions`` names."""
        resolved: builtins.list[ResolvedInput] = []
        pins = spec.input_versions
        for index, channel in enumerate(spec.inputs):
            bucket, key = parse_uri(channel.source)
            where = f"inputs[{index}].source"

            def head(object_key: str, version: str | None, name: str, bucket: str = bucket) -> ResolvedInput:
                found = self.storage.head_object(ctx, bucket, object_key, version)
                return ResolvedInput(
                    name=name, uri=found.uri, version_id=found.version_id, sha256=found.sha256, size=found.size
                )

            try:
                if key and not key.endswith("/"):
                    pinned = channel.version_id or pins.get(f"sr://{bucket}/{key}")
                    try:
                        resolved.append(head(key, pinned, f"{channel.name}/{key.rsplit('/', 1)[-1]}"))
                        continue
                    except NotFound:
                        if pinned:
                            raise
                prefix = key.rstrip("/") + "/" if key else ""
                keys = {o.key for o in self._list_prefix(ctx, bucket, prefix)}
                keys |= {uri[len(f"sr://{bucket}/") :] for uri in pins if uri.startswith(f"sr://{bucket}/{prefix}")}
                for object_key in sorted(keys):
                    resolved.append(
                        head(
                            object_key,
                            pins.get(f"sr://{bucket}/{object_key}"),
                            f"{channel.name}/{object_key[len(prefix) :]}",
                        )
                    )
            except StrongroomError as exc:
                raise type(exc)(f"input channel {channel.name!r}: {exc.detail}", field=where) from None
            if not any(r.name.startswith(f"{channel.name}/") for r in resolved):
                raise InvalidInput(f"input channel {channel.name!r}: nothing at {channel.source}", field=where)
        return resolved

    def _list_prefix(self, ctx: RequestContext, bucket: str, prefix: str) -> builtins.list[Any]:
        found: builtins.list[Any] = []
        token: str | None = None
        while True:
            page = self.storage.list_objects(ctx, bucket, prefix=prefix, page_token=token)
            found.extend(o for o in page.objects if not o.delete_marker)
            if len(found) > MAX_INPUT_OBJECTS:
                raise InvalidInput(f"more than {MAX_INPUT_OBJECTS} objects under sr://{bucket}/{prefix}")
            token = page.next_page_token
            if not token:
                return found

    def _resolve_code(self, ctx: RequestContext, spec: JobSpec) -> dict[str, Any]:
        """Pin the code object (or name the built-in algorithm and the platform version)."""
        if spec.code.algorithm is not None:
            import strongroom

            return {"uri": f"builtin:{spec.code.algorithm}@strongroom-{strongroom.__version__}"}
        assert spec.code.source is not None
        bucket, key = parse_uri(spec.code.source)
        try:
            head = self.storage.head_object(ctx, bucket, key, spec.code.version_id)
        except StrongroomError as exc:
            raise type(exc)(f"code.source: {exc.detail}", field="code.source") from None
        return {"uri": head.uri, "version_id": head.version_id, "sha256": head.sha256}

    def _check_outputs(self, ctx: RequestContext, spec: JobSpec) -> None:
        uris = [(f"outputs[{i}].destination", o.destination) for i, o in enumerate(spec.outputs)]
        if spec.spot.checkpoint_uri:
            uris.append(("spot.checkpoint_uri", spec.spot.checkpoint_uri))
        for where, uri in uris:
            bucket, _ = parse_uri(uri)
            try:
                found = self.storage.describe_bucket(ctx, bucket)
            except StrongroomError as exc:
                raise type(exc)(f"{uri}: {exc.detail}", field=where) from None
            if found.team != spec.team:
                raise InvalidInput(
                    f"{uri} belongs to team {found.team}; jobs write to their own team's buckets", field=where
                )

    # -- reading ----------------------------------------------------------------------------

    def _row(self, session: Session, team: str, name: str) -> JobRow:
        row = session.scalars(select(JobRow).where(JobRow.team == team, JobRow.name == name)).first()
        if row is None:
            raise NotFound(f"team {team} has no job named {name!r}", field="name")
        return row

    def describe(self, ctx: RequestContext, team: str, name: str) -> Job:
        with self.guard.begin(ctx, "DescribeJob", job_target(team, name)) as call, call.transaction(write=False):
            return self._row(call.session, team, name).to_entity()

    def list(
        self, ctx: RequestContext, team: str, status: str | None = None, limit: int = 100, offset: int = 0
    ) -> builtins.list[Job]:
        """The team's jobs, newest first: ``limit`` of them after skipping ``offset``."""
        if not 1 <= limit <= 1000:
            raise InvalidInput("limit must be between 1 and 1000", field="limit")
        if offset < 0:
            raise InvalidInput("offset must not be negative", field="offset")
        with self.guard.begin(ctx, "ListJobs", job_target(team, "*")) as call, call.transaction(write=False):
            query = self._of_team(team, status).order_by(JobRow.created_at.desc())
            rows = call.session.scalars(query.offset(offset).limit(limit))
            return [r.to_entity() for r in rows]

    def count(self, ctx: RequestContext, team: str, status: str | None = None) -> int:
        """How many jobs the team has (read from the (team, created_at) index, no row loaded)."""
        with (
            self.guard.begin(ctx, "ListJobs", job_target(team, "*"), params={"count": True}) as call,
            call.transaction(write=False),
        ):
            counted = self._of_team(team, status).with_only_columns(func.count()).order_by(None)
            return int(call.session.scalar(counted) or 0)

    @staticmethod
    def _of_team(team: str, status: str | None) -> Select[JobRow]:
        query = select(JobRow).where(JobRow.team == team)
        return query.where(JobRow.status == status) if status else query

    def logs(
        self, ctx: RequestContext, team: str, name: str, after_seq: int = 0, limit: int = 1000
    ) -> builtins.list[LogLine]:
        """Decrypted log lines after ``after_seq`` (the data key is unwrapped through KMS, audited)."""
        if not 1 <= limit <= 10_000:
            raise InvalidInput("limit must be between 1 and 10000", field="limit")
        with (
            self.guard.begin(ctx, "GetJobLogs", job_target(team, name), params={"after_seq": after_seq}) as call,
            call.transaction(write=False),
        ):
            row = self._row(call.session, team, name)
            job_id, blob = row.id, row.log_key
            rows = list(
                call.session.scalars(
                    select(JobLogRow)
                    .where(JobLogRow.job_id == job_id, JobLogRow.seq > after_seq)
                    .order_by(JobLogRow.seq)
                    .limit(limit)
                )
            )
        if not rows:
            return []
        key = self.kms.decrypt(ctx, team, blob, logs.log_context(team, job_id)).plaintext
        return [
            LogLine(
                seq=r.seq, time=r.time, stream=r.stream, text=logs.open_line(key, job_id, r.seq, r.stream, r.ciphertext)
            )
            for r in rows
        ]

    def metrics(self, ctx: RequestContext, team: str, name: str) -> builtins.list[MetricPoint]:
        with (
            self.guard.begin(ctx, "DescribeJob", job_target(team, name), params={"metrics": True}) as call,
            call.transaction(write=False),
        ):
            row = self._row(call.session, team, name)
            points = call.session.scalars(
                select(JobMetricRow).where(JobMetricRow.job_id == row.id).order_by(JobMetricRow.id)
            )
            return [MetricPoint(name=p.name, step=p.step, value=p.value, time=p.time) for p in points]

    # -- control ----------------------------------------------------------------------------

    def stop(self, ctx: RequestContext, team: str, name: str, reason: str = "") -> Job:
        """Ask a job to stop (a queued job stops at once)."""
        with (
            self.guard.begin(ctx, "StopJob", job_target(team, name), params={"reason": reason}) as call,
            call.transaction(),
        ):
            row = self._row(call.session, team, name)
            if row.status in TERMINAL:
                raise Conflict(f"job {name} already ended ({row.status})", field="name")
            why = reason or f"stopped by {ctx.principal.user}"
            if row.status == "Pending":
                _finish(row, "Stopped", why)
            else:
                row.status, row.requested, row.failure_reason = "Stopping", "stop", why
                _transition(row, "Stopping", why)
            call.emit("JobStopRequested", job=row.id, reason=why)
            return row.to_entity()

    def interrupt(self, ctx: RequestContext, team: str, name: str, notice: str = "") -> Job:
        """Simulate a spot interruption: SIGTERM with a notice; the job checkpoints and is requeued."""
        with (
            self.guard.begin(ctx, "InterruptJob", job_target(team, name), params={"notice": notice}) as call,
            call.transaction(),
        ):
            row = self._row(call.session, team, name)
            if not row.use_spot:
                raise Conflict(f"job {name} is not a spot job; only spot jobs can be interrupted", field="name")
            if row.status != "InProgress":
                raise Conflict(f"job {name} is {row.status}; only a running job can be interrupted", field="name")
            row.requested = "interrupt"
            call.emit("JobInterruptRequested", job=row.id)
            return row.to_entity()

    # -- transitions made by the platform (system principal) ---------------------------------

    @contextmanager
    def _system(
        self, ctx: RequestContext, action: str, row_id: str, params: dict[str, Any] | None = None
    ) -> Iterator[Ticket]:
        with self.db.read() as session:
            row = session.get(JobRow, row_id)
            if row is None:
                raise NotFound(f"job {row_id} does not exist")
            target = job_target(row.team, row.name)
        with self.guard.begin(ctx, action, target, params=params or {"job": row_id}) as call, call.transaction():
            yield call

    def claim(self, ctx: RequestContext, owner: str) -> str | None:
        """Atomically take the oldest runnable Pending job for ``owner``; its id, or None."""
        now = utcnow()
        with self.db.read() as session:
            candidates = list(
                session.scalars(
                    select(JobRow.id)
                    .where(JobRow.status == "Pending")
                    .where((JobRow.not_before.is_(None)) | (JobRow.not_before <= now))
                    .order_by(JobRow.created_at)
                    .limit(5)
                )
            )
        for job_id in candidates:
            with self._system(ctx, "StartJob", job_id) as call:
                result = call.session.execute(
                    update(JobRow)
                    .where(JobRow.id == job_id, JobRow.status == "Pending")
                    .values(status="InProgress", claimed_by=owner, requested="")
                )
                taken = cast(CursorResult[Any], result).rowcount
                if taken != 1:
                    continue
                row = call.session.get(JobRow, job_id)
                assert row is not None
                row.attempts += 1
                if row.started_at is None:
                    row.started_at = now
                _transition(row, "Starting", f"attempt {row.attempts}: starting the sandbox")
                call.emit("JobStarted", job=job_id, network_isolation=row.network_isolation, attempt=row.attempts)
                started = row.to_entity() if row.attempts == 1 else None
            if started is not None and self.tracking is not None:
                self.tracking.started(started)
            return job_id
        return None

    def load(self, job_id: str) -> JobRow:
        with self.db.read() as session:
            row = session.get(JobRow, job_id)
            if row is None:
                raise NotFound(f"job {job_id} does not exist")
            session.expunge(row)
            return row

    def record_progress(self, ctx: RequestContext, job_id: str, key: bytes, progress: Progress) -> None:
        """Store a batch of encrypted log lines, metric points and a secondary status change."""
        with self._system(ctx, "RecordJobProgress", job_id, {"job": job_id, "lines": len(progress.lines)}) as call:
            row = call.session.get(JobRow, job_id)
            assert row is not None
            if progress.lines:
                last = (
                    call.session.scalars(
                        select(JobLogRow.seq).where(JobLogRow.job_id == job_id).order_by(JobLogRow.seq.desc()).limit(1)
                    ).first()
                    or 0
                )
                call.session.execute(insert(JobLogRow), logs.insert_lines(key, job_id, last + 1, progress.lines))
            if progress.metrics:
                now = utcnow()
                call.session.execute(
                    insert(JobMetricRow),
                    [{"job_id": job_id, "name": n, "step": s, "value": v, "time": now} for n, s, v in progress.metrics],
                )
            for secondary, message, at in progress.statuses:
                if secondary and secondary != row.secondary_status and row.status == "InProgress":
                    _transition(row, secondary, message, at)
                    call.emit("JobStatusChanged", job=job_id, secondary=secondary)

    def requested_action(self, job_id: str) -> str:
        with self.db.read() as session:
            row = session.get(JobRow, job_id)
            return row.requested if row is not None else "stop"

    def finish(
        self,
        ctx: RequestContext,
        job_id: str,
        status: str,
        reason: str,
        *,
        exit_code: int | None,
        ran_seconds: float,
        outputs: Sequence[dict[str, Any]] = (),
        requeue_after: float | None = None,
        sandbox_ended: dt.datetime | None = None,
    ) -> Job:
        """End an attempt: a final status, or (spot) back to Pending to resume from a checkpoint.

        ``sandbox_ended`` (when the attempt's sandbox was gone) starts a completed job's last phase,
        "Completing": recording its outputs and lineage, so the timeline shows that time too.
        """
        params = {"job": job_id, "status": status, "reason": reason, "exit_code": exit_code}
        with self._system(ctx, "FinishJob", job_id, params) as call:
            row = call.session.get(JobRow, job_id)
            assert row is not None
            row.billable_seconds += max(0.0, ran_seconds)
            row.exit_code = exit_code
            row.claimed_by = ""
            if outputs:
                row.outputs_produced = list(outputs)
            if requeue_after is not None and row.requested != "stop":
                row.status, row.requested = "Pending", ""
                row.not_before = utcnow() + dt.timedelta(seconds=requeue_after)
                _transition(row, "Interrupted", reason)
                call.emit("JobRequeued", job=job_id, reason=reason)
            else:
                if row.requested == "stop" and status != "Completed":
                    status, reason = "Stopped", row.failure_reason or reason
                if status == "Completed" and sandbox_ended is not None and row.status == "InProgress":
                    _transition(row, "Completing", "recording the outputs and lineage", sandbox_ended)
                _finish(row, status, reason)
                call.emit("JobFinished", job=job_id, status=status, reason=reason)
            entity = row.to_entity()
            points = (
                [
                    {"name": m.name, "value": m.value, "step": m.step, "timestamp": m.time.timestamp()}
                    for m in call.session.scalars(select(JobMetricRow).where(JobMetricRow.job_id == job_id))
                ]
                if entity.status in TERMINAL
                else []
            )
        if entity.status in TERMINAL and self.tracking is not None:
            self.tracking.finished(entity, points)
        return entity

    def stale_running(self, live_owner: str) -> builtins.list[str]:
        """Jobs marked running by an executor that no longer exists (a platform restart)."""
        with self.db.read() as session:
            return list(
                session.scalars(
                    select(JobRow.id).where(
                        JobRow.status.in_(("InProgress", "Stopping")), JobRow.claimed_by != live_owner
                    )
                )
            )

    def spot_jobs_past_max_wait(self) -> builtins.list[str]:
        now = utcnow()
        out: builtins.list[str] = []
        with self.db.read() as session:
            for row in session.scalars(
                select(JobRow).where(JobRow.use_spot, JobRow.status.in_(("Pending", "InProgress")))
            ):
                wait = row.spec.get("spot", {}).get("max_wait_seconds")
                if wait and (now - row.created_at).total_seconds() > wait:
                    out.append(row.id)
        return out


def _transition(row: JobRow, status: str, message: str, at: dt.datetime | None = None) -> None:
    """Enter ``status`` at ``at`` (default now); the open phase ends there. Never before the open
    phase's start: the timeline's phases stay in order and none has a negative length."""
    when = utcnow() if at is None else at
    transitions = [dict(t) for t in row.transitions]
    if transitions and transitions[-1].get("start") is not None:
        when = max(when, dt.datetime.fromisoformat(transitions[-1]["start"]))
    now = when.isoformat()
    if transitions and transitions[-1].get("end") is None:
        transitions[-1]["end"] = now
    transitions.append({"status": status, "start": now, "end": None, "message": message[:1000]})
    row.transitions = transitions
    row.secondary_status = status


def _finish(row: JobRow, status: str, reason: str) -> None:
    row.status = status
    row.requested = ""
    row.ended_at = utcnow()
    row.failure_reason = "" if status == "Completed" else reason[:2000]
    _transition(row, status, reason, row.ended_at)  # the timeline ends where the job does
    transitions = [dict(t) for t in row.transitions]
    transitions[-1]["end"] = transitions[-1]["start"]
    row.transitions = transitions
