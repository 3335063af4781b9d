"""Audit search (the console's audit page and ``GET /api/v1/audit/events``): the right events, in
chain order, a page at a time, read through an index that serves both the filter and the order."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event

from strongroom.audit.log import AuditFilter, AuditRecord
from strongroom.platform import Platform
from tests.conftest import ON_SQLITE

PEOPLE = ("alice", "bob", "mo", "ava")
ACTIONS = ("GetObject", "PutObject", "ListJobs", "DeleteObject")


def _fill(platform: Platform, count: int) -> None:
    with platform.db.write_connection() as connection:
        for i in range(count):
            platform.audit_log.append(
                connection,
                AuditRecord(
                    principal=PEOPLE[i % 4],
                    token_kind="api",
                    action=ACTIONS[i % 3],
                    team="risk" if i % 2 else "fraud",
                    resource=f"srn:strongroom:risk:object/risk-data/raw/part-{i:05d}.csv",
                    decision="Deny" if i % 10 == 0 else "Allow",
                ),
            )


@contextmanager
def _statements(platform: Platform) -> Iterator[list[tuple[str, Any]]]:
    seen: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, parameters))

    event.listen(platform.db.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(platform.db.engine, "before_cursor_execute", record)


def test_a_search_pages_through_the_matching_events_in_chain_order(platform: Platform) -> None:
    _fill(platform, 200)
    flt = AuditFilter(principal="bob", team="risk", limit=25)
    first = platform.audit_log.query(flt)
    assert len(first) == 25 and all(e.principal == "bob" and e.team == "risk" for e in first)
    assert [e.seq for e in first] == sorted(e.seq for e in first)
    second = platform.audit_log.query(AuditFilter(principal="bob", team="risk", after_seq=first[-1].seq, limit=25))
    assert second and second[0].seq > first[-1].seq
    denied = platform.audit_log.query(AuditFilter(decision="Deny", limit=100))
    assert len(denied) == 20 and all(e.decision == "Deny" for e in denied)
    assert platform.audit_log.query(AuditFilter(team="nobody")) == []


@pytest.mark.parametrize(
    ("flt", "index"),
    [
        (AuditFilter(principal="alice", limit=25), "ix_audit_events_principal_seq"),
        (AuditFilter(action="DeleteObject", after_seq=50, limit=25), "ix_audit_events_action_seq"),
        (AuditFilter(team="nobody", limit=25), "ix_audit_events_team_seq"),
        (AuditFilter(decision="Invalid", limit=25), "ix_audit_events_decision_seq"),
    ],
)
@ON_SQLITE  # the plan asserted is SQLite's; PostgreSQL plans by table statistics
def test_a_filtered_page_reads_an_index_in_chain_order_and_sorts_nothing(
    platform: Platform, flt: AuditFilter, index: str
) -> None:
    """With 100,000 events a filter that matches few of them must not scan the log, and one that
    matches many must not collect and sort them all: the page walks one index in ``seq`` order."""
    _fill(platform, 50)
    with _statements(platform) as seen:
        platform.audit_log.query(flt)
    [(statement, parameters)] = seen
    with platform.db.engine.connect() as connection:
        plan = " | ".join(row[-1] for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters))
    assert index in plan, plan
    assert "TEMP B-TREE" not in plan, plan
