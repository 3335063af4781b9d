"""console indexes: audit search by principal, action, team or decision in chain order

The console's audit page (and ``GET /api/v1/audit/events``) filters by one or more of these
columns and pages in chain order (``seq > cursor ORDER BY seq LIMIT n``). An index on the column
alone makes the database collect every match and sort it (12,000 rows for one person in 100,000
events), and a filter without an index (team, decision) scans the whole log when few events
match. With ``seq`` second in each index, a page reads its 25 entries in order and stops.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 11:45:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

_BY = ("principal", "action", "team", "decision")


def upgrade() -> None:
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_events_action")
        batch_op.drop_index("ix_audit_events_principal")
        for column in _BY:
            batch_op.create_index(f"ix_audit_events_{column}_seq", [column, "seq"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        for column in _BY:
            batch_op.drop_index(f"ix_audit_events_{column}_seq")
        batch_op.create_index("ix_audit_events_principal", ["principal"], unique=False)
        batch_op.create_index("ix_audit_events_action", ["action"], unique=False)
