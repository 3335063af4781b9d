"""Strongroom: a self-hosted, security-first ML workbench."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Session", "__version__"]

if TYPE_CHECKING:
    from strongroom.sdk.session import Session


def __getattr__(name: str) -> Any:
    # Lazy so that `import strongroom` inside a sandbox stays cheap.
    if name == "Session":
        from strongroom.sdk.session import Session

        return Session
    raise AttributeError(name)
