"""The Python client library used by notebooks, the CLI and users."""

from strongroom.sdk.session import PlatformUnreachable, Session

__all__ = ["PlatformUnreachable", "Session"]
