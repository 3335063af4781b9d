"""token parents and chained audit checkpoints

A pre-signed notebook link records the API token it was derived from; an audit checkpoint records
the digest of the checkpoint before it.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 05:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("notebook_presigned_urls", schema=None) as batch_op:
        batch_op.add_column(sa.Column("parent_token", sa.String(length=32), server_default="", nullable=False))
    with op.batch_alter_table("audit_checkpoints", schema=None) as batch_op:
        batch_op.add_column(sa.Column("prev", sa.String(length=64), server_default="", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("audit_checkpoints", schema=None) as batch_op:
        batch_op.drop_column("prev")
    with op.batch_alter_table("notebook_presigned_urls", schema=None) as batch_op:
        batch_op.drop_column("parent_token")
