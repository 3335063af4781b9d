"""What a console page costs does not grow with the data behind it: a page of jobs loads the
jobs it shows, whatever the team has (issue 17 §4: p95 < 150 ms with 1,000 jobs; the figures are
in benchmarks/console.py)."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event, insert, select

from strongroom.core.context import Grant
from strongroom.jobs.db import JobRow
from strongroom.jobs.models import JobSpec
from strongroom.platform import Platform
from tests.integration.console.conftest import Browser, token_of
from tests.support import context_for

pytestmark = pytest.mark.timeout(600)
JOBS = 120


def _jobs(platform: Platform, count: int) -> None:
    """One job created through the service, and ``count - 1`` more of its kind written beside it
    (a team's history: finished jobs, one every ten minutes)."""
    dsa = context_for("dora", Grant("DataScienceAdmin", "risk"))
    alice = context_for("alice", Grant("DataScientist", "risk"))
    platform.kms.create_key(dsa, "risk", "risk-key", "risk jobs key")
    platform.storage.create_bucket(dsa, "risk", "risk-data", key="risk-key")
    script = platform.storage.put_object(alice, "risk-data", "code/prep.py", [b"print('prepared')\n"])
    spec = {
        "name": "prep-credit",
        "team": "risk",
        "kind": "processing",
        "code": {"source": script.uri},
        "security": {"network_isolation": True, "volume_kms_key": "risk-key"},
    }
    platform.jobs.create_job(alice, JobSpec.model_validate(spec))
    with platform.db.write() as session:
        first = session.scalars(select(JobRow)).one()
        template = {c.name: getattr(first, c.key) for c in JobRow.__table__.columns}
        rows = []
        for i in range(1, count):
            name = f"prep-credit-{i:03d}"
            rows.append(
                {
                    **template,
                    "id": uuid.uuid4().hex,
                    "name": name,
                    "spec": {**template["spec"], "name": name},
                    "status": "Completed",
                    "created_at": template["created_at"] - dt.timedelta(minutes=10 * i),
                }
            )
        session.execute(insert(JobRow), rows)


@contextmanager
def _loaded(model: type[Any]) -> Iterator[list[Any]]:
    """The rows of ``model`` the ORM loads meanwhile."""
    seen: list[Any] = []

    def loaded(target: Any, _context: Any) -> None:
        seen.append(target)

    event.listen(model, "load", loaded)
    try:
        yield seen
    finally:
        event.remove(model, "load", loaded)


def test_a_page_of_jobs_loads_the_jobs_it_shows_in_order(
    console_platform: Platform, new_browser: Callable[[], Browser]
) -> None:
    _jobs(console_platform, JOBS)
    alice = new_browser()
    alice.sign_in(token_of(console_platform, "alice"))

    with _loaded(JobRow) as rows:
        page = alice.get("/console/jobs?page=2")

    assert page.status_code == 200 and f"page 2 of 5 ({JOBS} in all)" in page.text
    shown = re.findall(r'href="/console/jobs/risk/([a-z0-9-]+)"', page.text)
    assert shown == [f"prep-credit-{i:03d}" for i in range(25, 50)]  # newest first: the second 25
    assert len(rows) == 25
    last = alice.get("/console/jobs?page=9")  # past the end: the last page
    assert "page 5 of 5" in last.text and len(re.findall(r'href="/console/jobs/risk/', last.text)) == JOBS - 100
