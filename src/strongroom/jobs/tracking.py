"""What jobs record without any user code: a trial component when given an experiment config,
the lineage of every run (inputs, code, commit, runtime, hyperparameters -> outputs), and
OpenLineage run events."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from typing import TYPE_CHECKING, Any

from strongroom.core.context import RequestContext
from strongroom.core.errors import InvalidInput, NotFound
from strongroom.experiments.models import ArtifactValue, ExperimentConfig
from strongroom.experiments.service import ExperimentsService
from strongroom.jobs.models import Job
from strongroom.lineage.models import ArtifactRef, GitCommit, JobLineage, RuntimeRef
from strongroom.lineage.service import LineageService

if TYPE_CHECKING:
    from strongroom.lineage.openlineage import OpenLineageEmitter

log = logging.getLogger(__name__)
JOB_TYPES = {
    "processing": "ProcessingJob",
    "training": "TrainingJob",
    "transform": "TransformJob",
    "explainability": "ProcessingJob",
    "monitoring": "ProcessingJob",
}


class JobTracking:
    def __init__(
        self,
        experiments: ExperimentsService,
        lineage: LineageService,
        openlineage: Any,  # OpenLineageEmitter (lazy)
    ) -> None:
        self.experiments = experiments
        self.lineage = lineage
        self._openlineage = openlineage
        self.system = RequestContext.system()

    @property
    def openlineage(self) -> OpenLineageEmitter:
        return self._openlineage()

    @staticmethod
    def component_name(job: Job) -> str:
        suffix = "-" + JOB_TYPES[job.kind].lower()[:20]
        return (job.name[: 63 - len(suffix)] + suffix).strip("-")

    def check(self, ctx: RequestContext, spec: Any) -> None:
        """Before a job is created: its experiment config names a trial that exists."""
        config = spec.experiment_config
        if config is None:
            return
        try:
            trial = self.experiments.describe_trial(
                dataclasses.replace(ctx, idempotency_key=""), spec.team, config.trial_name
            )
        except NotFound:
            raise InvalidInput(
                f"experiment_config: trial {config.trial_name!r} does not exist in team {spec.team}; "
                "create it first (Trial.create)",
                field="experiment_config.trial_name",
            ) from None
        if trial.experiment_name != config.experiment_name:
            raise InvalidInput(
                f"experiment_config: trial {config.trial_name!r} belongs to experiment "
                f"{trial.experiment_name!r}, not {config.experiment_name!r}",
                field="experiment_config.experiment_name",
            )

    def created(self, ctx: RequestContext, job: Job) -> None:
        """The job's trial component, created with the submitter's rights (so it is theirs)."""
        config = job.spec.experiment_config
        if config is None:
            return
        # Its own call: the submit request's idempotency key belongs to the job, not to this one.
        self.experiments.start_job_component(
            dataclasses.replace(ctx, idempotency_key=""),
            job.team,
            ExperimentConfig.model_validate(config.model_dump()),
            source=job.srn,
            source_type=JOB_TYPES[job.kind],
            parameters={str(k): v for k, v in job.spec.hyperparameters.items()},
            inputs={
                r.name: ArtifactValue(value=r.uri, sha256=r.sha256, version_id=r.version_id)
                for r in job.inputs_resolved[:50]
            },
        )

    def started(self, job: Job) -> None:
        if self.openlineage.enabled:
            self.openlineage.emit(self.record(job), "START")

    def finished(self, job: Job, metrics: list[dict[str, Any]]) -> None:
        """Record lineage and close the trial component; failures here never fail the job."""
        record = self.record(job)
        try:
            self.lineage.record_job(self.system, job.team, record)
        except Exception:  # recording must never change the job's outcome
            log.exception("could not record the lineage of %s", job.srn)
        if job.spec.experiment_config is not None:
            try:
                self.experiments.finish_job_component(
                    self.system,
                    job.team,
                    self.component_name(job),
                    status="Completed" if job.status == "Completed" else "Failed",
                    status_message=job.failure_reason,
                    metrics=metrics,
                    outputs={
                        o.name
                        if len(job.outputs_produced) == 1
                        else f"{o.name}:{o.uri.rsplit('/', 1)[-1]}": ArtifactValue(
                            value=o.uri, sha256=o.sha256, version_id=o.version_id
                        )
                        for o in job.outputs_produced[:50]
                    },
                )
            except Exception:
                log.exception("could not finish the trial component of %s", job.srn)
        if self.openlineage.enabled:
            self.openlineage.emit(record, "COMPLETE" if job.status == "Completed" else "FAIL", error=job.failure_reason)

    def record(self, job: Job) -> JobLineage:
        spec = job.spec
        versions = job.runtime_version
        runtime = RuntimeRef(
            name=spec.runtime,
            version=versions.get("python", ""),
            digest=hashlib.sha256(json.dumps(versions, sort_keys=True).encode()).hexdigest(),
        )
        code: ArtifactRef | None = None
        if job.code_resolved:
            code = ArtifactRef(
                uri=job.code_resolved["uri"],
                type="Code",
                name="code",
                version_id=job.code_resolved.get("version_id", ""),
                sha256=job.code_resolved.get("sha256", ""),
            )
        git = spec.provenance.get("git") if isinstance(spec.provenance, dict) else None
        commit = None
        if isinstance(git, dict):
            try:
                commit = GitCommit.model_validate(git)
            except ValueError:
                commit = None
        output_type = "Model" if job.kind == "training" else "DataSet"
        seed = spec.hyperparameters.get("seed")
        return JobLineage(
            job=job.srn,
            job_type=JOB_TYPES[job.kind],
            status=job.status,
            runtime=runtime,
            code=code,
            commit=commit,
            inputs=[
                ArtifactRef(uri=r.uri, name=r.name, version_id=r.version_id, sha256=r.sha256)
                for r in job.inputs_resolved
            ],
            outputs=[
                ArtifactRef(uri=o.uri, type=output_type, name=o.name, version_id=o.version_id, sha256=o.sha256)
                for o in job.outputs_produced
            ],
            hyperparameters={str(k): str(v) for k, v in spec.hyperparameters.items()},
            seed=int(seed) if isinstance(seed, int | str) and str(seed).lstrip("-").isdigit() else None,
            entry_point=_entry_point(job),
            environment=dict(spec.environment),
            experiment_component=self.component_name(job) if spec.experiment_config else "",
        )


def _entry_point(job: Job) -> list[str]:
    code = job.spec.code
    if code.algorithm:
        return ["builtin", code.algorithm, *code.arguments]
    return [code.entry_point or (code.source or "").rsplit("/", 1)[-1], *code.arguments]
