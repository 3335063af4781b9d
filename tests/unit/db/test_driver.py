"""Statements sent straight to the driver store exactly what SQLAlchemy stores, in the caller's
transaction, on both backends."""

from __future__ import annotations

import datetime as dt
from typing import Any, cast

import pytest
from sqlalchemy import Table, select, text
from sqlalchemy.orm import Session

from strongroom.db.driver import Statement, driver
from strongroom.platform import Platform
from strongroom.policy.db import IdempotencyRow

_TABLE = cast(Table, IdempotencyRow.__table__)
_COLUMNS = ("principal", "key", "action", "request_hash", "result", "created_at")
_INSERT = Statement.insert(_TABLE, _COLUMNS)
_STORED = text("SELECT created_at, result FROM idempotency_records WHERE key = :key")
_RESULT = {"name": "café ☕", "count": 3, "nested": {"values": [0.1, None, True]}}


def test_a_row_written_through_the_driver_is_stored_as_the_orm_stores_it(platform: Platform) -> None:
    moment = dt.datetime(2026, 12, 7, 3, 4, 5, 678901, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    with platform.db.write() as session:
        session.add(
            IdempotencyRow(
                principal="alice", key="orm", action="A", request_hash="h", result=_RESULT, created_at=moment
            )
        )
        session.flush()
        db = driver(session)
        db.execute(
            _INSERT,
            {
                "principal": "alice",
                "key": "driver",
                "action": "A",
                "request_hash": "h",
                "result": db.json(_RESULT),
                "created_at": db.time(moment),
            },
        )
    with platform.db.read() as session:
        # Byte for byte the same stored values (SQLite keeps the datetime as text: one format).
        orm, direct = (session.execute(_STORED, {"key": key}).one() for key in ("orm", "driver"))
        assert tuple(direct) == tuple(orm)
        row = session.scalars(select(IdempotencyRow).where(IdempotencyRow.key == "driver")).one()
        assert row.created_at == moment and row.created_at.tzinfo is not None
        assert row.result == _RESULT


def test_driver_statements_belong_to_the_callers_transaction(platform: Platform) -> None:
    class Boom(Exception):
        pass

    with pytest.raises(Boom), platform.db.write() as session:
        db = driver(session)
        row = {c: "x" for c in _COLUMNS} | {"result": db.json({}), "created_at": db.time(dt.datetime.now(dt.UTC))}
        db.execute(_INSERT, row)
        assert db.execute(Statement.of("SELECT count(*) FROM idempotency_records"))[0][0] == 1
        raise Boom
    with platform.db.read() as session:
        assert session.execute(text("SELECT count(*) FROM idempotency_records")).scalar_one() == 0


def test_a_sessions_next_transaction_gets_its_own_connection(platform: Platform) -> None:
    session = Session(platform.db.engine)
    try:
        first = driver(session)
        assert driver(session) is first  # kept for the transaction
        session.commit()  # the connection went back to the pool; it may serve another thread now
        second = driver(session)
        assert second is not first
        assert second.raw is session.connection().connection.driver_connection
    finally:
        session.close()


def test_one_statement_in_both_parameter_styles() -> None:
    statement = Statement.of("SELECT a::text FROM t WHERE b = :b AND c LIKE 'x%' AND d = ?")
    assert statement.sqlite == "SELECT a::text FROM t WHERE b = :b AND c LIKE 'x%' AND d = ?"
    assert statement.postgresql == "SELECT a::text FROM t WHERE b = %(b)s AND c LIKE 'x%%' AND d = %s"


def test_an_insert_names_only_columns_of_its_table() -> None:
    with pytest.raises(ValueError, match="idempotency_records has no column 'owner'"):
        Statement.insert(_TABLE, ("principal", "owner"))


@pytest.mark.parametrize("stored", ['{"a": 1}', b'{"a": 1}', {"a": 1}])
def test_json_is_read_back_whatever_the_driver_returns(platform: Platform, stored: Any) -> None:
    with platform.db.read() as session:
        assert driver(session).loaded(stored) == {"a": 1}
