"""The migrated schema is exactly what the models declare (no drift between the two)."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from strongroom.db import migrate
from strongroom.db.engine import disposable_engine
from strongroom.db.registry import metadata


def test_migrations_reach_head_and_match_models(tmp_path: Path, database_url: str) -> None:
    url = database_url or f"sqlite:///{tmp_path / 'm.db'}"
    migrate.upgrade(url)
    assert migrate.current_revision(url) == migrate.head_revision()
    engine = disposable_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(context, metadata())
    finally:
        engine.dispose()
    assert diff == []


def test_single_linear_history() -> None:
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory.from_config(migrate.alembic_config("sqlite://"))
    assert len(scripts.get_heads()) == 1
