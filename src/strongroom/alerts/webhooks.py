"""Which webhook URLs alerts may be POSTed to.

A team's webhook is set by its DataScienceAdmin but called by the platform, from the platform's
own network (where the sandboxes have none): left unchecked it would let a team reach whatever
the platform host can (its own API on loopback, a cloud metadata service, internal services):
server-side request forgery. So a team webhook must be:

- ``https://`` with a host name or a public IP address, at most 2,048 characters;
- without credentials: no ``user:password@`` and no query parameter named like a secret
  (``token``, ``key``, ``secret``, ``password``, ``signature``, ``sig``, ``auth``); the URL is
  configuration shown to the team and recorded in the audit log, not a secret;
- resolving only to public addresses: every address the host resolves to, when set and again
  before each delivery, must be globally routable (no loopback, private, link-local, multicast,
  reserved or unspecified address), unless the operator lists the host in
  ``alert_team_webhook_allowed_hosts`` (an internal alert relay, say).

Deliveries follow no redirect, verify the certificate (the system CAs, or ``alert_webhook_ca``) and
send only the alert's JSON.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Collection
from urllib.parse import parse_qsl, urlsplit

from strongroom.core.errors import InvalidInput

MAX_URL = 2048
_SECRET_PARAM = re.compile(r"token|key|secret|passw|signature|^sig$|auth|credential", re.IGNORECASE)
Resolver = Callable[[str, int], list[str]]


def _resolve(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise InvalidInput(f"the webhook's host {host!r} does not resolve: {exc}", field="url") from None
    return sorted({str(info[4][0]) for info in infos})


def check_team_webhook(url: str, allowed_hosts: Collection[str] = (), resolve: Resolver = _resolve) -> str:
    """``url`` if a team may send its alerts there (see the module's rules), else InvalidInput."""
    if not url or len(url) > MAX_URL or any(c.isspace() or ord(c) < 32 for c in url):
        raise InvalidInput(f"the webhook URL must be 1-{MAX_URL} characters without spaces", field="url")
    try:
        parts = urlsplit(url)
        port = parts.port or 443
    except ValueError as exc:
        raise InvalidInput(f"the webhook URL is not a URL: {exc}", field="url") from None
    if parts.scheme != "https":
        raise InvalidInput("the webhook URL must be https:// (alerts are sent over TLS only)", field="url")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise InvalidInput(
            "the webhook URL must not carry credentials (user:password@); authenticate the receiver by its certificate",
            field="url",
        )
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        raise InvalidInput("the webhook URL names no host", field="url")
    if parts.fragment:
        raise InvalidInput("the webhook URL must not have a #fragment", field="url")
    secret = [name for name, _ in parse_qsl(parts.query, keep_blank_values=True) if _SECRET_PARAM.search(name)]
    if secret:
        raise InvalidInput(
            f"the webhook URL must not carry credentials: query parameter {secret[0]!r} looks like one "
            "(the URL is shown to the team and kept in the audit log)",
            field="url",
        )
    if host in {h.lower() for h in allowed_hosts}:
        return url
    for address in _addresses(host, port, resolve):
        if not ipaddress.ip_address(address.split("%", 1)[0]).is_global:
            raise InvalidInput(
                f"the webhook's host {host} resolves to {address}, which is not a public address: the "
                "platform does not send a team's alerts into its own network (an operator may allow the host "
                "with alert_team_webhook_allowed_hosts)",
                field="url",
            )
    return url


def _addresses(host: str, port: int, resolve: Resolver) -> list[str]:
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    found = resolve(host, port)
    if not found:
        raise InvalidInput(f"the webhook's host {host!r} resolves to no address", field="url")
    return found
