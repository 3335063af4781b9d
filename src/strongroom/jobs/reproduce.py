"""Reproduction: run a finished job again from what it recorded, and prove the result the same.

``plan`` rebuilds the job's spec with its runtime (a version mismatch is an error unless
allowed), its exact code object version, its exact input object versions (hash-checked), and
its hyperparameters and seed. The caller submits that spec as a new job; ``compare`` then
checks every output byte for byte (by SHA-256) and names the first difference.
"""

from __future__ import annotations

import contextlib
import re

from pydantic import BaseModel

from strongroom.core.context import RequestContext
from strongroom.core.errors import Conflict, InvalidInput, NotFound
from strongroom.jobs.models import Job, JobSpec
from strongroom.jobs.runtimes import RuntimeRegistry
from strongroom.jobs.service import JobService
from strongroom.storage.keys import parse_uri
from strongroom.storage.service import StorageService


class InputCheck(BaseModel):
    uri: str
    version_id: str
    recorded_sha256: str
    available: bool
    current_sha256: str = ""


class ReproductionPlan(BaseModel):
    original: str
    spec: JobSpec
    runtime_drift: dict[str, list[str]]
    inputs: list[InputCheck]
    notes: list[str]


class OutputComparison(BaseModel):
    name: str
    original: str
    reproduced: str
    original_sha256: str
    reproduced_sha256: str
    identical: bool


class ReproductionReport(BaseModel):
    original: str
    reproduction: str
    identical: bool
    outputs: list[OutputComparison]
    first_difference: str = ""
    notes: list[str] = []


class Reproducer:
    def __init__(self, jobs: JobService, storage: StorageService, runtimes: RuntimeRegistry) -> None:
        self.jobs = jobs
        self.storage = storage
        self.runtimes = runtimes

    def plan(
        self,
        ctx: RequestContext,
        team: str,
        name: str,
        *,
        new_name: str | None = None,
        allow_runtime_drift: bool = False,
        use_latest_inputs: bool = False,
    ) -> ReproductionPlan:
        job = self.jobs.describe(ctx, team, name)
        if job.status != "Completed":
            raise Conflict(f"job {name} is {job.status}; only a completed job can be reproduced", field="name")
        notes: list[str] = []
        current = self.runtimes.resolve(job.spec.runtime).versions
        drift = {
            k: [job.runtime_version.get(k, "-"), current.get(k, "-")]
            for k in sorted(set(current) | set(job.runtime_version))
            if job.runtime_version.get(k) != current.get(k)
        }
        if drift and not allow_runtime_drift:
            what = ", ".join(f"{k} {a} -> {b}" for k, (a, b) in drift.items())
            raise Conflict(
                f"runtime {job.spec.runtime!r} changed since {name} ran ({what}); a reproduction "
                "would not be like for like. Pass --allow-runtime-drift to run it anyway.",
                field="runtime",
                drift=drift,
            )
        if drift:
            notes.append("runtime drift allowed: " + ", ".join(f"{k} {a} -> {b}" for k, (a, b) in drift.items()))
        checks: list[InputCheck] = []
        pins: dict[str, str] = {}
        for recorded in job.inputs_resolved:
            bucket, key = parse_uri(recorded.uri)
            check = InputCheck(
                uri=recorded.uri, version_id=recorded.version_id, recorded_sha256=recorded.sha256, available=True
            )
            try:
                found = self.storage.head_object(ctx, bucket, key, recorded.version_id)
                check.current_sha256 = found.sha256
                if found.sha256 != recorded.sha256:
                    raise Conflict(
                        f"input {recorded.uri} version {recorded.version_id} no longer matches its recorded SHA-256",
                        field="inputs",
                    )
                pins[recorded.uri] = recorded.version_id
            except NotFound:
                check.available = False
                latest = None
                with contextlib.suppress(NotFound):
                    latest = self.storage.head_object(ctx, bucket, key)
                check.current_sha256 = latest.sha256 if latest else ""
                message = (
                    f"input {recorded.uri} version {recorded.version_id} (sha256 {recorded.sha256[:12]}) is gone; "
                    + (f"the latest version has sha256 {latest.sha256[:12]}" if latest else "no version exists")
                )
                if not use_latest_inputs:
                    raise Conflict(
                        message + ". Pass --use-latest-inputs to run on today's data and see the difference.",
                        field="inputs",
                    ) from None
                notes.append(message)
            checks.append(check)
        code = job.spec.code.model_copy(
            update={"version_id": job.code_resolved.get("version_id")} if job.spec.code.source else {}
        )
        name_base = re.sub(r"-repro-\d+$", "", name)
        target = new_name or self._free_name(ctx, team, name_base)
        tags = {**job.spec.tags, "reproduces": name}
        spec = job.spec.model_copy(
            update={"name": target, "code": code, "input_versions": pins, "tags": tags, "experiment_config": None}
        )
        return ReproductionPlan(
            original=name,
            spec=JobSpec.model_validate(spec.model_dump()),
            runtime_drift=drift,
            inputs=checks,
            notes=notes,
        )

    def _free_name(self, ctx: RequestContext, team: str, base: str) -> str:
        existing = {j.name for j in self.jobs.list(ctx, team, limit=1000)}
        for n in range(1, 1000):
            candidate = f"{base[:50]}-repro-{n}"
            if candidate not in existing:
                return candidate
        raise InvalidInput(f"too many reproductions of {base}", field="name")

    def compare(self, ctx: RequestContext, team: str, original: str, reproduction: str) -> ReproductionReport:
        first = self.jobs.describe(ctx, team, original)
        second = self.jobs.describe(ctx, team, reproduction)
        if second.status != "Completed":
            raise Conflict(
                f"the reproduction {reproduction} is {second.status}: {second.failure_reason}", field="reproduction"
            )
        produced = {_normalise(o.uri, second): o for o in second.outputs_produced}
        outputs: list[OutputComparison] = []
        first_difference = ""
        for output in first.outputs_produced:
            key = _normalise(output.uri, first)
            other = produced.pop(key, None)
            same = other is not None and other.sha256 == output.sha256
            outputs.append(
                OutputComparison(
                    name=key,
                    original=output.uri,
                    reproduced=other.uri if other else "",
                    original_sha256=output.sha256,
                    reproduced_sha256=other.sha256 if other else "",
                    identical=same,
                )
            )
            if not same and not first_difference:
                first_difference = (
                    f"{key}: sha256 {output.sha256[:16]} vs {other.sha256[:16]}"
                    if other
                    else f"{key}: not produced by the reproduction"
                )
        for key in produced:
            if not first_difference:
                first_difference = f"{key}: produced only by the reproduction"
        identical = not first_difference and bool(outputs)
        return ReproductionReport(
            original=original,
            reproduction=reproduction,
            identical=identical,
            outputs=outputs,
            first_difference=first_difference,
        )


def _normalise(uri: str, job: Job) -> str:
    """An output's identity across runs: its URI with the job's own name taken out."""
    return uri.replace(f"/{job.name}/", "/<job>/")
