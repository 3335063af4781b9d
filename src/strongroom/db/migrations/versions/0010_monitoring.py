"""monitoring: schedules and executions

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 08:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import strongroom.db.base

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    when = strongroom.db.base.UtcDateTime(timezone=True)
    op.create_table(
        "monitoring_schedules",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("team", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("endpoint", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("expression", sa.String(length=128), nullable=False),
        sa.Column("cron", sa.String(length=128), nullable=False),
        sa.Column("every_minutes", sa.Integer(), nullable=True),
        sa.Column("every_records", sa.Integer(), nullable=True),
        sa.Column("output_uri", sa.Text(), nullable=False),
        sa.Column("statistics_uri", sa.Text(), nullable=False),
        sa.Column("constraints_uri", sa.Text(), nullable=False),
        sa.Column("feature_names", sa.JSON(), nullable=False),
        sa.Column("excluded_columns", sa.JSON(), nullable=False),
        sa.Column("enable_metrics", sa.Boolean(), nullable=False),
        sa.Column("resources", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("created_at", when, nullable=False),
        sa.Column("next_run", when, nullable=True),
        sa.Column("last_window_end", when, nullable=False),
        sa.Column("failure_reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitoring_schedules")),
        sa.UniqueConstraint("team", "name", name=op.f("uq_monitoring_schedules_team")),
    )
    op.create_table(
        "monitoring_executions",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("schedule_id", sa.String(length=32), nullable=False),
        sa.Column("team", sa.String(length=64), nullable=False),
        sa.Column("schedule", sa.String(length=64), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("exit_message", sa.Text(), nullable=False),
        sa.Column("window_start", when, nullable=False),
        sa.Column("window_end", when, nullable=False),
        sa.Column("not_before", when, nullable=False),
        sa.Column("job_name", sa.String(length=64), nullable=False),
        sa.Column("output_uri", sa.Text(), nullable=False),
        sa.Column("violations", sa.JSON(), nullable=False),
        sa.Column("distances", sa.JSON(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=True),
        sa.Column("created_at", when, nullable=False),
        sa.Column("started_at", when, nullable=True),
        sa.Column("ended_at", when, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitoring_executions")),
    )
    with op.batch_alter_table("monitoring_executions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_monitoring_executions_status"), ["status"], unique=False)
        batch_op.create_index("ix_monitoring_executions_schedule_created", ["schedule_id", "created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("monitoring_executions", schema=None) as batch_op:
        batch_op.drop_index("ix_monitoring_executions_schedule_created")
        batch_op.drop_index(batch_op.f("ix_monitoring_executions_status"))
    op.drop_table("monitoring_executions")
    op.drop_table("monitoring_schedules")
