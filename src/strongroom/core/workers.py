"""Background workers: small periodic tasks the platform runs while it is up."""

from __future__ import annotations

import abc
import logging
import threading

log = logging.getLogger(__name__)


class Worker(abc.ABC):
    """A periodic task. ``run_once`` must be safe to call again after a crash or restart."""

    name: str = "worker"
    interval_seconds: float = 1.0
    # When ``run_once`` returns True (work is in flight), the next round comes this soon.
    busy_interval_seconds: float | None = None
    # Set by whoever has work for this worker now (a request, a state event), to skip the wait.
    wakeup: threading.Event | None = None

    @abc.abstractmethod
    def run_once(self) -> bool | None:
        """Do one round of work; return True when more is in flight (poll again soon)."""

    def wake(self) -> None:
        """Run the next round now (when the worker has a ``wakeup`` event)."""
        if self.wakeup is not None:
            self.wakeup.set()

    def stop(self) -> None:
        """Called once at shutdown, after the last round."""
        return None


class WorkerRunner:
    """Runs each worker on its own daemon thread until ``stop``."""

    def __init__(self, workers: list[Worker]) -> None:
        self.workers = workers
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for worker in self.workers:
            thread = threading.Thread(target=self._loop, args=(worker,), name=f"worker-{worker.name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def _loop(self, worker: Worker) -> None:
        while not self._stop.is_set():
            busy = False
            try:
                busy = bool(worker.run_once())
            except Exception:
                log.exception("worker %s failed; retrying in %.1fs", worker.name, worker.interval_seconds)
            pause = worker.busy_interval_seconds if busy and worker.busy_interval_seconds is not None else None
            pause = worker.interval_seconds if pause is None else pause
            if worker.wakeup is not None:
                worker.wakeup.wait(pause)
                worker.wakeup.clear()
            else:
                self._stop.wait(pause)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        for worker in self.workers:
            if worker.wakeup is not None:
                worker.wakeup.set()
        for thread in self._threads:
            thread.join(timeout)
        for worker in self.workers:
            try:
                worker.stop()
            except Exception:
                log.exception("worker %s failed to stop cleanly", worker.name)

    @property
    def started(self) -> bool:
        return bool(self._threads)

    def dead(self) -> list[str]:
        """Names of the workers whose thread has ended (a worker that raises is retried, never ends)."""
        return [w.name for w, t in zip(self.workers, self._threads, strict=True) if not t.is_alive()]

    @property
    def names(self) -> list[str]:
        return [w.name for w in self.workers]
