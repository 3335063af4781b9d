"""Alerts raised by detective controls and monitors: an audit event (through the guard) and an
HTTPS webhook POST (JSON), delivered in the background with retries: to the platform's webhook
(``alert_webhook_url``) and, for a team's monitoring alerts, to the team's own webhook too."""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections.abc import Collection
from typing import Any

import httpx

from strongroom.alerts.db import TeamAlertWebhookRow
from strongroom.alerts.models import TeamWebhook
from strongroom.alerts.webhooks import check_team_webhook
from strongroom.core.context import RequestContext
from strongroom.core.errors import InvalidInput, NotFound, StrongroomError
from strongroom.db.base import utcnow
from strongroom.guard import Guard
from strongroom.policy.engine import Target

log = logging.getLogger(__name__)


def webhook_target(team: str) -> Target:
    return Target("alert-webhook", team, "monitoring")


class AlertService:
    def __init__(
        self,
        guard: Guard,
        *,
        webhook_url: str = "",
        webhook_ca: str = "",
        attempts: int = 5,
        team_webhook_allowed_hosts: Collection[str] = (),
    ) -> None:
        if webhook_url and not webhook_url.startswith("https://"):
            from strongroom.core.errors import ConfigurationError

            raise ConfigurationError("alert_webhook_url must be an https:// URL")
        self.guard = guard
        self.webhook_url = webhook_url
        self.webhook_ca = webhook_ca
        self.attempts = attempts
        self.allowed_hosts = tuple(team_webhook_allowed_hosts)
        self.delivered: list[dict[str, Any]] = []

    # -- team webhooks --------------------------------------------------------------------------

    def set_team_webhook(self, ctx: RequestContext, team: str, url: str) -> TeamWebhook:
        """``PutTeamAlertWebhook``: the team's monitoring alerts go to ``url`` (replacing any other)."""
        with self.guard.begin(ctx, "PutTeamAlertWebhook", webhook_target(team), params={"url": url}) as call:
            check_team_webhook(url, self.allowed_hosts)
            with call.transaction():
                row = call.session.get(TeamAlertWebhookRow, team)
                if row is None:
                    row = TeamAlertWebhookRow(team=team)
                    call.session.add(row)
                row.url, row.updated_by, row.updated_at = url, ctx.principal.user, utcnow()
                call.emit("TeamAlertWebhookSet", team=team)
                return _entity(row)

    def describe_team_webhook(self, ctx: RequestContext, team: str) -> TeamWebhook:
        with (
            self.guard.begin(ctx, "DescribeTeamAlertWebhook", webhook_target(team)) as call,
            call.transaction(write=False),
        ):
            row = call.session.get(TeamAlertWebhookRow, team)
            if row is None:
                raise NotFound(f"team {team} has no alert webhook", field="team")
            return _entity(row)

    def delete_team_webhook(self, ctx: RequestContext, team: str) -> None:
        with self.guard.begin(ctx, "DeleteTeamAlertWebhook", webhook_target(team)) as call, call.transaction():
            row = call.session.get(TeamAlertWebhookRow, team)
            if row is None:
                raise NotFound(f"team {team} has no alert webhook", field="team")
            call.session.delete(row)
            call.emit("TeamAlertWebhookDeleted", team=team)

    # -- alerts ---------------------------------------------------------------------------------

    def raise_alert(
        self, rule: str, team: str, resource: str, message: str, *, to_team: bool = False, **details: Any
    ) -> dict[str, Any]:
        """Record the alert in the audit log and send it to the platform's webhook (if configured)
        and, with ``to_team``, to the team's own webhook (if it set one)."""
        alert = {
            "rule": rule,
            "team": team,
            "resource": resource,
            "message": message,
            "details": details,
            "time": utcnow().isoformat(),
            "source": "strongroom",
        }
        with (
            self.guard.begin(RequestContext.system(), "RaiseAlert", Target("alert", team, rule), params=alert) as call,
            call.transaction(),
        ):
            row = call.session.get(TeamAlertWebhookRow, team) if to_team else None
            team_url = row.url if row is not None else ""
        for url, team_hook in ((self.webhook_url, False), (team_url, True)):
            if url:
                threading.Thread(
                    target=self._deliver, args=(alert, url, team_hook), name="alert-webhook", daemon=True
                ).start()
        return alert

    def _deliver(self, alert: dict[str, Any], url: str, team_hook: bool = False) -> None:
        if team_hook:
            try:  # again at delivery: what the host resolves to may have changed since it was set
                check_team_webhook(url, self.allowed_hosts)
            except InvalidInput as exc:
                log.error("alert %s not sent to team %s's webhook: %s", alert["rule"], alert["team"], exc.detail)
                return
        context = ssl.create_default_context(cafile=self.webhook_ca or None)
        delay = 0.5
        for attempt in range(1, self.attempts + 1):
            try:
                with httpx.Client(verify=context, timeout=10, follow_redirects=False) as client:
                    response = client.post(url, json=alert)
                if response.status_code < 300:
                    self.delivered.append(alert)
                    return
                log.warning("alert webhook answered %s (attempt %d)", response.status_code, attempt)
            except (httpx.HTTPError, StrongroomError) as exc:
                log.warning("alert webhook failed (attempt %d): %s", attempt, exc)
            time.sleep(delay)
            delay *= 2
        log.error("alert %s could not be delivered to %s", alert["rule"], url)


def _entity(row: TeamAlertWebhookRow) -> TeamWebhook:
    return TeamWebhook(team=row.team, url=row.url, updated_by=row.updated_by, updated_at=row.updated_at)
