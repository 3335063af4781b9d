"""Statements run straight on the database driver's connection, for the few on every call's path.

A durable tracking call runs about ten statements (its idempotency key, the component's id, the
metric point, its summary, the stored result, the audit event). Through SQLAlchemy each costs
its compiled-cache lookup, parameter processing and result wrapping, about 15 µs on the
benchmark machine: more than SQLite's own work for these one-row statements. Here they are sent
to the driver (``sqlite3`` or ``psycopg``) on the connection, and in the transaction, that the
caller's session already holds.

A statement is written once, with ``:name`` parameters, and given to each driver in its own
parameter style. Values must be in the form the driver stores: ``Driver.time`` and
``Driver.json`` convert the two types whose stored form differs between the backends.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg.types.json
from sqlalchemy import Connection, Table
from sqlalchemy.orm import Session, SessionTransaction

_NAMED = re.compile(r"(?<![:\w]):([a-z_][a-z0-9_]*)")
_CACHED = "strongroom.driver"


@dataclass(frozen=True, slots=True)
class Statement:
    """One SQL statement with ``:name`` parameters, in both drivers' parameter styles."""

    sqlite: str
    postgresql: str

    @classmethod
    def of(cls, sql: str) -> Statement:
        """``sql`` with ``:name`` parameters, or ``?`` ones (given as a sequence: cheaper in bulk)."""
        return cls(sql, _NAMED.sub(r"%(\1)s", sql.replace("%", "%%")).replace("?", "%s"))

    @classmethod
    def insert(cls, table: Table, columns: Sequence[str]) -> Statement:
        """``INSERT INTO table (columns) VALUES (:column, ...)``, the columns checked against the table."""
        unknown = [c for c in columns if c not in table.c]
        if unknown:
            raise ValueError(f"{table.name} has no column {unknown[0]!r}")
        names = ", ".join(columns)
        values = ", ".join(f":{c}" for c in columns)
        return cls.of(f"INSERT INTO {table.name} ({names}) VALUES ({values})")  # noqa: S608 (names of the schema)


@dataclass(frozen=True, slots=True)
class Driver:
    """The driver connection of one open transaction."""

    raw: Any  # sqlite3.Connection or psycopg.Connection
    is_sqlite: bool

    def execute(
        self, statement: Statement, params: Mapping[str, Any] | Sequence[Any] | None = None
    ) -> list[tuple[Any, ...]]:
        """Run ``statement``; its rows (none for a write)."""
        cursor = self.raw.cursor()
        try:
            cursor.execute(statement.sqlite if self.is_sqlite else statement.postgresql, params or {})
            return list(cursor.fetchall()) if cursor.description is not None else []
        finally:
            cursor.close()

    def execute_many(self, statement: Statement, rows: Iterable[Mapping[str, Any] | Sequence[Any]]) -> None:
        cursor = self.raw.cursor()
        try:
            cursor.executemany(statement.sqlite if self.is_sqlite else statement.postgresql, list(rows))
        finally:
            cursor.close()

    def time(self, value: dt.datetime) -> Any:
        """A timezone-aware datetime as ``UtcDateTime`` stores it (on SQLite, SQLAlchemy's DATETIME
        text: ``YYYY-MM-DD HH:MM:SS.ffffff`` in UTC)."""
        utc = value.astimezone(dt.UTC)
        return utc.replace(tzinfo=None).isoformat(" ", "microseconds") if self.is_sqlite else utc

    def json(self, value: Any) -> Any:
        """A value for a ``JSON`` column."""
        return json.dumps(value) if self.is_sqlite else psycopg.types.json.Json(value)

    def loaded(self, stored: Any) -> Any:
        """A ``JSON`` column's value as read (SQLite returns its text, psycopg the parsed value)."""
        return json.loads(stored) if isinstance(stored, str | bytes) else stored


def driver(session: Session | Connection) -> Driver:
    """The driver connection under ``session``'s current transaction, beginning it if needed.

    Kept in the session for the rest of that transaction: a later call finds it without asking
    the session again (that lookup alone costs as much as a statement).
    """
    if isinstance(session, Connection):
        return _driver_of(session)
    transaction: SessionTransaction | None = session.get_transaction()
    cached = session.info.get(_CACHED)
    if cached is not None and transaction is not None and cached[0] is transaction:
        return cached[1]
    found = _driver_of(session.connection())
    session.info[_CACHED] = (session.get_transaction(), found)
    return found


def _driver_of(connection: Connection) -> Driver:
    return Driver(connection.connection.driver_connection, connection.dialect.name == "sqlite")
