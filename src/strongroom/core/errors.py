"""Errors every layer speaks; the API renders them as RFC 9457 problem+json.

Each error has a stable ``type`` slug (the URI is ``https://strongroom.dev/problems/<slug>``),
an HTTP status, a human ``detail`` that says what was wrong and how to fix it, and, when one
input is to blame, the ``field`` that names it.
"""

from __future__ import annotations

from typing import Any, ClassVar

PROBLEM_BASE = "https://strongroom.dev/problems/"


class StrongroomError(Exception):
    """Base class: a problem a caller can act on."""

    slug: ClassVar[str] = "internal-error"
    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal error"

    def __init__(self, detail: str, *, field: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field
        self.extra = extra

    @property
    def type_uri(self) -> str:
        return PROBLEM_BASE + self.slug

    def to_problem(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": self.type_uri,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if self.field:
            body["field"] = self.field
        if instance:
            body["instance"] = instance
        body.update(self.extra)
        return body


class InvalidInput(StrongroomError):
    slug = "invalid-input"
    status = 422
    title = "Invalid input"


class Unauthenticated(StrongroomError):
    slug = "unauthenticated"
    status = 401
    title = "Authentication required"


class Forbidden(StrongroomError):
    slug = "forbidden"
    status = 403
    title = "Forbidden"


class NotFound(StrongroomError):
    slug = "not-found"
    status = 404
    title = "Not found"


class MethodNotAllowed(StrongroomError):
    slug = "method-not-allowed"
    status = 405
    title = "Method not allowed"


class Timeout(StrongroomError):
    slug = "timeout"
    status = 504
    title = "Timeout"


class Conflict(StrongroomError):
    slug = "conflict"
    status = 409
    title = "Conflict"


class PayloadTooLarge(StrongroomError):
    slug = "payload-too-large"
    status = 413
    title = "Payload too large"


class UnsupportedMediaType(StrongroomError):
    slug = "unsupported-media-type"
    status = 415
    title = "Unsupported media type"


class PreconditionFailed(StrongroomError):
    slug = "precondition-failed"
    status = 412
    title = "Precondition failed"


class IntegrityError(StrongroomError):
    """Stored data failed an integrity check (tampering, corruption, wrong key)."""

    slug = "integrity-error"
    status = 500
    title = "Integrity check failed"


class RequestTimeout(StrongroomError):
    """The client did not send its request (its body) in time."""

    slug = "request-timeout"
    status = 408
    title = "Request timeout"


class Unavailable(StrongroomError):
    slug = "unavailable"
    status = 503
    title = "Service unavailable"


class ConfigurationError(StrongroomError):
    slug = "configuration-error"
    status = 500
    title = "Configuration error"


ERRORS_BY_SLUG: dict[str, type[StrongroomError]] = {
    cls.slug: cls
    for cls in (
        StrongroomError,
        InvalidInput,
        UnsupportedMediaType,
        Unauthenticated,
        Forbidden,
        NotFound,
        Conflict,
        PayloadTooLarge,
        RequestTimeout,
        PreconditionFailed,
        IntegrityError,
        Unavailable,
        ConfigurationError,
    )
}


def error_from_problem(problem: dict[str, Any]) -> StrongroomError:
    """Rebuild the matching error from a problem+json body (used by the SDK)."""
    slug = str(problem.get("type", "")).removeprefix(PROBLEM_BASE)
    cls = ERRORS_BY_SLUG.get(slug, StrongroomError)
    known = {"type", "title", "status", "detail", "field", "instance"}
    extra = {k: v for k, v in problem.items() if k not in known}
    return cls(str(problem.get("detail", "")), field=problem.get("field"), **extra)
