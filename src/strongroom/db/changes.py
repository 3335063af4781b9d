"""Cache invalidation across the processes of one platform, through the database.

Each process keeps caches (authenticated tokens, policy facts, kept decisions) that a change made
by another process (another API worker of ``strongroom up --workers N``, or a host command such
as ``strongroom admin recover``) must drop. The process that makes the change appends a row to
``cache_changes`` (in the change's own transaction where it can); every serving process polls
the table a few times a second and applies the rows other processes wrote. One indexed query per
poll, nothing per request; it works the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import Float, Integer, String, delete, insert, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from strongroom.db.base import Base
from strongroom.db.engine import Database

log = logging.getLogger("strongroom.changes")

POLL_SECONDS = 0.2
"""How often a serving process looks for changes (the cross-process invalidation latency)."""

_WINDOW_SECONDS = 30.0
"""Rows are read again for this long: a PostgreSQL sequence value can commit after a higher one."""

_KEEP_SECONDS = 600.0


class CacheChangeRow(Base):
    __tablename__ = "cache_changes"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    origin: Mapped[str] = mapped_column(String(32))
    topic: Mapped[str] = mapped_column(String(32))
    key: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[float] = mapped_column(Float, index=True)


Handler = Callable[[str], None]


class ChangeFeed:
    """Publish "``topic``/``key`` changed" to the other processes; apply what they published."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.origin = uuid.uuid4().hex
        self._handlers: dict[str, list[Handler]] = {}
        self._seen: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._polls = 0
        self._soon: list[tuple[str, str]] = []
        self._soon_lock = threading.Lock()
        self.applied = 0

    def subscribe(self, topic: str, handler: Handler) -> None:
        self._handlers.setdefault(topic, []).append(handler)

    def publish(self, topic: str, key: str = "", session: Session | None = None) -> None:
        """Record a change: in ``session`` (committed with it) or in a transaction of its own."""
        values: dict[str, Any] = {"origin": self.origin, "topic": topic, "key": key[:256], "created_at": time.time()}
        if session is not None:
            session.execute(insert(CacheChangeRow).values(**values))
        else:
            with self.db.write_connection() as connection:
                connection.execute(insert(CacheChangeRow).values(**values))

    def publish_soon(self, topic: str, key: str = "") -> None:
        """Record a change from the polling thread, within a poll interval (safe to call anywhere,
        even inside another write transaction of this thread: it writes nothing here)."""
        with self._soon_lock:
            if (topic, key) not in self._soon:
                self._soon.append((topic, key))

    def _flush_soon(self) -> None:
        with self._soon_lock:
            pending, self._soon = self._soon, []
        for topic, key in pending:
            self.publish(topic, key)

    # -- applying -------------------------------------------------------------------------------

    def start(self) -> None:
        """Poll in a daemon thread until ``stop`` (a serving process; commands need not)."""
        if self._thread is not None:
            return
        self._mark_existing()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="cache-changes", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def _mark_existing(self) -> None:
        since = time.time() - _WINDOW_SECONDS
        with self.db.read() as session:
            for seq, at in session.execute(
                select(CacheChangeRow.seq, CacheChangeRow.created_at).where(CacheChangeRow.created_at >= since)
            ):
                self._seen[seq] = at

    def _run(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            try:
                self._flush_soon()
                self.poll()
                self._polls += 1
                if self._polls % 3000 == 0:  # every ten minutes or so, drop what nobody reads again
                    self._prune()
            except Exception:  # the database may be restarting; the next poll retries
                log.warning("cache changes: poll failed", exc_info=True)

    def _prune(self) -> None:
        old = time.time() - _KEEP_SECONDS
        with self.db.write_connection() as connection:
            connection.execute(delete(CacheChangeRow).where(CacheChangeRow.created_at < old))

    def poll(self) -> int:
        """Apply the changes other processes published since the last poll; how many."""
        now = time.time()
        with self.db.read() as session:
            rows = session.execute(
                select(CacheChangeRow.seq, CacheChangeRow.origin, CacheChangeRow.topic, CacheChangeRow.key)
                .where(CacheChangeRow.created_at >= now - _WINDOW_SECONDS)
                .order_by(CacheChangeRow.seq)
            ).all()
        applied = 0
        for seq, origin, topic, key in rows:
            if seq in self._seen:
                continue
            self._seen[seq] = now
            if origin == self.origin:
                continue
            for handler in self._handlers.get(topic, ()):
                handler(key)
            applied += 1
        if len(self._seen) > 1000:
            self._seen = {s: t for s, t in self._seen.items() if t >= now - 2 * _WINDOW_SECONDS}
        if applied:
            self.applied += applied
            log.info("cache changes: applied %d change(s) from other processes (pid %d)", applied, os.getpid())
        return applied
