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

    def __init__(self, service: NotebookService, interval_seconds: float) -> None:
        self.service = service
        self.idle_seconds = interval_seconds
        self.interval_seconds = 0.0
        self._wake = threading.Event()
        self._stopping = threading.Event()

    def wake(self) -> None:
        self._wake.set()

    def run_once(self) -> None:
        self._wake.clear()
        busy = self.service.reconcile()
        if not self._stopping.is_set():
            self._wake.wait(0.05 if busy else self.idle_seconds)

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        self.service.shutdown()
