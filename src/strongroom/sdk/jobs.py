"""Jobs from Python, in the shape workshop users know: ``Processor.run(...)`` with
``ProcessingInput``/``ProcessingOutput``, ``Estimator(...).set_hyperparameters(...).fit(...)``,
``jobs[-1].describe()``, and logs streamed while waiting."""

from __future__ import annotations

import builtins
import io
import os
import sys
import tarfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from strongroom.core.errors import InvalidInput, StrongroomError
from strongroom.jobs.models import TERMINAL, Job, JobSpec, LogLine, MetricPoint
from strongroom.sdk.paths import q

if TYPE_CHECKING:
    from strongroom.sdk.session import Session


class JobFailed(StrongroomError):
    slug = "job-failed"
    status = 500
    title = "Job failed"


class Jobs:
    """``session.jobs``: the raw job API."""

    def __init__(self, session: Session) -> None:
        self._s = session

    def create(self, spec: JobSpec | Mapping[str, Any], *, idempotency_key: str | None = None) -> Job:
        body = spec.model_dump(mode="json") if isinstance(spec, JobSpec) else dict(spec)
        return self._s.call(
            "POST", f"/api/v1/teams/{q(body['team'])}/jobs", Job, json_body=body, idempotency_key=idempotency_key
        )

    def describe(self, team: str, name: str) -> Job:
        return self._s.call("GET", f"/api/v1/teams/{q(team)}/jobs/{q(name)}", Job)

    def list(self, team: str, status: str | None = None, limit: int = 100) -> builtins.list[Job]:
        body = self._s.request("GET", f"/api/v1/teams/{q(team)}/jobs", params={"status": status, "limit": limit}).json()
        return [Job.model_validate(j) for j in body["items"]]

    def stop(self, team: str, name: str, reason: str = "") -> Job:
        return self._s.call("POST", f"/api/v1/teams/{q(team)}/jobs/{q(name)}/stop", Job, json_body={"reason": reason})

    def interrupt(self, team: str, name: str, notice: str = "") -> Job:
        return self._s.call(
            "POST", f"/api/v1/teams/{q(team)}/jobs/{q(name)}/interrupt", Job, json_body={"reason": notice}
        )

    def logs(self, team: str, name: str, after_seq: int = 0, limit: int = 1000) -> builtins.list[LogLine]:
        body = self._s.request(
            "GET", f"/api/v1/teams/{q(team)}/jobs/{q(name)}/logs", params={"after_seq": after_seq, "limit": limit}
        ).json()
        return [LogLine.model_validate(line) for line in body["items"]]

    def metrics(self, team: str, name: str) -> builtins.list[MetricPoint]:
        body = self._s.request("GET", f"/api/v1/teams/{q(team)}/jobs/{q(name)}/metrics").json()
        return [MetricPoint.model_validate(m) for m in body["items"]]

    def reproduce(
        self,
        team: str,
        name: str,
        *,
        allow_runtime_drift: bool = False,
        use_latest_inputs: bool = False,
        timeout: float | None = None,
    ) -> Any:
        """Re-run ``name`` from its recorded runtime, code, input versions and hyperparameters;
        return the comparison of every output (``.identical``, ``.first_difference``)."""
        from strongroom.jobs.reproduce import ReproductionPlan, ReproductionReport

        plan: ReproductionPlan = self._s.call(
            "POST",
            f"/api/v1/teams/{q(team)}/jobs/{q(name)}/reproduction-plan",
            ReproductionPlan,
            json_body={"allow_runtime_drift": allow_runtime_drift, "use_latest_inputs": use_latest_inputs},
        )
        self.create(plan.spec, idempotency_key=uuid.uuid4().hex)
        self.wait(team, plan.spec.name, logs=False, timeout=timeout)
        report: ReproductionReport = self._s.call(
            "GET", f"/api/v1/teams/{q(team)}/jobs/{q(name)}/comparison/{q(plan.spec.name)}", ReproductionReport
        )
        return report.model_copy(update={"notes": plan.notes})

    def follow(self, team: str, name: str, poll: float = 1.0) -> Iterator[LogLine]:
        """Log lines as they arrive, until the job ends (``logs -f``)."""
        seq = 0
        while True:
            job = self.describe(team, name)
            while batch := self.logs(team, name, after_seq=seq):
                yield from batch
                seq = batch[-1].seq
            if job.status in TERMINAL:
                return
            time.sleep(poll)

    def wait(
        self,
        team: str,
        name: str,
        *,
        logs: bool = True,
        out: Callable[[str], None] | None = None,
        timeout: float | None = None,
    ) -> Job:
        """Block until the job ends, printing its log; raise ``JobFailed`` unless it completed."""
        printer = out or (lambda text: print(text, file=sys.stdout, flush=True))
        deadline = None if timeout is None else time.monotonic() + timeout
        seq = 0
        while True:
            job = self.describe(team, name)
            if logs:
                while batch := self.logs(team, name, after_seq=seq):
                    for line in batch:
                        printer(line.text)
                    seq = batch[-1].seq
            if job.status in TERMINAL:
                if job.status != "Completed":
                    raise JobFailed(f"job {name} {job.status}: {job.failure_reason}", job=job.name)
                return job
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"job {name} still {job.status} after {timeout} s")
            time.sleep(1.0)


def default_team(session: Session) -> str:
    """The team to act for: ``strongroom_environment.TEAM`` in a notebook, else the caller's only team."""
    try:
        import strongroom_environment

        return str(strongroom_environment.TEAM)
    except (ImportError, AttributeError):
        pass
    teams = sorted({g.split("@", 1)[1] for g in session.whoami().grants if "@" in g})
    if len(teams) != 1:
        raise InvalidInput(f"say which team to run for (you belong to {teams or 'no team'})", field="team")
    return teams[0]


def _unique(base: str) -> str:
    return f"{base}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:4]}"[:63]


@dataclass
class ProcessingInput:
    source: str
    destination: str | None = None
    input_name: str | None = None
    content_type: str | None = None


@dataclass
class ProcessingOutput:
    source: str
    destination: str
    output_name: str | None = None


@dataclass
class TrainingInput:
    s3_data: str
    content_type: str | None = None


class RunningJob:
    """What ``jobs[-1]`` holds: ``describe()``, ``logs()``, ``wait()``, ``stop()``."""

    def __init__(self, session: Session, team: str, name: str) -> None:
        self._s, self.team, self.job_name = session, team, name

    def describe(self) -> dict[str, Any]:
        return Jobs(self._s).describe(self.team, self.job_name).model_dump(mode="json")

    def job(self) -> Job:
        return Jobs(self._s).describe(self.team, self.job_name)

    def logs(self) -> list[str]:
        return [line.text for line in Jobs(self._s).logs(self.team, self.job_name, limit=10_000)]

    def wait(self, logs: bool = True) -> Job:
        return Jobs(self._s).wait(self.team, self.job_name, logs=logs)

    def stop(self) -> Job:
        return Jobs(self._s).stop(self.team, self.job_name)


class _Base:
    def __init__(
        self,
        *,
        session: Session | None = None,
        team: str | None = None,
        instance_count: int = 1,
        cpus: float = 1.0,
        memory_mb: int = 4096,
        volume_size_in_mb: int = 2048,
        volume_kms_key: str | None = None,
        network_isolation: bool = True,
        encrypt_inter_container_traffic: bool = True,
        max_runtime_in_seconds: int = 86400,
        runtime: str = "default",
        base_job_name: str | None = None,
        env: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
        code_location: str | None = None,
    ) -> None:
        from strongroom.sdk.session import Session

        self.session = session or Session()
        self.team = team or default_team(self.session)
        self.instance_count = instance_count
        self.cpus, self.memory_mb, self.volume_size_in_mb = cpus, memory_mb, volume_size_in_mb
        self.volume_kms_key = volume_kms_key if volume_kms_key is not None else _environment("KMS_KEY", "")
        self.network_isolation = network_isolation
        self.encrypt_inter_container_traffic = encrypt_inter_container_traffic
        self.max_runtime_in_seconds = max_runtime_in_seconds
        self.runtime = runtime
        self.base_job_name = base_job_name
        self.env = dict(env or {})
        self.tags = dict(tags or {})
        self.code_location = code_location or _environment("DATA_BUCKET_URI", "")
        self.jobs: list[RunningJob] = []

    def _upload_code(self, code: str, job_name: str) -> tuple[str, str | None]:
        """Upload a local script (or directory, as .tar.gz) next to the job; return (uri, entry_point)."""
        if code.startswith("sr://"):
            return code, None
        if not self.code_location:
            raise InvalidInput(
                "code_location (an sr:// prefix for uploaded code) is needed to upload local code",
                field="code_location",
            )
        local = Path(code)
        base = self.code_location.rstrip("/") + f"/code/{job_name}"
        bucket, _, prefix = base[len("sr://") :].partition("/")
        if local.is_dir():
            buffer = io.BytesIO()
            with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
                for file in sorted(p for p in local.rglob("*") if p.is_file()):
                    tar.add(file, arcname=file.relative_to(local).as_posix())
            version = self.session.buckets.put_object(bucket, f"{prefix}/source.tar.gz", buffer.getvalue())
            return version.uri, None
        if not local.is_file():
            raise InvalidInput(f"code {code!r} is neither an sr:// URI nor a local file or directory", field="code")
        version = self.session.buckets.put_object(bucket, f"{prefix}/{local.name}", local)
        return version.uri, local.name

    def _common(self, name: str, kind: str, experiment_config: Mapping[str, str] | None) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "name": name,
            "team": self.team,
            "kind": kind,
            "runtime": self.runtime,
            "environment": self.env,
            "tags": self.tags,
            "resources": {
                "instance_count": self.instance_count,
                "cpus": self.cpus,
                "memory_mb": self.memory_mb,
                "scratch_mb": self.volume_size_in_mb,
                "max_runtime_seconds": self.max_runtime_in_seconds,
            },
            "security": {
                "network_isolation": self.network_isolation,
                "volume_kms_key": self.volume_kms_key or "",
                "inter_node_encryption": self.encrypt_inter_container_traffic,
            },
            "provenance": provenance(),
        }
        if experiment_config:
            spec["experiment_config"] = {
                "experiment_name": experiment_config["ExperimentName"]
                if "ExperimentName" in experiment_config
                else experiment_config["experiment_name"],
                "trial_name": experiment_config.get("TrialName") or experiment_config.get("trial_name"),
                "trial_component_display_name": experiment_config.get("TrialComponentDisplayName")
                or experiment_config.get("trial_component_display_name"),
            }
        return spec

    def _submit(self, spec: dict[str, Any], wait: bool, logs: bool) -> RunningJob:
        job = Jobs(self.session).create(spec, idempotency_key=uuid.uuid4().hex)
        running = RunningJob(self.session, job.team, job.name)
        self.jobs.append(running)
        if wait:
            running.wait(logs=logs)
        return running


class Processor(_Base):
    """Run a script as a processing job (``SKLearnProcessor``-style)."""

    def run(
        self,
        code: str,
        inputs: list[ProcessingInput] | None = None,
        outputs: list[ProcessingOutput] | None = None,
        arguments: list[str] | None = None,
        *,
        wait: bool = True,
        logs: bool = True,
        job_name: str | None = None,
        experiment_config: Mapping[str, str] | None = None,
    ) -> RunningJob:
        name = job_name or _unique(self.base_job_name or "processing")
        source, entry = self._upload_code(code, name)
        spec = self._common(name, "processing", experiment_config)
        spec["code"] = {"source": source, "entry_point": entry, "arguments": list(arguments or [])}
        spec["inputs"] = [
            {
                "name": i.input_name or f"input-{n + 1}",
                "source": i.source,
                "destination": i.destination,
                "content_type": i.content_type,
            }
            for n, i in enumerate(inputs or [])
        ]
        spec["outputs"] = [
            {"name": o.output_name or f"output-{n + 1}", "source": o.source, "destination": o.destination}
            for n, o in enumerate(outputs or [])
        ]
        return self._submit(spec, wait, logs)


SKLearnProcessor = Processor
ScriptProcessor = Processor


class Estimator(_Base):
    """Train with the built-in algorithm (``algorithm="xgboost"``) or an ``entry_point`` script."""

    def __init__(
        self,
        algorithm: str | None = "xgboost",
        *,
        entry_point: str | None = None,
        output_path: str | None = None,
        use_spot_instances: bool = False,
        max_wait: int | None = None,
        checkpoint_s3_uri: str | None = None,
        metric_definitions: list[dict[str, str]] | None = None,
        hyperparameters: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.algorithm = None if entry_point else algorithm
        self.entry_point = entry_point
        self.output_path = output_path or (
            _environment("MODEL_BUCKET_URI", "") + "/training" if _environment("MODEL_BUCKET_URI", "") else None
        )
        self.use_spot_instances, self.max_wait = use_spot_instances, max_wait
        self.checkpoint_s3_uri = checkpoint_s3_uri
        self.metric_definitions = [
            {"name": m.get("Name", m.get("name")), "regex": m.get("Regex", m.get("regex"))}
            for m in metric_definitions or []
        ]
        self.hyperparameters: dict[str, Any] = dict(hyperparameters or {})
        self.latest_training_job: RunningJob | None = None

    def set_hyperparameters(self, **values: Any) -> Estimator:
        self.hyperparameters.update(values)
        return self

    def fit(
        self,
        inputs: Mapping[str, TrainingInput | str],
        *,
        job_name: str | None = None,
        experiment_config: Mapping[str, str] | None = None,
        wait: bool = True,
        logs: bool = True,
    ) -> RunningJob:
        if not self.output_path:
            raise InvalidInput("output_path (an sr:// prefix for the model) is needed", field="output_path")
        name = job_name or _unique(self.base_job_name or "training")
        spec = self._common(name, "training", experiment_config)
        if self.entry_point:
            source, entry = self._upload_code(self.entry_point, name)
            spec["code"] = {"source": source, "entry_point": entry}
        else:
            spec["code"] = {"algorithm": self.algorithm}
        spec["inputs"] = [
            {
                "name": channel,
                "source": value.s3_data if isinstance(value, TrainingInput) else value,
                "content_type": value.content_type if isinstance(value, TrainingInput) else None,
            }
            for channel, value in inputs.items()
        ]
        spec["outputs"] = [{"name": "model", "destination": self.output_path}]
        spec["hyperparameters"] = self.hyperparameters
        spec["metric_definitions"] = self.metric_definitions
        spec["spot"] = {
            "use_spot": self.use_spot_instances,
            "max_wait_seconds": self.max_wait,
            "checkpoint_uri": self.checkpoint_s3_uri,
        }
        self.latest_training_job = self._submit(spec, wait, logs)
        return self.latest_training_job

    def model_data(self) -> str:
        """The ``sr://`` URI of the last training job's ``model.tar.gz``."""
        if self.latest_training_job is None:
            raise InvalidInput("no training job yet; call fit() first", field="fit")
        job = self.latest_training_job.job()
        for output in job.outputs_produced:
            if output.uri.endswith("model.tar.gz"):
                return output.uri
        raise InvalidInput(f"job {job.name} produced no model.tar.gz (status {job.status})", field="job")


class ExplainabilityJob(_Base):
    """Explain a trained model over a dataset as a sandboxed job (the managed "clarify" analog)."""

    def run(
        self,
        model: str,
        dataset: str,
        output: str,
        *,
        label: str = "label",
        title: str = "Explainability report",
        feature_names: Sequence[str] | None = None,
        wait: bool = True,
        logs: bool = True,
        job_name: str | None = None,
        experiment_config: Mapping[str, str] | None = None,
    ) -> RunningJob:
        """``model``: a training job's ``model.tar.gz`` (sr://); ``dataset``: one CSV/Parquet (sr://),
        a headerless CSV included; ``output``: where ``analysis.json`` and ``report.html`` go (sr://
        prefix); ``feature_names``: the features' names, in order, for a model that records none."""
        name = job_name or _unique(self.base_job_name or "explain")
        spec = self._common(name, "explainability", experiment_config)
        spec["code"] = {"algorithm": "explain"}
        spec["inputs"] = [{"name": "model", "source": model}, {"name": "dataset", "source": dataset}]
        spec["outputs"] = [{"name": "report", "destination": output.rstrip("/") + f"/{name}"}]
        spec["hyperparameters"] = {"label": label, "title": title}
        if feature_names is not None:
            spec["hyperparameters"]["feature_names"] = ",".join(feature_names)
        return self._submit(spec, wait, logs)


def _environment(name: str, default: str) -> str:
    try:
        import strongroom_environment

        return str(getattr(strongroom_environment, name, default) or default)
    except ImportError:
        return os.environ.get(f"STRONGROOM_{name}", default)


def provenance() -> dict[str, Any]:
    """What the SDK knows about where the submission came from (git details when in a work tree)."""
    try:
        from strongroom.lineage.gitinfo import capture
    except ImportError:
        return {}
    found = capture(Path.cwd())
    return {"git": found} if found else {}
