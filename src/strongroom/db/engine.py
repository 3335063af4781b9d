"""Engine and sessions. Writes are serialized the way each backend needs it.

SQLite: one writer at a time. Write transactions start with ``BEGIN IMMEDIATE`` (so a
transaction never upgrades a stale read snapshot and fails with SQLITE_BUSY) behind an
in-process lock (so threads queue instead of spinning in SQLite's busy handler).
PostgreSQL: ordinary transactions; the audit log takes an advisory lock for its chain head.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import create_engine, event, exc
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

IDLE_PING_SECONDS = 1.0
"""A pooled PostgreSQL connection idle this long is pinged before it is used again."""
SQLITE_AUTOCHECKPOINT_PAGES = 1000
"""SQLite's own default: a commit that finds this many pages in the WAL checkpoints it itself."""
BACKSTOP_AUTOCHECKPOINT_PAGES = 10_000
"""The same once a background worker checkpoints (``checkpoint_wal``): only if it falls behind."""


class Database:
    """Owns the engine; hands out read and write sessions."""

    shared = False
    """Other processes of the platform write to this SQLite file too (``up --workers N``); the
    server sets it before serving."""

    def __init__(self, url: str, *, sqlite_synchronous: str = "NORMAL", pool_size: int = 16) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {}
        if self.is_sqlite:
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
            if ":memory:" in url or url in ("sqlite://", "sqlite:///"):
                raise ValueError("use a file database; in-memory SQLite is not shared between threads")
        else:
            kwargs["pool_size"] = pool_size
            kwargs["max_overflow"] = pool_size
        self.engine: Engine = create_engine(url, **kwargs)
        if self.is_sqlite:
            _configure_sqlite(self.engine, sqlite_synchronous)
        else:
            _ping_when_idle(self.engine, IDLE_PING_SECONDS)
        self._write_lock = threading.RLock() if self.is_sqlite else None
        self._autocheckpoint = SQLITE_AUTOCHECKPOINT_PAGES
        if self.is_sqlite:
            _apply_autocheckpoint(self.engine, lambda: self._autocheckpoint)
        self._writer = self.engine.execution_options(sqlite_begin="IMMEDIATE")
        self._autocommit = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        self._reads = sessionmaker(self.engine, expire_on_commit=False)
        self._writes = sessionmaker(self._writer, expire_on_commit=False)

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read session; closing it ends its transaction (loaded objects stay readable)."""
        with self._reads() as session:
            yield session

    @contextmanager
    def _serialized(self) -> Iterator[None]:
        lock = self._write_lock
        if lock is None:
            yield
            return
        with lock:
            yield

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A write transaction: committed when the block ends normally, else rolled back."""
        with self._serialized(), self._writes() as session, session.begin():
            yield session

    @contextmanager
    def claim_writer(self) -> Iterator[bool]:
        """Hold this process's SQLite writer if it is free now, without waiting for it.

        Yields True when claimed: the caller's write transactions on this thread inside the block
        then start at once (the lock is reentrant). Yields False when another thread writes, on
        PostgreSQL, and when other processes share the file (``shared``): there a write may wait
        on a lock this process cannot see. For callers that must not block (an event loop).
        """
        lock = self._write_lock
        if lock is None or self.shared or not lock.acquire(blocking=False):
            yield False
            return
        try:
            yield True
        finally:
            lock.release()

    @contextmanager
    def write_connection(self) -> Iterator[Connection]:
        """A write transaction on a bare connection, for hot paths that need no ORM session."""
        with self._serialized(), self._writer.begin() as connection:
            yield connection

    @contextmanager
    def autocommit(self) -> Iterator[Connection]:
        """A connection whose every statement commits on its own (PostgreSQL)."""
        with self._autocommit.connect() as connection:
            yield connection

    def checkpoint_wal(self) -> tuple[int, int] | None:
        """Copy the WAL's committed pages into the SQLite file (a passive checkpoint: it waits for
        no reader or writer), from now on the platform's way of checkpointing; returns the WAL's
        (frames, frames checkpointed), or None on PostgreSQL.

        Once called, commits leave checkpoints to it (up to ``BACKSTOP_AUTOCHECKPOINT_PAGES``): a
        checkpoint syncs the WAL and the file, and a commit that ran one held the writer through
        those syncs, however long a disk busy with another process's writes made them.
        """
        if not self.is_sqlite:
            return None
        self._autocheckpoint = BACKSTOP_AUTOCHECKPOINT_PAGES
        raw = self.engine.raw_connection()
        try:
            cursor = raw.cursor()
            try:
                cursor.execute("PRAGMA wal_checkpoint(PASSIVE)")
                _busy, frames, done = cursor.fetchone() or (0, 0, 0)
            finally:
                cursor.close()
        finally:
            raw.close()
        return int(frames), int(done)

    def dispose(self) -> None:
        self.engine.dispose()


def _configure_sqlite(engine: Engine, synchronous: str) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        # Straight to the driver: every transaction starts here (see ``strongroom.db.driver``).
        conn.connection.driver_connection.execute(f"BEGIN {mode}")


def _apply_autocheckpoint(engine: Engine, pages: Callable[[], int]) -> None:
    """Give each checked-out SQLite connection the current ``wal_autocheckpoint`` (a per-connection
    setting; pooled connections made before ``checkpoint_wal`` took over are brought up to date)."""

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        wanted = pages()
        if record.info.get("wal_autocheckpoint") != wanted:
            cursor = dbapi_connection.cursor()
            cursor.execute(f"PRAGMA wal_autocheckpoint={int(wanted)}")
            cursor.close()
            record.info["wal_autocheckpoint"] = wanted


def _ping_when_idle(engine: Engine, idle_seconds: float) -> None:
    """Check a pooled connection before use if it sat idle ``idle_seconds`` or more.

    A connection checked in a moment ago was working then; pinging it on every checkout (the
    pool's ``pre_ping``) costs a round trip per transaction, two per audited call. One that sat
    idle may have been closed by the server (a restart, an idle timeout): it is pinged, and if
    dead, replaced before the caller sees it.
    """

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < idle_seconds:
            return  # a new connection, or one that just served
        if not engine.dialect._do_ping_w_event(dbapi_connection):
            raise exc.DisconnectionError("the pooled connection is dead; the pool opens a new one")


def disposable_engine(url: str) -> Engine:
    """A short-lived engine (migrations, CLI checks) that keeps no pooled connections."""
    return create_engine(url, poolclass=NullPool)
