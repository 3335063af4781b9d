"""The migrated schema is exactly what the models declare (no forgotten migration)."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from strongroom.db import migrate
from strongroom.db.registry import metadata


def _diff(url: str) -> list[object]:
    migrate.upgrade(url)
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            return list(compare_metadata(context, metadata()))
    finally:
        engine.dispose()


def test_migrations_reach_head_and_match_the_models(database_url: str, tmp_path: Path) -> None:
    url = database_url or f"sqlite:///{tmp_path / 'schema.db'}"
    assert _diff(url) == []
    assert migrate.current_revision(url) == migrate.head_revision() == "0002"


def test_storage_tables_are_created(database_url: str, tmp_path: Path) -> None:
    url = database_url or f"sqlite:///{tmp_path / 'schema.db'}"
    migrate.upgrade(url)
    engine = create_engine(url, poolclass=NullPool)
    try:
        from sqlalchemy import inspect

        tables = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert {"kms_keys", "kms_key_versions", "kms_key_aliases", "buckets", "object_versions"} <= tables
