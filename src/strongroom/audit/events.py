"""In-process publish/subscribe of audit and state events, and the rule interface that
detective controls implement.

Publishing never blocks the caller: events are queued and dispatched on one thread in
publication order. A failing subscriber is logged and does not stop the others.
"""

from __future__ import annotations

import abc
import datetime as dt
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from strongroom.db.base import utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Event:
    """``kind`` is "audit" (one per audited call) or "state" (a resource changed state)."""

    kind: str
    name: str
    resource: str = ""
    team: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    time: dt.datetime = field(default_factory=utcnow)


class Rule(abc.ABC):
    """A detective control: looks at every event and reacts to the ones it matches."""

    name: str = "rule"
    kinds: tuple[str, ...] = ()  # event kinds the rule looks at (empty: all)

    @abc.abstractmethod
    def matches(self, event: Event) -> bool:
        """Whether ``handle`` should run for ``event`` (cheap; runs for every event)."""

    @abc.abstractmethod
    def handle(self, event: Event) -> None:
        """React to a matching event (stop a job, raise an alert, ...)."""


Subscriber = Callable[[Event], None]
_STOP = object()


class EventBus:
    def __init__(self) -> None:
        self._subscribers: list[tuple[Subscriber, frozenset[str] | None]] = []
        self._queue: queue.Queue[Any] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._idle = threading.Condition()
        self._pending = 0

    def subscribe(self, callback: Subscriber, kinds: set[str] | None = None) -> Callable[[], None]:
        """Call ``callback`` for every event (of ``kinds``); returns an unsubscribe function."""
        entry = (callback, frozenset(kinds) if kinds else None)
        with self._lock:
            self._subscribers.append(entry)

        def unsubscribe() -> None:
            with self._lock:
                if entry in self._subscribers:
                    self._subscribers.remove(entry)

        return unsubscribe

    def add_rule(self, rule: Rule) -> Callable[[], None]:
        def run(event: Event) -> None:
            if rule.matches(event):
                rule.handle(event)

        return self.subscribe(run, kinds=set(rule.kinds) if rule.kinds else None)

    def wanted(self, kind: str) -> bool:
        """Whether any subscriber listens to events of ``kind``."""
        return any(kinds is None or kind in kinds for _, kinds in self._subscribers)

    def publish(self, event: Event) -> None:
        if not self.wanted(event.kind):
            return  # nobody listens: no queueing, no dispatcher wake-up on the request path
        with self._idle:
            self._pending += 1
        self._queue.put(event)
        self._ensure_thread()

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            with self._lock:
                if self._thread is None or not self._thread.is_alive():
                    self._thread = threading.Thread(target=self._run, name="strongroom-events", daemon=True)
                    self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            with self._lock:
                subscribers = list(self._subscribers)
            for callback, kinds in subscribers:
                if kinds is not None and item.kind not in kinds:
                    continue
                try:
                    callback(item)
                except Exception:
                    log.exception("event subscriber failed on %s %s", item.kind, item.name)
            with self._idle:
                self._pending -= 1
                if self._pending == 0:
                    self._idle.notify_all()

    def drain(self, timeout: float = 10.0) -> bool:
        """Wait until every published event has been dispatched."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def close(self) -> None:
        self.drain(timeout=5.0)
        if self._thread is not None and self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join(timeout=5.0)
