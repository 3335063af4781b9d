"""Signs checkpoints of the audit chain while the platform runs."""

from __future__ import annotations

from strongroom.audit.log import AuditLog
from strongroom.core.workers import Worker


class AuditCheckpointWorker(Worker):
    name = "audit-checkpoints"
    interval_seconds = 1.0

    def __init__(self, log: AuditLog, every: int, seconds: float) -> None:
        self.log = log
        self.every = every
        self.seconds = seconds

    def run_once(self) -> None:
        if self.log.checkpoint_due(self.every, self.seconds):
            self.log.checkpoint()

    def stop(self) -> None:
        self.log.checkpoint()
