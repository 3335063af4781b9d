"""The serving service: models, endpoint configs, endpoints, invocations and data capture.

Every guard use of the serving domain is in this module (control-plane calls, invocations, the
platform's own endpoint transitions and capture uploads).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import random
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
from sqlalchemy import select

from strongroom.audit.events import Event
from strongroom.core.context import Grant, Principal, RequestContext
from strongroom.core.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    StrongroomError,
    Unavailable,
    UnsupportedMediaType,
)
from strongroom.db.base import utcnow
from strongroom.db.engine import Database
from strongroom.guard import Guard, Ticket
from strongroom.jobs.service import JobService
from strongroom.kms.service import KmsService
from strongroom.lineage.service import LineageService
from strongroom.policy.engine import Target
from strongroom.serving import approval, capture
from strongroom.serving.channel import ChannelClosed
from strongroom.serving.db import EndpointConfigRow, EndpointRow, ModelRow
from strongroom.serving.models import (
    CaptureStats,
    DataCaptureConfig,
    Endpoint,
    EndpointConfig,
    EndpointConfigSpec,
    EndpointMetrics,
    EndpointSpec,
    Model,
    ModelSpec,
    UpdateEndpointSpec,
)
from strongroom.serving.pool import LiveEndpoint, Variant, WorkerPool
from strongroom.serving.stats import EndpointStats, ServingCollector, capture_stats
from strongroom.storage.keys import parse_uri
from strongroom.storage.models import ObjectVersion
from strongroom.storage.service import StorageService

log = logging.getLogger(__name__)
CONTENT_TYPES = {"text/csv": "csv", "application/json": "json"}
MAX_INVOCATION_BYTES = 6 * 1024 * 1024  # the managed service's payload limit
DECISION_CACHE_SECONDS = 60.0
UNROUTED = "_refused"  # the capture folder of requests refused before a variant was chosen
REVOKING_EVENTS = frozenset({"ApiTokenRevoked", "UserDisabled", "TeamMemberRemoved"})
_PREDICT = {  # the worker's request parameters, encoded once
    (kind, explain): json.dumps({"op": "predict", "kind": kind, "explain": explain}).encode()
    for kind in ("csv", "json")
    for explain in ("", "csv", "json")
}


def _spool_context(team: str, endpoint_id: str) -> dict[str, str]:
    return {"purpose": "endpoint-capture-spool", "team": team, "endpoint": endpoint_id}


@dataclass
class _Call:
    """What one invocation got to before it was answered (for its counters and its capture)."""

    live: LiveEndpoint | None = None
    variant: str = ""
    model_seconds: float = 0.0
    captured: bool = False


class ServingService:
    def __init__(
        self,
        db: Database,
        guard: Guard,
        kms: KmsService,
        storage: StorageService,
        jobs: JobService,
        pool: WorkerPool,
        *,
        spool_root: Path,
        public_url: str,
        lineage: LineageService | None = None,
    ) -> None:
        self.db = db
        self.guard = guard
        self.kms = kms
        self.storage = storage
        self.jobs = jobs
        self.pool = pool
        self.spool_root = spool_root
        self.public_url = public_url.rstrip("/")
        self.lineage = lineage
        self.system = RequestContext.system()
        self._spools: dict[str, capture.CaptureSpool] = {}
        self._configs: dict[str, EndpointConfigSpec] = {}
        self.stats = EndpointStats()
        # endpoint id -> (config name, config spec, pinned models) of an accepted UpdateEndpoint.
        self._pending: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self.wake: Any = lambda: None
        # In an API process of `up --workers N` that does not own the endpoint workers: hands scoring to the owner.
        self.relay: Callable[[str, str, bytes, str, str, str], Awaitable[tuple[bytes, str]]] | None = None
        # Decisions being made (on the event loop): one request per credential and endpoint decides
        # while the requests that arrive meanwhile wait for it, instead of each deciding in a thread.
        self._deciding: dict[tuple[object, ...], asyncio.Future[None]] = {}

    # -- models ------------------------------------------------------------------------------

    def create_model(self, ctx: RequestContext, team: str, spec: ModelSpec) -> Model:
        """``CreateModel``: pin the archive (or the training job's output) and the runtime."""
        context = {"network_isolation": spec.network_isolation, "volume_kms_key": spec.kms_key}
        target = Target("model", team, spec.name, owner=ctx.principal.user, tags=spec.tags)
        params = spec.model_dump(mode="json")
        with self.guard.begin(ctx, "CreateModel", target, params=params, context=context) as call:
            self._no_model(team, spec.name)
            self.kms.describe_key(ctx, team, spec.kms_key)
            source_job, head = self.model_archive(ctx, team, spec.model_data, spec.training_job)
            with call.transaction():
                if (replayed := call.replay(Model)) is not None:
                    return replayed
                if call.session.scalars(
                    select(ModelRow.id).where(ModelRow.team == team, ModelRow.name == spec.name)
                ).first():
                    raise self._model_exists(team, spec.name)
                row = ModelRow(
                    id=uuid.uuid4().hex,
                    team=team,
                    name=spec.name,
                    created_by=ctx.principal.user,
                    created_at=utcnow(),
                    spec={
                        "model_data": head.uri,
                        "version_id": head.version_id,
                        "sha256": head.sha256,
                        "runtime": spec.runtime,
                        "network_isolation": spec.network_isolation,
                        "kms_key": spec.kms_key,
                        "source_job": source_job,
                        "tags": spec.tags,
                    },
                )
                call.session.add(row)
                call.emit("ModelCreated", model=spec.name, source_job=source_job)
                return call.result(row.to_entity())

    def model_archive(
        self, ctx: RequestContext, team: str, model_data: str, training_job: str
    ) -> tuple[str, ObjectVersion]:
        """The archive a model serves: ``model_data``, or the ``model.tar.gz`` that ``training_job``
        produced; its source job's resource name ("" for an archive) and its ``head_object``."""
        source_job, uri = "", model_data
        if training_job:
            job = self.jobs.describe(ctx, team, training_job)
            if job.status != "Completed":
                raise Conflict(
                    f"training job {training_job} is {job.status}; it has no model yet", field="training_job"
                )
            found = [o for o in job.outputs_produced if o.uri.endswith("model.tar.gz")]
            if not found:
                raise InvalidInput(f"training job {training_job} produced no model.tar.gz", field="training_job")
            source_job, uri = job.srn, found[0].uri
        bucket, key = parse_uri(uri)
        try:
            head = self.storage.head_object(ctx, bucket, key)
        except StrongroomError as exc:
            raise type(exc)(f"model_data: {exc.detail}", field="model_data") from None
        owner = self.storage.describe_bucket(ctx, bucket).team
        if owner != team:
            raise InvalidInput(
                f"{uri} belongs to team {owner}; a model reads its own team's archive", field="model_data"
            )
        return source_job, head

    @staticmethod
    def _model_exists(team: str, name: str) -> Conflict:
        return Conflict(
            f"team {team} already has a model named {name!r}; delete it first or choose another name", field="name"
        )

    def _no_model(self, team: str, name: str) -> None:
        with self.db.read() as session:
            if session.scalars(select(ModelRow.id).where(ModelRow.team == team, ModelRow.name == name)).first():
                raise self._model_exists(team, name)

    def describe_model(self, ctx: RequestContext, team: str, name: str) -> Model:
        with self.guard.begin(ctx, "DescribeModel", Target("model", team, name)) as call, call.transaction(write=False):
            return _find(call.session, ModelRow, team, name, "model").to_entity()

    def list_models(self, ctx: RequestContext, team: str) -> list[Model]:
        with self.guard.begin(ctx, "ListModels", Target("model", team, "*")) as call, call.transaction(write=False):
            rows = call.session.scalars(
                select(ModelRow).where(ModelRow.team == team).order_by(ModelRow.created_at.desc())
            )
            return [r.to_entity() for r in rows]

    def delete_model(self, ctx: RequestContext, team: str, name: str) -> None:
        """Delete a model (running endpoints keep serving the copy they pinned)."""
        with self.guard.begin(ctx, "DeleteModel", Target("model", team, name)) as call, call.transaction():
            call.session.delete(_find(call.session, ModelRow, team, name, "model"))
            call.emit("ModelDeleted", model=name)

    # -- endpoint configs ---------------------------------------------------------------------

    def create_endpoint_config(self, ctx: RequestContext, team: str, spec: EndpointConfigSpec) -> EndpointConfig:
        target = Target("endpoint-config", team, spec.name, owner=ctx.principal.user)
        params = spec.model_dump(mode="json", by_alias=True)
        with self.guard.begin(ctx, "CreateEndpointConfig", target, params=params) as call:
            capture_config = spec.data_capture_config
            if capture_config is not None:
                bucket, _ = parse_uri(capture_config.destination_s3_uri)
                try:
                    found = self.storage.describe_bucket(ctx, bucket)
                except StrongroomError as exc:
                    raise type(exc)(
                        f"DataCaptureConfig.DestinationS3Uri: {exc.detail}", field="DataCaptureConfig.DestinationS3Uri"
                    ) from None
                if found.team != team:
                    raise InvalidInput(
                        f"{capture_config.destination_s3_uri} belongs to team {found.team}; "
                        "capture goes to your team's bucket",
                        field="DataCaptureConfig.DestinationS3Uri",
                    )
            self.kms.describe_key(ctx, team, spec.kms_key)
            with call.transaction():
                if (replayed := call.replay(EndpointConfig)) is not None:
                    return replayed
                for index, variant in enumerate(spec.production_variants):
                    if not call.session.scalars(
                        select(ModelRow.id).where(ModelRow.team == team, ModelRow.name == variant.model_name)
                    ).first():
                        raise NotFound(
                            f"team {team} has no model named {variant.model_name!r}",
                            field=f"ProductionVariants[{index}].ModelName",
                        )
                names = [v.model_name for v in spec.production_variants]
                deployed = call.session.scalars(select(ModelRow).where(ModelRow.team == team, ModelRow.name.in_(names)))
                fields = {
                    v.model_name: f"ProductionVariants[{i}].ModelName" for i, v in enumerate(spec.production_variants)
                }
                approval.require_approval(call, team, {r.name: r.spec for r in deployed}, "ProductionVariants", fields)
                if call.session.scalars(
                    select(EndpointConfigRow.id).where(
                        EndpointConfigRow.team == team, EndpointConfigRow.name == spec.name
                    )
                ).first():
                    raise Conflict(f"team {team} already has an endpoint config named {spec.name!r}", field="name")
                row = EndpointConfigRow(
                    id=uuid.uuid4().hex,
                    team=team,
                    name=spec.name,
                    created_by=ctx.principal.user,
                    created_at=utcnow(),
                    spec=spec.model_dump(mode="json", by_alias=True),
                )
                call.session.add(row)
                return call.result(row.to_entity())

    def describe_endpoint_config(self, ctx: RequestContext, team: str, name: str) -> EndpointConfig:
        with (
            self.guard.begin(ctx, "DescribeEndpointConfig", Target("endpoint-config", team, name)) as call,
            call.transaction(write=False),
        ):
            return _find(call.session, EndpointConfigRow, team, name, "endpoint config").to_entity()

    def list_endpoint_configs(self, ctx: RequestContext, team: str) -> list[EndpointConfig]:
        with (
            self.guard.begin(ctx, "ListEndpointConfigs", Target("endpoint-config", team, "*")) as call,
            call.transaction(write=False),
        ):
            rows = call.session.scalars(select(EndpointConfigRow).where(EndpointConfigRow.team == team))
            return [r.to_entity() for r in rows]

    def delete_endpoint_config(self, ctx: RequestContext, team: str, name: str) -> None:
        with (
            self.guard.begin(ctx, "DeleteEndpointConfig", Target("endpoint-config", team, name)) as call,
            call.transaction(),
        ):
            call.session.delete(_find(call.session, EndpointConfigRow, team, name, "endpoint config"))

    # -- endpoints ----------------------------------------------------------------------------

    def _url(self, team: str, name: str) -> str:
        return f"{self.public_url}/endpoints/{team}/{name}/invocations"

    def _entity(self, row: EndpointRow) -> Endpoint:
        endpoint = row.to_entity(self._url(row.team, row.name))
        counted = self.stats.totals(row.team, row.name)
        if counted is not None:
            endpoint.invocations = counted
        endpoint.capture = self._capture_stats(row.id)
        return endpoint

    def _capture_stats(self, endpoint_id: str) -> CaptureStats:
        spool = self._spools.get(endpoint_id)
        if spool is None:
            return CaptureStats()
        pending, oldest = 0, None
        with contextlib.suppress(OSError):  # a segment sealed or uploaded while we look
            pending = len(capture.sealed_segments(spool.directory))
            oldest = capture.oldest_pending(spool.directory)
        return capture_stats(spool.captured, spool.dropped, pending, spool.uploaded_objects, oldest, spool.flushes)

    def collector(self) -> ServingCollector:
        """The data plane's Prometheus families (the platform registers it on ``/metrics``)."""

        def captures() -> list[tuple[str, str, CaptureStats]]:
            return [
                (live.team, live.name, self._capture_stats(endpoint_id))
                for endpoint_id, live in list(self.pool.live_endpoints().items())
                if endpoint_id in self._spools
            ]

        return ServingCollector(self.stats, captures)

    def endpoint_metrics(self, ctx: RequestContext, team: str, name: str) -> EndpointMetrics:
        """Per-variant invocation counters and latency histograms, and the capture's counters."""
        with (
            self.guard.begin(ctx, "DescribeEndpoint", Target("endpoint", team, name)) as call,
            call.transaction(write=False),
        ):
            row = _find(call.session, EndpointRow, team, name, "endpoint")
            return EndpointMetrics(
                team=team,
                endpoint=name,
                variants=self.stats.variants(team, name),
                capture=self._capture_stats(row.id),
            )

    def create_endpoint(self, ctx: RequestContext, team: str, spec: EndpointSpec) -> Endpoint:
        """``CreateEndpoint``: recorded ``Creating``; the serving worker starts its workers."""
        target = Target("endpoint", team, spec.name, owner=ctx.principal.user)
        params = spec.model_dump(mode="json", by_alias=True)
        with self.guard.begin(ctx, "CreateEndpoint", target, params=params) as call:
            with self.db.read() as session:
                config = _find(
                    session, EndpointConfigRow, team, spec.endpoint_config_name, "endpoint config", "EndpointConfigName"
                )
                config_spec = EndpointConfigSpec.model_validate(config.spec)
            endpoint_id = uuid.uuid4().hex
            spool_key = self.kms.generate_data_key(
                self.system, team, config_spec.kms_key, _spool_context(team, endpoint_id)
            )
            with call.transaction():
                if (replayed := call.replay(Endpoint)) is not None:
                    return replayed
                if call.session.scalars(
                    select(EndpointRow.id).where(EndpointRow.team == team, EndpointRow.name == spec.name)
                ).first():
                    raise Conflict(f"team {team} already has an endpoint named {spec.name!r}", field="name")
                models = self._pin_models(call.session, team, config_spec, config.name)
                approval.require_approval(call, team, models, "EndpointConfigName")
                now = utcnow()
                grant = call.decision.grant
                row = EndpointRow(
                    id=endpoint_id,
                    team=team,
                    name=spec.name,
                    config_name=config.name,
                    config=config.spec,
                    models=models,
                    created_by=ctx.principal.user,
                    role=grant.role if grant else "MLOpsEngineer",
                    status="Creating",
                    failure_reason="",
                    spool_key=spool_key.wrapped,
                    created_at=now,
                    updated_at=now,
                )
                call.session.add(row)
                call.emit("EndpointCreating", endpoint=spec.name)
                created = call.result(self._entity(row))
        self.wake()
        self._record_lineage(ctx, team, spec.name, config_spec, models)
        return created

    def _record_lineage(
        self, ctx: RequestContext, team: str, name: str, config: EndpointConfigSpec, models: dict[str, Any]
    ) -> None:
        """model.tar.gz --ContributedTo--> endpoint --ContributedTo--> capture destination (the model
        artifact is the one its training job produced, so the chain reaches the job and its data)."""
        if self.lineage is None:
            return
        try:
            endpoint = self.lineage.record_context(ctx, team, name, "Endpoint", {"config": config.name})
            for model_name, model in sorted(models.items()):
                artifact = self.lineage.record_artifact(
                    ctx,
                    team,
                    model["model_data"],
                    "Model",
                    sha256=model["sha256"],
                    version_id=model["version_id"],
                    properties={"model": model_name},
                )
                self.lineage.associate(ctx, team, artifact.srn, endpoint.srn, "ContributedTo")
            approval.record_deployment(self.lineage, self.db, ctx, team, endpoint.srn, models)
            if config.data_capture_config is not None:
                captured = self.lineage.record_artifact(
                    ctx,
                    team,
                    config.data_capture_config.destination_s3_uri,
                    "DataSet",
                    properties={"purpose": "data capture"},
                )
                self.lineage.associate(ctx, team, endpoint.srn, captured.srn, "ContributedTo")
        except StrongroomError as exc:  # the endpoint exists; a missing lineage edge is logged, not fatal
            log.warning("endpoint %s/%s: lineage not recorded: %s", team, name, exc.detail)

    def describe_endpoint(self, ctx: RequestContext, team: str, name: str) -> Endpoint:
        with (
            self.guard.begin(ctx, "DescribeEndpoint", Target("endpoint", team, name)) as call,
            call.transaction(write=False),
        ):
            return self._entity(_find(call.session, EndpointRow, team, name, "endpoint"))

    def list_endpoints(self, ctx: RequestContext, team: str) -> list[Endpoint]:
        with (
            self.guard.begin(ctx, "ListEndpoints", Target("endpoint", team, "*")) as call,
            call.transaction(write=False),
        ):
            rows = call.session.scalars(
                select(EndpointRow).where(EndpointRow.team == team).order_by(EndpointRow.created_at)
            )
            return [self._entity(r) for r in rows]

    def delete_endpoint(self, ctx: RequestContext, team: str, name: str) -> Endpoint:
        """``DeleteEndpoint``: ``Deleting`` now; workers stop and the capture is uploaded, then it is gone."""
        with self.guard.begin(ctx, "DeleteEndpoint", Target("endpoint", team, name)) as call, call.transaction():
            row = _find(call.session, EndpointRow, team, name, "endpoint")
            row.status, row.updated_at = "Deleting", utcnow()
            call.emit("EndpointDeleting", endpoint=name)
            entity = self._entity(row)
        self.guard.forget_decisions()
        self.wake()
        return entity

    def update_endpoint(self, ctx: RequestContext, team: str, name: str, spec: UpdateEndpointSpec) -> Endpoint:
        """``UpdateEndpoint``: ``Updating`` now; the serving worker starts the new config's workers
        and switches traffic to them only once they all serve (blue-green), then stops the old ones.
        If the new config cannot start, the endpoint is ``InService`` on its old config again and
        ``failure_reason`` says why."""
        target = Target("endpoint", team, name)
        params = spec.model_dump(mode="json", by_alias=True)
        with self.guard.begin(ctx, "UpdateEndpoint", target, params=params) as call:
            with self.db.read() as session:
                config = _find(
                    session, EndpointConfigRow, team, spec.endpoint_config_name, "endpoint config", "EndpointConfigName"
                )
                config_spec = EndpointConfigSpec.model_validate(config.spec)
            with call.transaction():
                if (replayed := call.replay(Endpoint)) is not None:
                    return replayed
                row = _find(call.session, EndpointRow, team, name, "endpoint")
                if row.status != "InService":
                    raise Conflict(
                        f"endpoint {name} is {row.status}; only an InService endpoint can be updated "
                        "(wait for it, or describe it for its failure reason)",
                        field="name",
                    )
                models = self._pin_models(call.session, team, config_spec, config.name)
                approval.require_approval(call, team, models, "EndpointConfigName")
                row.status, row.failure_reason, row.updated_at = "Updating", "", utcnow()
                self._pending[row.id] = (config.name, config.spec, models)
                call.emit("EndpointUpdating", endpoint=name, config=config.name, previous=row.config_name)
                updated = call.result(self._entity(row))
        self.wake()
        self._record_lineage(ctx, team, name, config_spec, models)
        return updated

    @staticmethod
    def _pin_models(session: Any, team: str, config: EndpointConfigSpec, config_name: str) -> dict[str, Any]:
        models: dict[str, Any] = {}
        for variant in config.production_variants:
            model = session.scalars(
                select(ModelRow).where(ModelRow.team == team, ModelRow.name == variant.model_name)
            ).first()
            if model is None:
                raise NotFound(
                    f"model {variant.model_name!r} (in config {config_name}) no longer exists",
                    field="EndpointConfigName",
                )
            models[variant.model_name] = model.spec
        return models

    # -- invocations (on the event loop) -------------------------------------------------------

    def _resume(self, ctx: RequestContext, team: str, name: str) -> Ticket | None:
        """The InvokeEndpoint ticket covered by a kept decision (memory only: on the event loop)."""
        return self.guard.resume(ctx, "InvokeEndpoint", Target("endpoint", team, name))

    async def _authorize(self, ctx: RequestContext, team: str, name: str) -> tuple[Ticket, bool]:
        """The invocation's ticket, and whether a kept decision covers it (then it writes no event).

        When the kept decision is missing or has expired (every ``DECISION_CACHE_SECONDS``), the
        first request decides (in a thread: it writes the audit log) and the requests of the same
        credential and endpoint that arrive meanwhile wait for it, then resume under the decision
        it kept; had it been refused (never kept), each decides for itself, as before."""
        ticket = self._resume(ctx, team, name)
        if ticket is not None:
            return ticket, True
        key = self.guard.decision_key(ctx, "InvokeEndpoint", Target("endpoint", team, name))
        deciding = self._deciding.get(key)
        if deciding is not None:
            await asyncio.shield(deciding)
            ticket = self._resume(ctx, team, name)
            if ticket is not None:
                return ticket, True
        decided = self._deciding[key] = asyncio.get_running_loop().create_future()
        try:
            return await anyio.to_thread.run_sync(self._begin, ctx, team, name), False
        finally:
            if self._deciding.get(key) is decided:
                del self._deciding[key]
            decided.set_result(None)

    def _begin(self, ctx: RequestContext, team: str, name: str) -> Ticket:
        """Decide an InvokeEndpoint and audit it (a thread: it writes the audit log). The guard keeps
        the allowed decision for ``DECISION_CACHE_SECONDS``; the invocations it covers write no
        event of their own (they are counted per endpoint). Denials are never kept."""
        target = Target("endpoint", team, name)
        return self.guard.begin(ctx, "InvokeEndpoint", target, cache_seconds=DECISION_CACHE_SECONDS)

    async def invoke(
        self,
        ctx: RequestContext,
        team: str,
        name: str,
        body: bytes,
        content_type: str,
        target_variant: str = "",
        *,
        explain: str = "",
        refusal: StrongroomError | None = None,
    ) -> tuple[bytes, str]:
        """Score ``body`` on the endpoint; the answer and its content type.

        Authorized once per credential and endpoint (see :meth:`_begin`); a covered invocation
        touches neither the database nor a thread. With capture on, the answer is returned only
        once its capture record is durable (group commit, :class:`capture.CaptureSpool`). A
        refused request (bad input, or ``refusal``: what the front door found before the body,
        such as 413 or 408) is counted, captured as an error outcome when sampled, and raised.
        ``explain`` (``"json"`` or ``"csv"``) answers each score with its exact per-feature SHAP
        contributions in that format.
        """
        ticket, covered = await self._authorize(ctx, team, name)
        started = time.perf_counter()
        call = _Call()
        try:
            if refusal is not None:
                raise refusal
            answer = await self._invoke(team, name, body, content_type, target_variant, explain, call)
        except BaseException as exc:
            status = exc.status if isinstance(exc, StrongroomError) else 500
            self.stats.record(team, name, call.variant, status, call.model_seconds, time.perf_counter() - started)
            if not call.captured:
                try:
                    await self._capture_refusal(team, name, call, body, content_type, exc)
                except Exception:  # the client gets its error whatever happens to the error's record
                    log.exception("endpoint %s/%s: the refused request could not be captured", team, name)
            if not covered:
                await anyio.to_thread.run_sync(ticket.finish, exc)
            raise
        finally:
            if call.live is not None:
                self.pool.release(call.live)
        self.stats.record(team, name, call.variant, 200, call.model_seconds, time.perf_counter() - started)
        if not covered:
            await anyio.to_thread.run_sync(ticket.finish)
        return answer

    def _capture_config(self, endpoint_id: str) -> tuple[capture.CaptureSpool, DataCaptureConfig] | None:
        """The spool and capture config when this request is sampled, else None."""
        spool = self._spools.get(endpoint_id)
        config = self._configs.get(endpoint_id)
        capture_config = config.data_capture_config if config else None
        if (
            spool is None
            or capture_config is None
            or not capture_config.enable_capture
            or random.uniform(0, 100) >= capture_config.initial_sampling_percentage
        ):
            return None
        return spool, capture_config

    async def _capture_refusal(
        self, team: str, name: str, call: _Call, body: bytes, content_type: str, exc: BaseException
    ) -> None:
        """Capture a refused request as an error outcome (never as if it had been answered)."""
        live = call.live or self.pool.route(team, name)
        if live is None:
            return
        sampled = self._capture_config(live.endpoint_id)
        if sampled is None:
            return
        spool, capture_config = sampled
        problem = exc.to_problem() if isinstance(exc, StrongroomError) else {"status": 500, "title": "Internal error"}
        if isinstance(exc, PayloadTooLarge):
            body = b""  # not read: only its size is known
        record = capture.error_record(capture_config, content_type, body, problem, dt.datetime.now(dt.UTC))
        # A failure is counted as dropped; the answer is an error anyway.
        await spool.commit(call.variant or UNROUTED, record)

    async def _invoke(
        self, team: str, name: str, body: bytes, content_type: str, target_variant: str, explain: str, call: _Call
    ) -> tuple[bytes, str]:
        base = content_type.split(";", 1)[0].strip().lower()
        kind = CONTENT_TYPES.get(base)
        if kind is None:
            raise UnsupportedMediaType(
                f"Content-Type {content_type[:80]!r} is not served; send text/csv or application/json",
                field="Content-Type",
            )
        if len(body) > MAX_INVOCATION_BYTES:
            raise PayloadTooLarge(f"the body is {len(body)} bytes; an invocation takes at most {MAX_INVOCATION_BYTES}")
        if not body.strip():
            raise InvalidInput("the body is empty; send one or more rows", field="body")
        if self.relay is not None:  # another API process owns the endpoint workers
            return await self.relay(team, name, body, content_type, target_variant, explain)
        return await self._score(team, name, body, kind, content_type, target_variant, explain, call)

    async def score(
        self, team: str, name: str, body: bytes, content_type: str, target_variant: str, explain: str = ""
    ) -> tuple[bytes, str]:
        """Score an invocation another API process checked, authorized and audited (``up --workers``)."""
        kind = CONTENT_TYPES.get(content_type.split(";", 1)[0].strip().lower())
        if kind is None:
            raise UnsupportedMediaType(f"Content-Type {content_type[:80]!r} is not served", field="Content-Type")
        call = _Call()
        try:
            return await self._score(team, name, body, kind, content_type, target_variant, explain, call)
        finally:
            if call.live is not None:
                self.pool.release(call.live)

    async def _score(
        self,
        team: str,
        name: str,
        body: bytes,
        kind: str,
        content_type: str,
        target_variant: str,
        explain: str,
        call: _Call,
    ) -> tuple[bytes, str]:
        """Score on this process's workers and capture the answer."""
        live = call.live = self.pool.acquire(team, name)
        if live is None:
            raise Unavailable(f"endpoint {team}/{name} is not InService (describe it for its status)")
        variant = live.choose()
        if target_variant:
            variant = next((v for v in live.variants if v.name == target_variant), None)  # type: ignore[assignment]
            if variant is None:
                raise InvalidInput(f"endpoint {name} has no variant {target_variant!r}", field="X-Target-Variant")
        call.variant = variant.name
        meta = _PREDICT[(kind, explain)]
        answer = None
        sent = time.perf_counter()
        for worker in variant.pick():
            channel = worker.channel
            if channel is None:
                continue
            try:
                answer = await channel.request(meta, body)
                break
            except (ChannelClosed, TimeoutError):
                continue  # a worker that died (the supervisor restarts it): try the next
        call.model_seconds = time.perf_counter() - sent
        if answer is None:
            raise Unavailable(f"endpoint {team}/{name}: no worker of variant {variant.name} is up; retry shortly")
        status, out_meta, content = answer
        if status == 400:
            problem = json.loads(content)
            where = "body" if problem.get("row") is None else f"body[row {problem['row']}]"
            if problem.get("column") is not None:
                where += f"[column {problem['column']}]"
            raise InvalidInput(problem["detail"], field=where, row=problem.get("row"), column=problem.get("column"))
        if status != 200:
            raise Unavailable(f"endpoint {team}/{name}: the worker answered {status}")
        out_type = out_meta.decode() or "text/csv; charset=utf-8"
        sampled = self._capture_config(live.endpoint_id)
        if sampled is not None:
            spool, capture_config = sampled
            record = capture.capture_record(
                capture_config, content_type, body, out_type, content, dt.datetime.now(dt.UTC)
            )
            call.captured = True
            if not await spool.commit(variant.name, record):
                raise Unavailable("the request could not be captured; it was not answered (retry it)")
        return content, out_type

    def on_identity_event(self, event: Event) -> None:
        """A revoked token, a disabled user or a removed membership drops every cached decision."""
        if event.kind == "state" and event.name in REVOKING_EVENTS:
            self.guard.forget_decisions()

    # -- the platform's side (the serving worker thread) ---------------------------------------

    def _set_status(self, row_id: str, status: str, reason: str = "") -> None:
        with self.db.read() as session:
            found = session.get(EndpointRow, row_id)
            if found is None:
                return
            target = Target("endpoint", found.team, found.name)
        with (
            self.guard.begin(
                self.system, "UpdateEndpointStatus", target, params={"status": status, "reason": reason[:500]}
            ) as call,
            call.transaction(),
        ):
            row = call.session.get(EndpointRow, row_id)
            if row is None:
                return
            row.status, row.failure_reason, row.updated_at = status, reason[:2000], utcnow()
            call.emit(f"Endpoint{status}", endpoint=row.name, reason=reason[:500])

    def _execution_ctx(self, row: EndpointRow) -> RequestContext:
        principal = Principal(
            user=row.created_by,
            token_kind="execution",
            grants=(Grant(row.role, row.team),),
            scope=f"srn:strongroom:{row.team}:endpoint/{row.name}",
        )
        return RequestContext(principal=principal, source="platform", user_agent="strongroom-endpoint")

    def _start(self, row: EndpointRow) -> None:
        ctx = self._execution_ctx(row)
        config = EndpointConfigSpec.model_validate(row.config)
        key = self.kms.decrypt(self.system, row.team, row.spool_key, _spool_context(row.team, row.id)).plaintext
        spool = capture.CaptureSpool(self.spool_root / row.id, key, row.id)
        self._upload(row, spool, config)  # what a crash left behind first
        variants = self._variants(ctx, config, row.models)
        self._spools[row.id], self._configs[row.id] = spool, config
        try:
            self.pool.start(row.id, row.team, row.name, variants)
        except BaseException:
            self._spools.pop(row.id, None)
            spool.close()
            raise

    def _variants(self, ctx: RequestContext, config: EndpointConfigSpec, models: dict[str, Any]) -> list[Variant]:
        variants = []
        for v in config.production_variants:
            model = models[v.model_name]
            bucket, object_key = parse_uri(model["model_data"])
            archive = self.storage.get_object_bytes(ctx, bucket, object_key, model["version_id"])
            variants.append(
                Variant(
                    v.variant_name,
                    v.initial_variant_weight,
                    archive,
                    v.initial_instance_count,
                    runtime=model.get("runtime", "xgboost"),
                )
            )
        return variants

    def _update(self, row: EndpointRow) -> None:
        """Carry out an accepted UpdateEndpoint (blue-green, see :meth:`WorkerPool.replace`)."""
        pending = self._pending.pop(row.id, None)
        if pending is None or not self.pool.is_live(row.id):
            # The platform restarted mid-update (the request was in its memory): serve the old config.
            if not self.pool.is_live(row.id):
                self._start(row)
            reason = f"the update was interrupted by a platform restart; still serving {row.config_name}"
            self._set_status(row.id, "InService", reason)
            return
        config_name, config_dict, models = pending
        config = EndpointConfigSpec.model_validate(config_dict)
        old_config = EndpointConfigSpec.model_validate(row.config)
        try:
            variants = self._variants(self._execution_ctx(row), config, models)
            self.pool.replace(row.id, variants, on_switch=lambda: self._configs.__setitem__(row.id, config))
        except StrongroomError as exc:
            log.warning("endpoint %s/%s: update to %s failed: %s", row.team, row.name, config_name, exc.detail)
            reason = f"the update to {config_name} failed; still serving {row.config_name}: {exc.detail}"
            self._set_status(row.id, "InService", reason)
            return
        except Exception as exc:
            log.exception("endpoint %s/%s: update to %s failed", row.team, row.name, config_name)
            reason = f"the update to {config_name} failed; still serving {row.config_name}: {type(exc).__name__}: {exc}"
            self._set_status(row.id, "InService", reason)
            return
        with (
            self.guard.begin(
                self.system,
                "UpdateEndpointStatus",
                Target("endpoint", row.team, row.name),
                params={"status": "InService", "config": config_name},
            ) as call,
            call.transaction(),
        ):
            found = call.session.get(EndpointRow, row.id)
            if found is not None:
                found.config_name, found.config, found.models = config_name, config_dict, models
                found.status, found.failure_reason, found.updated_at = "InService", "", utcnow()
                call.emit("EndpointInService", endpoint=row.name, config=config_name, previous=row.config_name)
        spool = self._spools.get(row.id)
        if spool is not None:  # what the old config captured goes to its destination
            try:
                self._upload(row, spool, old_config)
            except StrongroomError:
                log.exception("endpoint %s/%s: capture upload failed; kept in the spool", row.team, row.name)

    def _upload(
        self, row: EndpointRow, spool: capture.CaptureSpool, config: EndpointConfigSpec, *, seal: bool = True
    ) -> None:
        capture_config = config.data_capture_config
        segments = spool.seal() if seal else capture.sealed_segments(spool.directory)
        if not segments or capture_config is None:
            return
        bucket, prefix = parse_uri(capture_config.destination_s3_uri)
        ctx = self._execution_ctx(row)
        for segment in segments:
            objects = capture.hourly_objects(spool.read(segment), prefix, row.name)
            for key, lines in objects.items():
                self.storage.put_object(
                    ctx,
                    bucket,
                    key,
                    [b"\n".join(lines) + b"\n"],
                    content_type="application/jsonlines",
                    kms_key=config.kms_key,
                    action="PutCaptureData",
                    extra_params={"endpoint": row.name, "records": len(lines)},
                )
                spool.uploaded_objects += 1
            segment.unlink()

    def reconcile(self) -> bool:
        """Bring live workers in line with the database: start Creating (and, after a restart,
        InService) endpoints, remove Deleting ones, restart dead workers, upload capture."""
        with self.db.read() as session:
            rows = list(session.scalars(select(EndpointRow)))
            for row in rows:
                session.expunge(row)
        busy = False
        for row in rows:
            if row.status == "Deleting":
                self._remove(row)
                busy = True
            elif row.status == "Updating":
                busy = True
                try:
                    self._update(row)
                except StrongroomError as exc:  # only when the old config could not be restarted either
                    log.warning("endpoint %s/%s failed: %s", row.team, row.name, exc.detail)
                    self._set_status(row.id, "Failed", exc.detail)
                except Exception as exc:
                    log.exception("endpoint %s/%s failed", row.team, row.name)
                    self._set_status(row.id, "Failed", f"the endpoint could not start: {type(exc).__name__}: {exc}")
            elif row.status in ("Creating", "InService") and not self.pool.is_live(row.id):
                busy = True
                if row.status == "InService":  # the platform restarted: it serves again once its workers are up
                    self._set_status(row.id, "Creating", "restarting the workers after a platform restart")
                    row.status = "Creating"
                try:
                    self._start(row)
                except StrongroomError as exc:
                    log.warning("endpoint %s/%s failed: %s", row.team, row.name, exc.detail)
                    self._set_status(row.id, "Failed", exc.detail)
                    continue
                except Exception as exc:
                    log.exception("endpoint %s/%s failed", row.team, row.name)
                    self._set_status(row.id, "Failed", f"the endpoint could not start: {type(exc).__name__}: {exc}")
                    continue
                if row.status != "InService":
                    self._set_status(row.id, "InService")
        for line in self.pool.supervise():
            log.warning("endpoints: %s", line)
        return busy

    def captured_records(self, team: str, name: str) -> int | None:
        """Records the endpoint captured since this platform process started (None: not live here)."""
        with self.db.read() as session:
            endpoint_id = session.scalars(
                select(EndpointRow.id).where(EndpointRow.team == team, EndpointRow.name == name)
            ).first()
        spool = self._spools.get(endpoint_id) if endpoint_id else None
        return spool.captured if spool is not None else None

    def flush_capture(self) -> None:
        """Upload sealed capture segments of every live endpoint."""
        with self.db.read() as session:
            rows = [r for r in session.scalars(select(EndpointRow)) if r.id in self._spools]
            for row in rows:
                session.expunge(row)
        for row in rows:
            spool = self._spools.get(row.id)
            if spool is not None:
                try:
                    self._upload(row, spool, EndpointConfigSpec.model_validate(row.config))
                except StrongroomError:
                    log.exception("endpoint %s/%s: capture upload failed; kept in the spool", row.team, row.name)

    def _remove(self, row: EndpointRow) -> None:
        self.pool.stop(row.id)
        spool = self._spools.pop(row.id, None)
        self._configs.pop(row.id, None)
        self._pending.pop(row.id, None)
        self.stats.forget(row.team, row.name)
        if spool is not None:
            spool.close()
            self._upload(row, spool, EndpointConfigSpec.model_validate(row.config), seal=False)
            with contextlib.suppress(OSError):
                spool.directory.rmdir()  # only when every segment was uploaded
        with (
            self.guard.begin(
                self.system,
                "UpdateEndpointStatus",
                Target("endpoint", row.team, row.name),
                params={"status": "Deleted"},
            ) as call,
            call.transaction(),
        ):
            found = call.session.get(EndpointRow, row.id)
            if found is not None:
                call.session.delete(found)
            call.emit("EndpointDeleted", endpoint=row.name)

    def shutdown(self) -> None:
        self.pool.stop_all()
        for endpoint_id, spool in list(self._spools.items()):
            spool.close()
            self._spools.pop(endpoint_id, None)


def _find(session: Any, table: Any, team: str, name: str, what: str, field: str = "name") -> Any:
    row = session.scalars(select(table).where(table.team == team, table.name == name)).first()
    if row is None:
        raise NotFound(f"team {team} has no {what} named {name!r}", field=field)
    return row
