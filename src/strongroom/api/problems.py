"""Rendering errors as RFC 9457 ``application/problem+json``."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from strongroom.core.errors import PROBLEM_BASE, StrongroomError

log = logging.getLogger(__name__)
PROBLEM_JSON = "application/problem+json"


def problem_response(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _request_id(request: Request) -> str:
    return str(getattr(request.state, "request_id", ""))


def strongroom_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StrongroomError)
    body = exc.to_problem(instance=request.url.path)
    body["request_id"] = _request_id(request)
    headers = {"WWW-Authenticate": 'Bearer realm="strongroom"'} if exc.status == 401 else None
    return problem_response(exc.status, body, headers)


def _field_of(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or (str(loc[0]) if loc else "")


def validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
    field = _field_of(tuple(first.get("loc", ())))
    messages = [f"{_field_of(tuple(e.get('loc', ()))) or 'request'}: {e.get('msg')}" for e in errors[:10]]
    body = {
        "type": PROBLEM_BASE + "invalid-input",
        "title": "Invalid input",
        "status": 422,
        "detail": "the request is not valid: " + "; ".join(messages),
        "field": field,
        "errors": [{"field": _field_of(tuple(e.get("loc", ()))), "message": e.get("msg")} for e in errors[:50]],
        "instance": request.url.path,
        "request_id": _request_id(request),
    }
    return problem_response(422, body)


def http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    slug = {404: "not-found", 405: "method-not-allowed", 413: "payload-too-large"}.get(exc.status_code, "http-error")
    detail = exc.detail if isinstance(exc.detail, str) else "request failed"
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"no API route {request.method} {request.url.path}; see /api/openapi.json"
    body = {
        "type": PROBLEM_BASE + slug,
        "title": slug.replace("-", " ").capitalize(),
        "status": exc.status_code,
        "detail": detail,
        "instance": request.url.path,
        "request_id": _request_id(request),
    }
    return problem_response(exc.status_code, body, dict(exc.headers or {}) or None)


def internal_error(request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error in request %s", _request_id(request), exc_info=exc)
    body = {
        "type": PROBLEM_BASE + "internal-error",
        "title": "Internal error",
        "status": 500,
        "detail": f"the platform failed to handle this request; quote request id {_request_id(request)} "
        "to your platform administrator",
        "instance": request.url.path,
        "request_id": _request_id(request),
    }
    return problem_response(500, body)
