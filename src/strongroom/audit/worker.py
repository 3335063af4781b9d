"""Signs checkpoints of the audit chain while the platform runs, and alerts instead of signing a broken one."""

from __future__ import annotations

import logging
from collections.abc import Callable

from strongroom.audit.log import AuditChainBroken, AuditLog
from strongroom.core.workers import Worker

log = logging.getLogger(__name__)


class AuditCheckpointWorker(Worker):
    name = "audit-checkpoints"
    interval_seconds = 1.0

    def __init__(
        self, log: AuditLog, every: int, seconds: float, alert: Callable[[AuditChainBroken], None] | None = None
    ) -> None:
        self.log = log
        self.every = every
        self.seconds = seconds
        self.alert = alert
        self._alerted = ""  # one alert per distinct problem, not one a second

    @property
    def problem(self) -> str:
        """Why the last checkpoint was refused (the chain is broken), or "" when signing works."""
        return self._alerted

    def run_once(self) -> None:
        if self.log.checkpoint_due(self.every, self.seconds):
            self._checkpoint()

    def stop(self) -> None:
        self._checkpoint()

    def _checkpoint(self) -> None:
        try:
            self.log.checkpoint()
        except AuditChainBroken as exc:
            if exc.problem == self._alerted:
                return
            self._alerted = exc.problem
            log.error("audit: not signing a broken chain: %s", exc.problem)
            if self.alert is not None:
                self.alert(exc)
        else:
            self._alerted = ""
