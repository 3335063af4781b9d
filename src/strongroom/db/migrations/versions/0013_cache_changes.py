"""cache changes: cross-process cache invalidation (strongroom up --workers N); audit flushes

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 08:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cache_changes",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("origin", sa.String(length=32), nullable=False),
        sa.Column("topic", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=256), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_cache_changes")),
    )
    op.create_index(op.f("ix_cache_changes_created_at"), "cache_changes", ["created_at"], unique=False)
    op.create_table(
        "audit_flushes",
        sa.Column("backend", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("backend", name=op.f("pk_audit_flushes")),
    )


def downgrade() -> None:
    op.drop_table("audit_flushes")
    op.drop_index(op.f("ix_cache_changes_created_at"), table_name="cache_changes")
    op.drop_table("cache_changes")
