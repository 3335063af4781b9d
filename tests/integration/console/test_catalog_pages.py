"""Catalog and notebook pages as the workshop's data scientist: launch with typed parameters (a bad
one shown back, escaped, at its field), live status while provisioning, terminate; one audit event
per page with the service reads inside it."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from strongroom.audit.log import AuditFilter
from strongroom.platform import Platform
from tests.integration.console.conftest import ADMIN, Browser, token_of

# module fixtures start servers, train models and sandboxes: more than the suite's 120 s on a busy machine
pytestmark = pytest.mark.timeout(600)


def _alice(platform: Platform, new_browser: Callable[[], Browser]) -> Browser:
    browser = new_browser()
    browser.sign_in(token_of(platform, "alice"))
    browser.get("/console/")
    return browser


def test_a_launch_with_a_hostile_name_is_refused_at_its_field_and_shown_literally(
    console_platform: Platform, new_browser: Callable[[], Browser]
) -> None:
    alice = _alice(console_platform, new_browser)
    form = alice.get("/console/catalog/launch/notebook")
    assert form.status_code == 200, form.text
    assert '<label for="p-NotebookName">NotebookName (required)</label>' in form.text
    assert '<select id="p-InstanceSize" name="p.InstanceSize"' in form.text
    assert 'type="number" step="1" min="1" max="1024"' in form.text
    assert 'name="p.TeamName" type="text" maxlength="4096" required value="risk"' in form.text

    refused = alice.post(
        "/console/catalog/launch/notebook", {"p.TeamName": "risk", "p.NotebookName": "<script>{{7*7}}</script>"}
    )

    assert refused.status_code == 422
    assert "<script>{{7*7}}" not in refused.text
    assert "&lt;script&gt;{{7*7}}&lt;/script&gt;" in refused.text
    assert "parameters.NotebookName" in refused.text and 'aria-invalid="true"' in refused.text
    assert console_platform.catalog.list(ADMIN, "risk") == []


def test_launch_shows_live_status_then_terminate(
    console_platform: Platform, new_browser: Callable[[], Browser]
) -> None:
    alice = _alice(console_platform, new_browser)
    alice.get("/console/catalog/launch/notebook")
    launched = alice.post(
        "/console/catalog/launch/notebook",
        {"p.TeamName": "risk", "p.NotebookName": "credit-eda", "p.InstanceSize": "small", "p.VolumeSizeGiB": "5"},
    )
    assert launched.status_code == 303 and launched.headers["location"] == "/console/catalog/risk/credit-eda"

    page = alice.get("/console/catalog/risk/credit-eda")
    assert page.status_code == 200 and "UNDER_CHANGE" in page.text
    assert 'hx-get="/console/catalog/risk/credit-eda/status" hx-trigger="every 2s"' in page.text
    live = alice.client.get("/console/catalog/risk/credit-eda/status", headers={"HX-Request": "true"})
    assert live.status_code == 200 and live.text.lstrip().startswith('<section id="live-status"')
    listing = alice.get("/console/catalog")
    assert "credit-eda" in listing.text and "page 1 of 1 (1 in all)" in listing.text

    gone = alice.post("/console/catalog/risk/credit-eda/terminate")
    assert gone.status_code == 303
    assert console_platform.catalog.describe(ADMIN, "risk", "credit-eda").operation == "terminate"

    events = console_platform.audit_log.query(AuditFilter(request_id=listing.headers["x-request-id"], limit=10))
    assert [(e.action, e.decision) for e in events] == [("ViewConsolePage", "Allow")]
    checks = [c["action"] for c in events[0].params["checks"]]
    assert checks == ["ListProducts", "ListProvisionedProducts"]


def test_a_page_of_another_team_is_refused_and_audited(
    console_platform: Platform, new_browser: Callable[[], Browser]
) -> None:
    alice = _alice(console_platform, new_browser)
    answer = alice.get("/console/catalog/fraud/their-notebook")
    assert answer.status_code in (403, 404)
    events = console_platform.audit_log.query(AuditFilter(request_id=answer.headers["x-request-id"], limit=10))
    assert [(e.action, e.decision) for e in events] == [("ViewConsolePage", "Deny")]
