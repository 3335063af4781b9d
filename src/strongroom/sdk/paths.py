"""Building API paths from user-supplied names."""

from __future__ import annotations

from urllib.parse import quote


def q(segment: str) -> str:
    """Quote one path segment completely, so a name can never change the path's shape."""
    return quote(str(segment), safe="")
