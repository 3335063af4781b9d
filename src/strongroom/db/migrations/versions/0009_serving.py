"""serving: models, endpoint configs, endpoints

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 05:50:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import strongroom.db.base

revision = "0009"
# The brief named 0007, but 0008 (token parents) already follows 0007 on main: two heads would stop
# the platform from starting. The lead re-chains at merge.
down_revision = "0008"
branch_labels = None
depends_on = None


def _common(name: str) -> list[sa.Column[object]]:
    return [
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("team", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
    ]


def upgrade() -> None:
    for table in ("serving_models", "serving_endpoint_configs"):
        op.create_table(
            table,
            *_common(table),
            sa.Column("created_by", sa.String(length=64), nullable=False),
            sa.Column("spec", sa.JSON(), nullable=False),
            sa.Column("created_at", strongroom.db.base.UtcDateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}")),
            sa.UniqueConstraint("team", "name", name=op.f(f"uq_{table}_team")),
        )
    op.create_table(
        "serving_endpoints",
        *_common("serving_endpoints"),
        sa.Column("config_name", sa.String(length=64), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("models", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("failure_reason", sa.Text(), nullable=False),
        sa.Column("spool_key", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", strongroom.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", strongroom.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_serving_endpoints")),
        sa.UniqueConstraint("team", "name", name=op.f("uq_serving_endpoints_team")),
    )
    with op.batch_alter_table("serving_endpoints", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_serving_endpoints_status"), ["status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("serving_endpoints", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_serving_endpoints_status"))
    op.drop_table("serving_endpoints")
    op.drop_table("serving_endpoint_configs")
    op.drop_table("serving_models")
