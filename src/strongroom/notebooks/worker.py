"""The notebook worker: the only thread that starts and stops notebook sandboxes."""

from __future__ import annotations

import threading

from strongroom.core.workers import Worker
from strongroom.notebooks.service import NotebookService


class NotebookWorker(Worker):
    """Reconciles notebooks with their desired state; a request wakes it at once.

    Sandboxes are started from this long-lived thread on purpose: bubblewrap's
    ``--die-with-parent`` is tied to the thread that started it.
    """

    name = "notebooks"
    busy_interval_seconds = 0.05

    def __init__(self, service: NotebookService, interval_seconds: float) -> None:
        self.service = service
        self.interval_seconds = interval_seconds
        self.wakeup = threading.Event()

    def run_once(self) -> bool:
        self.service.recheck_sockets()
        return bool(self.service.reconcile())

    def stop(self) -> None:
        self.service.shutdown()
