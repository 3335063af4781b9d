"""The SQLite WAL is checkpointed by a background worker, not by whichever commit filled it."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from strongroom.db.checkpoints import WalCheckpointWorker
from strongroom.db.engine import BACKSTOP_AUTOCHECKPOINT_PAGES, SQLITE_AUTOCHECKPOINT_PAGES, Database


def _autocheckpoint(database: Database) -> int:
    with database.write() as session:
        return int(session.execute(text("PRAGMA wal_autocheckpoint")).scalar_one())


def _write(database: Database, rows: int) -> None:
    with database.write() as session:
        session.execute(text("CREATE TABLE IF NOT EXISTS t (x BLOB)"))
        for _ in range(rows):
            session.execute(text("INSERT INTO t VALUES (randomblob(2000))"))


def test_the_worker_takes_over_checkpoints_and_copies_the_wal_into_the_file(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'wal.db'}")
    try:
        assert _autocheckpoint(database) == SQLITE_AUTOCHECKPOINT_PAGES  # until a worker runs
        _write(database, 500)
        worker = WalCheckpointWorker(database)
        worker.run_once()
        # pooled connections made before are brought up to date when next checked out
        assert _autocheckpoint(database) == BACKSTOP_AUTOCHECKPOINT_PAGES
        _write(database, 500)
        checkpointed = database.checkpoint_wal()
        assert checkpointed is not None
        frames, done = checkpointed
        assert frames > 0 and done == frames  # no reader held it back: everything was copied
        worker.stop()
        with database.read() as session:
            assert session.execute(text("SELECT count(*) FROM t")).scalar_one() == 1000
    finally:
        database.dispose()
