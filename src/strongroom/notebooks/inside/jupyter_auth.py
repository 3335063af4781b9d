"""Jupyter's identity inside a notebook sandbox: the platform proxy is the only authentication.

The proxy authenticates the user (platform token or notebook session cookie) and checks the
``OpenNotebook`` policy, then forwards the request with ``X-Strongroom-Proxy-Auth`` set to a
random secret made for this launch (Jupyter reads it from ``JUPYTER_TOKEN_FILE``; only the
platform knows it) and ``X-Strongroom-User``. Jupyter's socket is reachable only by the platform
anyway; the secret makes that a second, independent lock.

Requests the proxy authenticated with a bearer token (scripts, notebook clients) are treated as
token-authenticated, as Jupyter itself does for its own tokens: browsers never send bearer
headers by themselves, so they need no XSRF token. Browser requests (cookie sessions) are not,
so Jupyter's ``_xsrf`` check and origin checks stay on for them.
"""

from __future__ import annotations

import hmac
from typing import Any

from jupyter_server.auth.identity import IdentityProvider, User

from strongroom.notebooks.inside.headers import PROXY_AUTH, PROXY_KIND, PROXY_USER


class ProxyIdentityProvider(IdentityProvider):
    """Trusts the platform proxy's headers, and nothing else (no login page, no Jupyter token in URLs)."""

    def get_user(self, handler: Any) -> User | None:
        secret = handler.request.headers.get(PROXY_AUTH, "")
        if not secret or not self.token or not hmac.compare_digest(secret.encode(), str(self.token).encode()):
            return None
        name = handler.request.headers.get(PROXY_USER, "") or "unknown"
        if handler.request.headers.get(PROXY_KIND, "") == "bearer":
            handler._token_authenticated = True
        return User(username=name, name=name, display_name=name)

    @property
    def login_available(self) -> bool:
        return False

    @property
    def logout_available(self) -> bool:
        return False
