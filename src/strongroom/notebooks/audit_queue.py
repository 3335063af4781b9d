"""Audit events of proxied notebook requests, written by one thread off the request path.

A proxied request's guard ticket is authorized before anything is forwarded (a denial is audited
at once, synchronously). Its outcome event is written here, in order, just after the response,
in small batches (one transaction for the events of a few milliseconds): a notebook page makes
dozens of requests, and one transaction each would cost more than everything else the proxy
does. If a write fails, the events are kept and retried, and the proxy refuses every new notebook
request (503) until the audit log can be written again.
"""

from __future__ import annotations

import logging
import queue
import threading
import time

from strongroom.core.errors import Unavailable
from strongroom.guard import Guard, Ticket

log = logging.getLogger(__name__)
_Item = tuple[Ticket, BaseException | None] | None  # None stops the writer


class AuditQueue:
    def __init__(
        self, guard: Guard, *, batch_seconds: float = 0.02, batch_size: int = 200, retry_seconds: float = 1.0
    ) -> None:
        self.guard = guard
        self.batch_seconds = batch_seconds
        self.batch_size = batch_size
        self.retry_seconds = retry_seconds
        self._queue: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._failing = threading.Event()

    def ensure_healthy(self) -> None:
        """Raise ``Unavailable`` while audit events cannot be written."""
        if self._failing.is_set():
            raise Unavailable("the audit log cannot be written; notebook access is refused until it can")

    def complete(self, ticket: Ticket, error: BaseException | None = None) -> None:
        """Queue the outcome event of ``ticket`` (returns at once)."""
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="notebook-audit", daemon=True)
                self._thread.start()
        self._queue.put((ticket, error))

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            stop = False
            deadline = time.monotonic() + self.batch_seconds
            while len(batch) < self.batch_size:
                try:
                    item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
            while True:
                try:
                    self.guard.finish_many(batch)
                    self._failing.clear()
                    break
                except Exception:
                    log.exception("notebook proxy: %d audit events could not be written; retrying", len(batch))
                    self._failing.set()
                    time.sleep(self.retry_seconds)
            if stop:
                return

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued, then stop the writer."""
        with self._lock:
            thread = self._thread
        if thread is not None and thread.is_alive():
            self._queue.put(None)
            thread.join(timeout)
