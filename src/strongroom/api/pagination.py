"""One page of a listing: ``{"items": [...], "next_page_token": "..."}``."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Generic, TypeVar

from pydantic import BaseModel

from strongroom.core.errors import InvalidInput

T = TypeVar("T")
MAX_LIMIT = 1000


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_page_token: str | None = None


def _decode(token: str | None) -> int:
    if not token:
        return 0
    try:
        offset = int(base64.urlsafe_b64decode(token.encode()).decode())
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput("page_token is not one this API returned", field="page_token") from exc
    if offset < 0:
        raise InvalidInput("page_token is not one this API returned", field="page_token")
    return offset


def paginate(items: Sequence[T], limit: int, page_token: str | None) -> Page[T]:
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}", field="limit")
    start = _decode(page_token)
    end = start + limit
    token = base64.urlsafe_b64encode(str(end).encode()).decode() if end < len(items) else None
    return Page[T](items=list(items[start:end]), next_page_token=token)
