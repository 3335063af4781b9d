"""Headers the platform proxy sets for Jupyter (shared by the proxy and the in-sandbox identity provider)."""

PROXY_AUTH = "X-Strongroom-Proxy-Auth"
PROXY_USER = "X-Strongroom-User"
PROXY_KIND = "X-Strongroom-Auth-Kind"
