"""Detective controls over jobs (the workshop's "enforcer"): event rules that react within
seconds to what preventive guardrails could not forbid (teams an admin exempted)."""

from __future__ import annotations

import logging

from strongroom.alerts.service import AlertService
from strongroom.audit.events import Event, Rule
from strongroom.core.context import RequestContext
from strongroom.core.errors import Conflict, NotFound
from strongroom.jobs.service import JobService

log = logging.getLogger(__name__)


class NetworkIsolationEnforcer(Rule):
    """Stops any job that starts without network isolation, and raises an alert."""

    name = "enforce-network-isolation"
    kinds = ("state",)

    def __init__(self, jobs: JobService, alerts: AlertService) -> None:
        self.jobs = jobs
        self.alerts = alerts

    def matches(self, event: Event) -> bool:
        return event.kind == "state" and event.name == "JobStarted" and event.data.get("network_isolation") is False

    def handle(self, event: Event) -> None:
        team, name = event.team, event.resource.rsplit("/", 1)[-1]
        reason = (
            f"stopped by detective control {self.name}: the job runs without network isolation "
            "(its team is exempted from the preventive guardrail)"
        )
        try:
            self.jobs.stop(RequestContext.system(), team, name, reason)
        except (Conflict, NotFound) as exc:
            log.info("%s: job %s/%s already gone: %s", self.name, team, name, exc.detail)
        self.alerts.raise_alert(self.name, team, event.resource, reason, job=name)
