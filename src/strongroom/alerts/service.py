"""Alerts raised by detective controls: an audit event (through the guard) and an HTTPS
webhook POST (JSON), delivered in the background with retries."""

from __future__ import annotations

import logging
import ssl
import threading
import time
from typing import Any

import httpx

from strongroom.core.context import RequestContext
from strongroom.db.base import utcnow
from strongroom.guard import Guard
from strongroom.policy.engine import Target

log = logging.getLogger(__name__)


class AlertService:
    def __init__(self, guard: Guard, *, webhook_url: str = "", webhook_ca: str = "", attempts: int = 5) -> None:
        if webhook_url and not webhook_url.startswith("https://"):
            from strongroom.core.errors import ConfigurationError

            raise ConfigurationError("alert_webhook_url must be an https:// URL")
        self.guard = guard
        self.webhook_url = webhook_url
        self.webhook_ca = webhook_ca
        self.attempts = attempts
        self.delivered: list[dict[str, Any]] = []

    def raise_alert(self, rule: str, team: str, resource: str, message: str, **details: Any) -> dict[str, Any]:
        """Record the alert in the audit log and send it to the webhook (if configured)."""
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
            pass
        if self.webhook_url:
            threading.Thread(target=self._deliver, args=(alert,), name="alert-webhook", daemon=True).start()
        return alert

    def _deliver(self, alert: dict[str, Any]) -> None:
        context = ssl.create_default_context(cafile=self.webhook_ca or None)
        delay = 0.5
        for attempt in range(1, self.attempts + 1):
            try:
                with httpx.Client(verify=context, timeout=10) as client:
                    response = client.post(self.webhook_url, json=alert)
                if response.status_code < 300:
                    self.delivered.append(alert)
                    return
                log.warning("alert webhook answered %s (attempt %d)", response.status_code, attempt)
            except httpx.HTTPError as exc:
                log.warning("alert webhook failed (attempt %d): %s", attempt, exc)
            time.sleep(delay)
            delay *= 2
        log.error("alert %s could not be delivered to %s", alert["rule"], self.webhook_url)
