"""Rendering errors as RFC 9457 ``application/problem+json``: one renderer, ``problem``, for every
route (API, streaming, middleware), from the ``StrongroomError`` that says what went wrong."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection

from strongroom.core.errors import (
    PROBLEM_BASE,
    InvalidInput,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    StrongroomError,
)

log = logging.getLogger(__name__)
PROBLEM_JSON = "application/problem+json"
BEARER_REALM = 'Bearer realm="strongroom"'


def problem_body(exc: StrongroomError, instance: str, request_id: str) -> dict[str, Any]:
    """The problem document of ``exc`` for the request at ``instance``."""
    body = exc.to_problem(instance=instance)
    body["request_id"] = request_id
    return body


def problem(connection: HTTPConnection, exc: StrongroomError, *, realm: str = BEARER_REALM) -> JSONResponse:
    """The problem+json response for ``exc`` (a 401 names the authentication ``realm``)."""
    request_id = str(connection.scope.get("state", {}).get("request_id", ""))
    headers = {"WWW-Authenticate": realm} if exc.status == 401 else None
    body = problem_body(exc, connection.url.path, request_id)
    return JSONResponse(body, status_code=exc.status, media_type=PROBLEM_JSON, headers=headers)


def strongroom_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StrongroomError)
    return problem(request, exc)


def _field_of(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or (str(loc[0]) if loc else "")


def invalid_input(errors: Sequence[Any], prefix: tuple[str, ...] = ()) -> InvalidInput:
    """The ``InvalidInput`` for pydantic's ``errors``, naming each field (``prefix``: where the
    validated value sat, e.g. ``("body",)``, as FastAPI's locations start)."""
    named = [(_field_of((*prefix, *tuple(e.get("loc", ())))), e.get("msg")) for e in errors[:50]]
    messages = [f"{field or 'request'}: {message}" for field, message in named[:10]]
    return InvalidInput(
        "the request is not valid: " + "; ".join(messages or ["request: invalid request"]),
        field=named[0][0] if named else "",
        errors=[{"field": field, "message": message} for field, message in named],
    )


def validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return problem(request, invalid_input(exc.errors()))


def http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else "request failed"
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"no API route {request.method} {request.url.path}; see /api/openapi.json"
    kinds: dict[int, type[StrongroomError]] = {404: NotFound, 405: MethodNotAllowed, 413: PayloadTooLarge}
    kind = kinds.get(exc.status_code)
    if kind is None:  # no error of ours has this status: the plain document
        body = {
            "type": PROBLEM_BASE + "http-error",
            "title": "Http error",
            "status": exc.status_code,
            "detail": detail,
            "instance": request.url.path,
            "request_id": str(getattr(request.state, "request_id", "")),
        }
        return JSONResponse(body, status_code=exc.status_code, media_type=PROBLEM_JSON, headers=exc.headers)
    response = problem(request, kind(detail))
    response.headers.update(dict(exc.headers or {}))
    return response


def internal_error(request: Request, exc: Exception) -> JSONResponse:
    request_id = str(getattr(request.state, "request_id", ""))
    log.error("unhandled error in request %s", request_id, exc_info=exc)
    return problem(
        request,
        StrongroomError(
            f"the platform failed to handle this request; quote request id {request_id} to your platform administrator"
        ),
    )
