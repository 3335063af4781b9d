"""``Database.claim_writer``: take this process's SQLite writer only if it is free now (an event
loop writes a small batch itself only then, and never waits for the writer)."""

from __future__ import annotations

import threading
from pathlib import Path

from sqlalchemy import text

from strongroom.db.engine import Database


def _database(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path / 'claim.db'}")
    with database.write() as session:
        session.execute(text("CREATE TABLE t (x INTEGER)"))
    return database


def test_a_free_writer_is_claimed_and_writes_inside_do_not_wait(tmp_path: Path) -> None:
    database = _database(tmp_path)
    try:
        with database.claim_writer() as claimed:
            assert claimed
            with database.write() as session:  # reentrant: the claiming thread writes at once
                session.execute(text("INSERT INTO t VALUES (1)"))
            other: list[bool] = []
            thread = threading.Thread(target=lambda: other.append(_claims(database)))
            thread.start()
            thread.join(5)
            assert other == [False]  # held here: another thread cannot claim it
        assert _claims(database)  # released with the block
        with database.read() as session:
            assert session.execute(text("SELECT count(*) FROM t")).scalar_one() == 1
    finally:
        database.dispose()


def test_a_busy_writer_is_not_waited_for(tmp_path: Path) -> None:
    database = _database(tmp_path)
    writing, done = threading.Event(), threading.Event()

    def long_write() -> None:
        with database.write() as session:
            session.execute(text("INSERT INTO t VALUES (2)"))
            writing.set()
            done.wait(5)

    thread = threading.Thread(target=long_write)
    thread.start()
    try:
        assert writing.wait(5)
        assert not _claims(database)  # returns at once, unclaimed: run the write elsewhere
    finally:
        done.set()
        thread.join(5)
        database.dispose()


def test_a_file_shared_with_other_processes_is_never_claimed(tmp_path: Path) -> None:
    database = _database(tmp_path)
    try:
        database.shared = True  # `up --workers N`: a write may wait on another process's lock
        assert not _claims(database)
    finally:
        database.dispose()


def _claims(database: Database) -> bool:
    with database.claim_writer() as claimed:
        return claimed
