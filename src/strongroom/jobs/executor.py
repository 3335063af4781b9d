"""Runs job attempts in bubblewrap sandboxes: one thread per running job.

Per attempt: an execution-role token (user x team x job) is issued and kept fresh in a
directory on the host's memory-backed tmpfs, mounted read-only into the sandbox with the job
config; the sandbox gets a size-limited tmpfs at /opt/ml as its scratch volume, the platform
socket as its only way out, and no network. Output lines are encrypted into the job log in
batches; metric definitions turn matching lines into metric points.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import os
import re
import secrets
import shutil
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from strongroom.algorithms.xgboost import DATA_LOADED
from strongroom.core.context import Grant, Principal, RequestContext
from strongroom.core.errors import ConfigurationError
from strongroom.identity.service import IdentityService
from strongroom.jobs import contract, logs
from strongroom.jobs.models import JobSpec
from strongroom.jobs.runtimes import RuntimeRegistry
from strongroom.jobs.service import JobService, Progress
from strongroom.kms.service import KmsService
from strongroom.sandbox.environment import discover
from strongroom.sandbox.models import Limits, Mount, PythonEnvironment, SandboxResult, SandboxSpec, SandboxStatus
from strongroom.sandbox.runner import SandboxProcess, SandboxRunner

log = logging.getLogger(__name__)
MiB = 1024 * 1024
FLUSH_SECONDS = 1.0
MAX_BUFFERED_LINES = 500
# Address-space headroom over the requested memory: numeric libraries reserve far more
# virtual memory (thread arenas, allocator pools) than they ever touch.
ADDRESS_SPACE_HEADROOM = 4096 * MiB


@dataclass
class Attempt:
    job_id: str
    spec: JobSpec
    ctx: RequestContext
    run_dir: Path
    key: bytes
    process: SandboxProcess | None = None
    buffer: list[tuple[str, str]] = field(default_factory=list)
    metrics: list[tuple[str, int, float]] = field(default_factory=list)
    steps: dict[str, int] = field(default_factory=dict)
    statuses: list[tuple[str, str, dt.datetime]] = field(default_factory=list)  # stamped when seen
    outputs: list[dict[str, Any]] = field(default_factory=list)
    failure: str = ""
    acted: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)
    done: threading.Event = field(default_factory=threading.Event)


class SandboxExecutor:
    def __init__(
        self,
        jobs: JobService,
        identity: IdentityService,
        kms: KmsService,
        runtimes: RuntimeRegistry,
        runner: SandboxRunner,
        *,
        socket_path: Path,
        runtime_root: Path,
        token_refresh_seconds: float,
        cluster_credentials: Callable[[str], tuple[bytes, bytes, bytes]] | None = None,
        requeue_seconds: float = 2.0,
    ) -> None:
        self.jobs = jobs
        self.identity = identity
        self.kms = kms
        self.runtimes = runtimes
        self.runner = runner
        self.socket_path = socket_path
        self.runtime_root = runtime_root
        self.token_refresh_seconds = token_refresh_seconds
        self.requeue_seconds = requeue_seconds
        self.cluster_credentials = cluster_credentials
        self.owner = secrets.token_hex(8)
        self.system = RequestContext.system()
        private_directory(runtime_root)
        self._environments: dict[str, PythonEnvironment] = {}
        self._attempts: dict[str, Attempt] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()

    # -- public -----------------------------------------------------------------------------

    def running(self) -> list[str]:
        with self._lock:
            return [job for job, thread in self._threads.items() if thread.is_alive()]

    def launch(self, job_id: str) -> None:
        thread = threading.Thread(target=self._run, args=(job_id,), name=f"job-{job_id[:8]}", daemon=True)
        with self._lock:
            self._threads[job_id] = thread
        thread.start()

    def signal(self, job_id: str, what: str, message: str) -> None:
        """``what`` is "stop" or "interrupt"."""
        attempt = self._attempts.get(job_id)
        if attempt is None or attempt.process is None or attempt.acted == what:
            return
        attempt.acted = what
        if what == "interrupt":
            attempt.process.interrupt(message or "spot capacity reclaimed: checkpoint and exit")
        else:
            attempt.process.stop(message or "stopped on request")

    def shutdown(self, timeout: float = 60.0) -> None:
        """Platform stopping: spot jobs are interrupted (they checkpoint and resume later), others stopped."""
        for job_id, attempt in list(self._attempts.items()):
            if attempt.spec.spot.use_spot:
                self.signal(job_id, "interrupt", "the platform is shutting down")
            else:
                self.signal(job_id, "stop", "the platform is shutting down")
        deadline = time.monotonic() + timeout
        for thread in list(self._threads.values()):
            thread.join(max(0.0, deadline - time.monotonic()))

    # -- one attempt ------------------------------------------------------------------------

    def _run(self, job_id: str) -> None:
        attempt: Attempt | None = None
        started = time.monotonic()
        try:
            attempt = self._prepare(job_id)
            self._attempts[job_id] = attempt
            result = self._execute(attempt)
            self._finish(attempt, result)
        except Exception as exc:
            log.exception("job %s failed in the platform", job_id)
            try:
                if attempt is not None:
                    self._flush(attempt)
                self.jobs.finish(
                    self.system,
                    job_id,
                    "Failed",
                    f"the platform could not run the job: {exc}",
                    exit_code=None,
                    ran_seconds=time.monotonic() - started,
                )
            except Exception:
                log.exception("could not record the failure of job %s", job_id)
        finally:
            self._attempts.pop(job_id, None)
            if attempt is not None:
                shutil.rmtree(attempt.run_dir, ignore_errors=True)
            with self._lock:
                self._threads.pop(job_id, None)

    def _prepare(self, job_id: str) -> Attempt:
        row = self.jobs.load(job_id)
        spec = JobSpec.model_validate(row.spec)
        principal = Principal(
            user=row.created_by, token_kind="execution", grants=(Grant(row.role, row.team),), scope=spec.srn
        )
        ctx = RequestContext(principal=principal, source="platform", user_agent="strongroom-executor")
        key = self.kms.decrypt(ctx, row.team, row.log_key, logs.log_context(row.team, job_id)).plaintext
        run_dir = self.runtime_root / job_id
        shutil.rmtree(run_dir, ignore_errors=True)
        run_dir.mkdir(parents=True, mode=0o700)
        config = {
            "spec": spec.model_dump(mode="json"),
            "inputs": row.inputs_resolved,
            "code": row.code_resolved,
            "instance_count": spec.resources.instance_count,
            "early_start": spec.early_start(),
        }
        (run_dir / "config.json").write_text(json.dumps(config))
        if spec.resources.instance_count > 1 and spec.security.inter_node_encryption:
            if self.cluster_credentials is None:
                raise ConfigurationError("inter-node encryption needs the platform CA, which this executor lacks")
            cert, node_key, ca = self.cluster_credentials(spec.srn)
            tls = run_dir / "tls"
            tls.mkdir(mode=0o700)
            for name, data in (("node.pem", cert), ("node.key", node_key), ("ca.pem", ca)):
                fd = os.open(tls / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
        attempt = Attempt(job_id, spec, ctx, run_dir, key)
        self._write_token(attempt, row.created_by, row.role, row.team)
        return attempt

    def _write_token(self, attempt: Attempt, user: str, role: str, team: str) -> None:
        issued = self.identity.create_execution_token(self.system, user, role, team, attempt.spec.srn)
        tmp = attempt.run_dir / ".token.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(issued.token)
        tmp.replace(attempt.run_dir / "token")

    def _sandbox_spec(self, attempt: Attempt) -> SandboxSpec:
        spec = attempt.spec
        runtime = self.runtimes.resolve(spec.runtime)
        environment = self._environment(runtime.python)
        cpus = max(1, min(os.cpu_count() or 1, math.ceil(spec.resources.cpus)))
        return SandboxSpec(
            command=(environment.executable, "-m", "strongroom.jobs.inside.agent"),
            env={
                "STRONGROOM_SOCKET": contract.SOCKET,
                "STRONGROOM_TOKEN_FILE": f"{contract.RUN_DIR}/token",
                "OMP_NUM_THREADS": str(cpus),
            },
            hostname="algo-1",
            mounts=(Mount(str(attempt.run_dir), contract.RUN_DIR, writable=False),),
            socket=str(self.socket_path),
            scratch_path=contract.ML,
            scratch_size_bytes=spec.resources.scratch_mb * MiB,
            python=environment,
            control_channel=True,
            limits=Limits(
                memory_bytes=spec.resources.memory_mb * MiB,
                address_space_headroom_bytes=ADDRESS_SPACE_HEADROOM,
                cpu_quota=spec.resources.cpus,
                cpus=tuple(range(cpus)),
                max_runtime_seconds=float(spec.resources.max_runtime_seconds),
                stop_grace_seconds=30.0,
            ),
            host_network=not spec.security.network_isolation,
        )

    def _environment(self, python: str) -> PythonEnvironment:
        """What the sandbox binds for ``python``: asked once per interpreter (a subprocess), as the
        runtime registry probes its versions once, not at every job's start."""
        with self._lock:
            found = self._environments.get(python)
        if found is None:
            found = discover(python)
            with self._lock:
                self._environments[python] = found
        return found

    def _execute(self, attempt: Attempt) -> SandboxResult:
        sandbox = self._sandbox_spec(attempt)
        patterns = [(m.name, re.compile(m.regex)) for m in attempt.spec.metric_definitions]
        parsing = attempt.spec.code.algorithm == "xgboost" and attempt.spec.resources.instance_count == 1

        def on_output(stream: str, text: str) -> None:
            with attempt.lock:
                if stream == "control":  # only the agent holds this channel; job code cannot write it
                    marker = contract.parse_marker(text)
                    if marker is not None:
                        self._on_marker(attempt, *marker)
                    return
                attempt.buffer.append((stream, text))
                if parsing and text.startswith(DATA_LOADED):
                    # The built-in XGBoost (platform code, no user code runs in it) has parsed its
                    # inputs: the rest of the process is training.
                    attempt.statuses.append(("Training", text[len("[strongroom] ") :][:500], _now()))
                for name, pattern in patterns:
                    found = pattern.search(text)
                    if found:
                        try:
                            value = float(found.group(1))
                        except ValueError:
                            continue
                        step = attempt.steps.get(name, 0)
                        attempt.steps[name] = step + 1
                        attempt.metrics.append((name, step, value))

        row = self.jobs.load(attempt.job_id)
        attempt.process = self.runner.start(sandbox, on_output=lambda line: on_output(line.stream, line.text))
        if row.requested:
            self.signal(attempt.job_id, row.requested, "")
        next_token = time.monotonic() + self.token_refresh_seconds
        while True:
            try:
                result = attempt.process.wait(timeout=FLUSH_SECONDS)
            except TimeoutError:
                result = None
            self._flush(attempt)
            if result is not None:
                return result
            requested = self.jobs.requested_action(attempt.job_id)
            if requested:
                self.signal(attempt.job_id, requested, "")
            if time.monotonic() >= next_token:
                self._write_token(attempt, row.created_by, row.role, row.team)
                next_token = time.monotonic() + self.token_refresh_seconds

    def _on_marker(self, attempt: Attempt, kind: str, payload: Any) -> None:
        if kind == "status" and isinstance(payload, dict):
            status, message = str(payload.get("status", ""))[:32], str(payload.get("message", ""))[:500]
            attempt.statuses.append((status, message, _now()))
        elif kind == "outputs" and isinstance(payload, list):
            attempt.outputs = payload
        elif kind == "failure":
            attempt.failure = str(payload)[:2000]

    def _flush(self, attempt: Attempt) -> None:
        with attempt.lock:
            if not attempt.buffer and not attempt.metrics and not attempt.statuses:
                return
            progress = Progress(attempt.buffer[:], attempt.metrics[:], attempt.statuses[:])
            attempt.buffer.clear()
            attempt.metrics.clear()
            attempt.statuses.clear()
        self.jobs.record_progress(self.system, attempt.job_id, attempt.key, progress)

    def _finish(self, attempt: Attempt, result: SandboxResult) -> None:
        ran = result.duration_seconds
        code = result.exit_code
        spec = attempt.spec
        if result.status == SandboxStatus.COMPLETED and code == 0:
            self.jobs.finish(
                self.system,
                attempt.job_id,
                "Completed",
                "",
                exit_code=0,
                ran_seconds=ran,
                outputs=attempt.outputs,
                sandbox_ended=result.ended_at,
            )
        elif result.status == SandboxStatus.INTERRUPTED or code == contract.EXIT_INTERRUPTED:
            if spec.spot.use_spot:
                self.jobs.finish(
                    self.system,
                    attempt.job_id,
                    "Stopped",
                    f"spot interruption: {result.reason}",
                    exit_code=code,
                    ran_seconds=ran,
                    requeue_after=self.requeue_seconds,
                )
            else:
                self.jobs.finish(self.system, attempt.job_id, "Stopped", result.reason, exit_code=code, ran_seconds=ran)
        elif result.status == SandboxStatus.STOPPED:
            reason = result.reason
            if result.reason_code.value == "MaxRuntimeExceeded":
                reason = f"MaxRuntimeExceeded: {result.reason} (resources.max_runtime_seconds)"
            self.jobs.finish(self.system, attempt.job_id, "Stopped", reason, exit_code=code, ran_seconds=ran)
        else:
            reason = attempt.failure or result.reason
            if result.reason_code.value in ("OutOfMemory", "ProcessLimitExceeded"):  # the sandbox's word wins
                field = "resources.memory_mb" if result.reason_code.value == "OutOfMemory" else "the sandbox's limit"
                reason = f"{result.reason_code.value}: {result.reason} ({field})"
            self.jobs.finish(self.system, attempt.job_id, "Failed", reason, exit_code=code, ran_seconds=ran)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def private_directory(path: Path) -> None:
    """Create ``path`` as a directory only this user can enter; refuse anything else already
    there (another user's directory, or a symlink planted in a shared tmpfs)."""
    levels = [path.parent, path] if path.parent.name.startswith("strongroom-") else [path]
    for directory in levels:
        if not directory.exists():
            directory.mkdir(mode=0o700, parents=True)
        info = directory.lstat()
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
            raise ConfigurationError(
                f"{directory} is not a directory owned by this user; refusing to keep job secrets there"
            )
        directory.chmod(0o700)
