"""Captured requests back into CSV rows: the endpoint's JSON-lines capture records of one window.

Each capture record (``{"captureData": {"endpointInput": {"data", "encoding", ...}, ...},
"eventMetadata": {"inferenceTime": ...}}``) holds one request body: one or many headerless CSV
rows, or JSON (``{"instances": [[...], ...]}``, a list of rows, or one row). The rows of the
records whose ``inferenceTime`` falls in ``[start, end)`` are written out as headerless CSV, in the
order of the files and of the records within them; records of other encodings are counted, not read.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any


@dataclass
class WindowRows:
    """What a window's capture held: records read, records outside the window, records skipped."""

    records: int = 0
    rows: int = 0
    outside: int = 0
    skipped: dict[str, int] = field(default_factory=dict)


def parse_time(text: str) -> dt.datetime:
    """An ``inferenceTime`` (``2026-12-06T10:59:30.123Z``) as a UTC datetime."""
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(dt.UTC)


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, float) and value.is_integer():
        return repr(value)
    text = str(value)
    return f'"{text.replace(chr(34), chr(34) * 2)}"' if any(c in text for c in ',"\n') else text


def _json_rows(data: str) -> list[str]:
    body = json.loads(data)
    if isinstance(body, dict):
        body = body.get("instances", body.get("features", []))
    if body and not isinstance(body[0], list | dict):
        body = [body]
    rows = []
    for row in body:
        values = row.get("features", []) if isinstance(row, dict) else row
        rows.append(",".join(_csv_value(v) for v in values))
    return rows


def request_rows(record: dict[str, Any]) -> list[str] | None:
    """The CSV rows of one capture record's request (None: not a readable encoding)."""
    part = record.get("captureData", {}).get("endpointInput")
    if not part:
        return None
    encoding, data = part.get("encoding"), part.get("data", "")
    if encoding == "BASE64":
        data, encoding = base64.b64decode(data).decode("utf-8", "replace"), "CSV"
        if part.get("observedContentType", "").split(";")[0].strip() == "application/json":
            encoding = "JSON"
    if encoding == "CSV":
        return [line for line in data.replace("\r\n", "\n").split("\n") if line.strip()]
    if encoding == "JSON":
        try:
            return _json_rows(data)
        except (ValueError, TypeError, AttributeError):
            return None
    return None


def window_rows(files: Iterable[Path], start: dt.datetime, end: dt.datetime, out: IO[bytes]) -> WindowRows:
    """Write the request rows of the records of ``files`` captured in ``[start, end)`` to ``out``."""
    seen = WindowRows()
    for record in _records(files):
        try:
            when = parse_time(record["eventMetadata"]["inferenceTime"])
        except (KeyError, TypeError, ValueError):
            seen.skipped["no inferenceTime"] = seen.skipped.get("no inferenceTime", 0) + 1
            continue
        if not start <= when < end:
            seen.outside += 1
            continue
        rows = request_rows(record)
        if rows is None:
            kind = str(record.get("captureData", {}).get("endpointInput", {}).get("encoding", "no input"))
            seen.skipped[kind] = seen.skipped.get(kind, 0) + 1
            continue
        seen.records += 1
        seen.rows += len(rows)
        if rows:
            out.write(("\n".join(rows) + "\n").encode())
    return seen


def _records(files: Iterable[Path]) -> Iterator[dict[str, Any]]:
    for path in files:
        with path.open("rb") as handle:
            for line in handle:
                if line.strip():
                    try:
                        yield json.loads(line)
                    except ValueError:
                        continue
