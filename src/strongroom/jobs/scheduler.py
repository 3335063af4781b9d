"""The job scheduler: a platform worker that starts queued jobs when capacity allows, passes
stop/interrupt requests to running sandboxes, enforces spot max-wait, reconciles after a
restart, and (optionally) simulates spot preemptions."""

from __future__ import annotations

import logging
import random
import threading

from strongroom.audit.events import Event
from strongroom.core.context import RequestContext
from strongroom.core.workers import Worker
from strongroom.jobs.db import JobRow
from strongroom.jobs.executor import SandboxExecutor
from strongroom.jobs.service import JobService

log = logging.getLogger(__name__)


WAKE_ON = ("JobCreated", "JobRequeued", "JobStopRequested", "JobInterruptRequested", "JobFinished")


class JobScheduler(Worker):
    name = "job-scheduler"
    interval_seconds = 0.5

    def __init__(
        self, jobs: JobService, executor: SandboxExecutor, *, slots: int, preemption_probability: float = 0.0
    ) -> None:
        self.jobs = jobs
        self.executor = executor
        self.slots = slots
        self.preemption_probability = preemption_probability
        self.system = RequestContext.system()
        self._reconciled = False
        self.wakeup = threading.Event()

    def on_event(self, event: Event) -> None:
        """Wake at once for anything the scheduler acts on."""
        if event.kind == "state" and event.name in WAKE_ON:
            self.wake()

    def run_once(self) -> None:
        if not self._reconciled:
            self.reconcile()
            self._reconciled = True
        running = set(self.executor.running())
        for job_id in running:
            requested = self.jobs.requested_action(job_id)
            if requested:
                self.executor.signal(job_id, requested, "")
            elif self.preemption_probability and random.random() < self.preemption_probability:
                row = self.jobs.load(job_id)
                if row.use_spot:
                    self.executor.signal(job_id, "interrupt", "simulated spot preemption")
        for job_id in self.jobs.spot_jobs_past_max_wait():
            self._stop_for_max_wait(job_id, running)
        while len(self.executor.running()) < self.slots:
            claimed = self.jobs.claim(self.system, self.executor.owner)
            if claimed is None:
                break
            self.executor.launch(claimed)

    def _stop_for_max_wait(self, job_id: str, running: set[str]) -> None:
        row = self.jobs.load(job_id)
        reason = "MaxWaitTimeExceeded: the spot job did not finish within spot.max_wait_seconds"
        if job_id in running:
            self.executor.signal(job_id, "stop", reason)
        elif row.status == "Pending":
            self.jobs.stop(self.system, row.team, row.name, reason)

    def reconcile(self) -> None:
        """After a restart no sandbox of ours survives (they die with the platform): resume
        checkpointed spot jobs, fail the others with the reason."""
        for job_id in self.jobs.stale_running(self.executor.owner):
            row: JobRow = self.jobs.load(job_id)
            if row.use_spot and row.spec.get("spot", {}).get("checkpoint_uri") and row.status != "Stopping":
                self.jobs.finish(
                    self.system,
                    job_id,
                    "Stopped",
                    "platform restarted; resuming from the last checkpoint",
                    exit_code=None,
                    ran_seconds=0.0,
                    requeue_after=0.0,
                )
            else:
                status = "Stopped" if row.status == "Stopping" else "Failed"
                self.jobs.finish(
                    self.system,
                    job_id,
                    status,
                    "platform restarted while the job was running",
                    exit_code=None,
                    ran_seconds=0.0,
                )

    def stop(self) -> None:
        self.executor.shutdown()
