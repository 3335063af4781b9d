"""audit append in one statement (PostgreSQL): the chain lock is held only inside the database

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06 15:00:00.000000

``strongroom_audit_append`` takes the chain lock, reads the head, hashes the event and inserts it,
all inside one call, so the transaction that holds the lock never waits on its client between
statements. The caller sends it together with ``COMMIT`` (one round trip), which releases the lock
in the same breath. The event's canonical JSON is built by the caller (``audit.chain``) in three
pieces around the two values only the database knows under the lock, the sequence number and the
previous hash; the database joins them and hashes the UTF-8 bytes, so ``audit verify`` recomputes
the very same digest in Python. SQLite has one writer at a time and needs none of this.
"""

from __future__ import annotations

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

# Each statement of a volatile PL/pgSQL function takes a fresh snapshot (READ COMMITTED): the head
# is read after the lock is granted, so it is the newest committed one.
_FUNCTION = """
CREATE OR REPLACE FUNCTION strongroom_audit_append(
    p_id text, p_time timestamptz, p_principal text, p_token_kind text, p_role text, p_team text,
    p_action text, p_resource text, p_decision text, p_policies json, p_outcome text, p_error text,
    p_request_id text, p_source text, p_user_agent text, p_params json,
    p_before_prev_hash text, p_before_seq text, p_after_seq text)
RETURNS TABLE (event_seq bigint, event_prev_hash text, event_hash text)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    head_seq bigint;
    head_hash text;
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    PERFORM pg_advisory_xact_lock(23488048534940020);
    SELECT e.seq, e.hash INTO head_seq, head_hash FROM audit_events e ORDER BY e.seq DESC LIMIT 1;
    IF NOT FOUND THEN
        head_seq := 0;
        head_hash := repeat('0', 64);
    END IF;
    event_seq := head_seq + 1;
    event_prev_hash := head_hash;
    event_hash := encode(sha256(convert_to(
        p_before_prev_hash || '"' || head_hash || '"' || p_before_seq || event_seq::text || p_after_seq,
        'UTF8')), 'hex');
    INSERT INTO audit_events (seq, id, time, principal, token_kind, role, team, action, resource,
                              decision, policies, outcome, error, request_id, source, user_agent,
                              params, prev_hash, hash)
    VALUES (event_seq, p_id, p_time, p_principal, p_token_kind, p_role, p_team, p_action, p_resource,
            p_decision, p_policies, p_outcome, p_error, p_request_id, p_source, p_user_agent,
            p_params, event_prev_hash, event_hash);
    RETURN NEXT;
END
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_FUNCTION)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "DROP FUNCTION IF EXISTS strongroom_audit_append(text, timestamptz, text, text, text, text, text, "
            "text, text, json, text, text, text, text, text, json, text, text, text)"
        )
