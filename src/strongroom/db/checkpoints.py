"""The SQLite WAL checkpoint, run by a background worker instead of by whichever commit filled the WAL."""

from __future__ import annotations

from strongroom.core.workers import Worker
from strongroom.db.engine import Database


class WalCheckpointWorker(Worker):
    """Checkpoints the SQLite WAL every second (``Database.checkpoint_wal``).

    A commit no longer pays for the checkpoint's syncs while holding the writer, and with
    ``synchronous=NORMAL`` the commits a power loss of the machine may take are those of about
    the last second (the checkpoint syncs the WAL first). Nothing to do on PostgreSQL.
    """

    name = "wal-checkpoints"
    interval_seconds = 1.0

    def __init__(self, db: Database) -> None:
        self.db = db

    def run_once(self) -> None:
        self.db.checkpoint_wal()

    def stop(self) -> None:
        self.db.checkpoint_wal()
