"""PostgreSQL pool: a connection that sat idle is checked before use; one that just served is not."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import text

from strongroom.db import engine as db_engine
from tests.conftest import POSTGRES_URL


@pytest.fixture
def database(monkeypatch: pytest.MonkeyPatch) -> db_engine.Database:
    if not POSTGRES_URL:
        pytest.skip("the PostgreSQL pool runs when STRONGROOM_TEST_POSTGRES_URL names a database")
    monkeypatch.setattr(db_engine, "IDLE_PING_SECONDS", 0.2)
    return db_engine.Database(POSTGRES_URL, pool_size=1)


def _backend(database: db_engine.Database) -> int:
    with database.read() as session:
        return int(session.execute(text("SELECT pg_backend_pid()")).scalar_one())


def test_a_connection_killed_while_idle_is_replaced_before_use(database: db_engine.Database) -> None:
    admin = db_engine.Database(POSTGRES_URL)
    try:
        killed = _backend(database)
        with admin.autocommit() as connection:  # as a server restart or an idle timeout would
            assert connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": killed}).scalar_one()
        time.sleep(0.3)
        assert _backend(database) != killed  # no error reached the caller: the pool opened a new one
    finally:
        admin.dispose()
        database.dispose()


def test_a_connection_in_steady_use_is_not_pinged(
    database: db_engine.Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    dialect = database.engine.dialect
    pings: list[object] = []
    ping = dialect.do_ping

    def counted(dbapi_connection: object) -> bool:
        pings.append(dbapi_connection)
        return bool(ping(dbapi_connection))

    monkeypatch.setattr(dialect, "do_ping", counted)
    try:
        for _ in range(5):
            _backend(database)
        assert pings == []  # a round trip saved on every transaction
        time.sleep(0.3)
        _backend(database)
        assert len(pings) == 1  # idle past IDLE_PING_SECONDS: checked once before use
    finally:
        database.dispose()
