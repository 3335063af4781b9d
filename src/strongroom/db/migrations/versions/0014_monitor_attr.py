"""monitor attr: explainability schedules, persisted every-N-records counters, team alert webhooks

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 11:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import strongroom.db.base

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("monitoring_schedules") as batch:
        batch.add_column(
            sa.Column("monitoring_type", sa.String(length=32), nullable=False, server_default="DataQuality")
        )
        batch.add_column(sa.Column("analysis_uri", sa.Text(), nullable=False, server_default=""))
        batch.add_column(sa.Column("attribution_threshold", sa.Float(), nullable=True))
        batch.add_column(sa.Column("records_counted", sa.BigInteger(), nullable=False, server_default="0"))
    op.create_table(
        "team_alert_webhooks",
        sa.Column("team", sa.String(length=64), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("updated_by", sa.String(length=64), nullable=False),
        sa.Column("updated_at", strongroom.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("team", name=op.f("pk_team_alert_webhooks")),
    )


def downgrade() -> None:
    op.drop_table("team_alert_webhooks")
    with op.batch_alter_table("monitoring_schedules") as batch:
        batch.drop_column("records_counted")
        batch.drop_column("attribution_threshold")
        batch.drop_column("analysis_uri")
        batch.drop_column("monitoring_type")
