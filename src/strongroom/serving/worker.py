"""The serving worker: the one thread that starts and stops endpoint sandboxes and uploads capture."""

from __future__ import annotations

import threading
import time

from strongroom.core.workers import Worker
from strongroom.serving.service import ServingService


class ServingWorker(Worker):
    """Reconciles endpoints with the database; a create or delete wakes it at once.

    Sandboxes are started from this long-lived thread on purpose: bubblewrap's
    ``--die-with-parent`` is tied to the thread that started it.
    """

    name = "serving"
    interval_seconds = 1.0
    busy_interval_seconds = 0.05

    def __init__(self, service: ServingService, capture_flush_seconds: float = 5.0) -> None:
        self.service = service
        self.capture_flush_seconds = capture_flush_seconds
        self.wakeup = threading.Event()
        self._flushed = time.monotonic()

    def run_once(self) -> bool:
        busy = self.service.reconcile()
        if time.monotonic() - self._flushed >= self.capture_flush_seconds:
            self.service.flush_capture()
            self._flushed = time.monotonic()
        return busy

    def stop(self) -> None:
        self.service.shutdown()
