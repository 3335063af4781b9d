"""Open notebook WebSockets, keyed by the credentials they stand on, so revocation can close them.

A WebSocket is authenticated and authorized once, when it opens; a kernel channel may then stay
open for hours. Each open socket registers what it depends on (the user, the grant it was
allowed with, the API token its credential was derived from) and a thread-safe ``close``. When a
token is revoked, a user disabled or a membership removed, ``close_invalid`` checks the sockets
of that user again and closes those whose credentials no longer stand.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(eq=False)
class OpenSocket:
    """One open WebSocket: who it acts for and how to end it."""

    user: str
    notebook_id: str
    still_valid: Callable[[], bool]  # reads the database: call it from a thread, not the event loop
    close: Callable[[str], None]  # thread-safe; the argument is the reason sent to the client


class OpenSockets:
    """The registry of open WebSockets of this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: set[OpenSocket] = set()

    @contextmanager
    def holding(self, entry: OpenSocket) -> Iterator[OpenSocket]:
        """Register ``entry`` for the lifetime of the ``with`` block."""
        with self._lock:
            self._open.add(entry)
        try:
            yield entry
        finally:
            with self._lock:
                self._open.discard(entry)

    def _matching(self, user: str | None, notebook_id: str | None) -> list[OpenSocket]:
        with self._lock:
            return [
                e
                for e in self._open
                if (user is None or e.user == user) and (notebook_id is None or e.notebook_id == notebook_id)
            ]

    def close_invalid(self, user: str | None = None) -> int:
        """Close the sockets (of ``user``, or all) whose credentials no longer stand; returns how many."""
        closed = 0
        for entry in self._matching(user, None):
            try:
                valid = entry.still_valid()
            except Exception:
                log.exception("notebooks: could not re-check a WebSocket of %s; closing it", entry.user)
                valid = False
            if not valid:
                entry.close("the credentials of this session were revoked")
                closed += 1
        return closed

    def close_notebook(self, notebook_id: str, reason: str) -> int:
        """Close every socket of one notebook (its kernels no longer run on a valid role)."""
        entries = self._matching(None, notebook_id)
        for entry in entries:
            entry.close(reason)
        return len(entries)

    def __len__(self) -> int:
        with self._lock:
            return len(self._open)
