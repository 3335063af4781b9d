"""console sessions

A browser signed in to the web console holds a random cookie; the session it stands for (user,
the API token it was opened with, the role switched to, expiry, revocation) lives here.

Revision ID: 0012
Revises: 0009
Create Date: 2026-12-06 08:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import strongroom.db.base

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "console_sessions",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("user", sa.String(length=64), nullable=False),
        sa.Column("via", sa.String(length=16), nullable=False),
        sa.Column("parent_token", sa.String(length=32), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("team", sa.String(length=64), nullable=False),
        sa.Column("allowed", sa.JSON(), nullable=True),
        sa.Column("created_at", strongroom.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", strongroom.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", strongroom.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", strongroom.db.base.UtcDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["user"], ["users.name"], name=op.f("fk_console_sessions_user_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_console_sessions")),
        sa.UniqueConstraint("secret_hash", name=op.f("uq_console_sessions_secret_hash")),
    )
    with op.batch_alter_table("console_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_console_sessions_user"), ["user"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("console_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_console_sessions_user"))
    op.drop_table("console_sessions")
