"""Printing results: Rich tables for people, ``--json`` for scripts."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

console = Console()
err_console = Console(stderr=True)


def plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def print_json(value: Any) -> None:
    print(json.dumps(plain(value), indent=2, sort_keys=True, default=str))


def table(rows: Iterable[Any], columns: Sequence[str], title: str | None = None) -> None:
    t = Table(title=title, header_style="bold")
    for column in columns:
        t.add_column(column)
    for row in rows:
        data = plain(row)
        t.add_row(*("" if data.get(c) is None else str(data.get(c)) for c in columns))
    console.print(t)


def show(value: Any, as_json: bool, columns: Sequence[str] | None = None, title: str | None = None) -> None:
    """Print ``value`` as JSON, as a table (lists), or as key/value lines (one object)."""
    if as_json:
        print_json(value)
    elif isinstance(value, list | tuple):
        table(value, columns or (list(plain(value[0]).keys()) if value else []), title)
    else:
        data = plain(value)
        width = max((len(k) for k in data), default=0)
        for key, item in data.items():
            console.print(f"[bold]{key.ljust(width)}[/bold]  {item}")
