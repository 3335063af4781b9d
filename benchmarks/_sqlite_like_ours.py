"""Benchmark control only: open MLflow's SQLite file as Strongroom opens its own (WAL,
``synchronous=NORMAL``: no fsync per commit), so that durable calls compare like for like on disk.

``install(path)`` adds an SQLAlchemy ``connect`` listener, in this process, for every engine
that opens the database file ``path`` (and no other). MLflow in process calls it directly; the
``mlflow server`` peer runs it in each of its processes from a ``sitecustomize`` module that
``sitecustomize_source`` writes.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any


def install(path: str) -> None:
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        if not isinstance(dbapi_connection, sqlite3.Connection):
            return
        files = [row[2] for row in dbapi_connection.execute("PRAGMA database_list")]
        if path in files:
            dbapi_connection.execute("PRAGMA journal_mode=WAL")
            dbapi_connection.execute("PRAGMA synchronous=NORMAL")

    event.listen(Engine, "connect", on_connect)


def sitecustomize_source(path: Path) -> str:
    """A ``sitecustomize`` module that calls ``install(path)`` when a Python process starts (this
    folder must be on the process's ``PYTHONPATH`` too)."""
    return f"import _sqlite_like_ours\n\n_sqlite_like_ours.install({str(path)!r})\n"
