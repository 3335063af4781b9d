"""idempotency retention: index the records' creation time

Every idempotent write (each durable tracking batch among them) keeps a record, which a
background worker forgets once it is older than ``idempotency_retention_days``. The index lets it
find them without reading the whole table.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 03:30:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(op.f("ix_idempotency_records_created_at"), "idempotency_records", ["created_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_idempotency_records_created_at"), table_name="idempotency_records")
