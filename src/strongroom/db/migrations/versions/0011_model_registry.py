"""model registry: package groups, versions, approval history

Revision ID: 0011
Revises: 0009
Create Date: 2026-12-06 08:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import strongroom.db.base

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "serving_model_package_groups",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("team", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", strongroom.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_serving_model_package_groups")),
        sa.UniqueConstraint("team", "name", name=op.f("uq_serving_model_package_groups_team")),
    )
    op.create_table(
        "serving_model_packages",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("team", sa.String(length=64), nullable=False),
        sa.Column("group_name", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("model", sa.JSON(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("approval_status", sa.String(length=32), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", strongroom.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", strongroom.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_serving_model_packages")),
        sa.UniqueConstraint("team", "group_name", "version", name=op.f("uq_serving_model_packages_team")),
    )
    with op.batch_alter_table("serving_model_packages", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_serving_model_packages_sha256"), ["sha256"], unique=False)
    op.create_table(
        "serving_model_package_approvals",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("package_id", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("by_user", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("at", strongroom.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_serving_model_package_approvals")),
    )
    with op.batch_alter_table("serving_model_package_approvals", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_serving_model_package_approvals_package_id"), ["package_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("serving_model_package_approvals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_serving_model_package_approvals_package_id"))
    op.drop_table("serving_model_package_approvals")
    with op.batch_alter_table("serving_model_packages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_serving_model_packages_sha256"))
    op.drop_table("serving_model_packages")
    op.drop_table("serving_model_package_groups")
