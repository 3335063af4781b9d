"""Printing results: Rich tables for people, ``--json`` for scripts.

Every string a command prints that a user could have chosen (an object key, a name, an error
message) is *data*, never markup or terminal control: it goes through :func:`visible`, and is
wrapped in a :class:`rich.text.Text`, which Rich never parses as markup. Commands print only
through :func:`say`, :func:`show`, :func:`table` and :func:`print_json` (a unit test checks that
no command module calls ``console.print`` itself), so a key such as ``[link=...]x[/link]`` or one
holding ``ESC [2J`` prints literally.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from rich.console import Console, RenderableType
from rich.markup import escape
from rich.table import Table
from rich.text import Text

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

Part = Any | tuple[Any, str]
"""A piece of a line: a value (shown as data) or ``(value, style)`` (shown as data, styled)."""


def visible(value: object, *, newlines: bool = False) -> str:
    """``str(value)`` with control characters, escape sequences and invisible formatting shown as
    Python escapes (``ESC`` becomes ``\\x1b``, a right-to-left override ``\\u202e``), so a terminal
    never obeys them. ``newlines`` keeps line breaks (multi-line messages)."""
    text = str(value)
    if text.isprintable():
        return text
    return "".join(
        ch if ch.isprintable() or (newlines and ch == "\n") else ch.encode("unicode_escape").decode("ascii")
        for ch in text
    )


def as_markup(value: object) -> str:
    """``value`` for the few Rich APIs that take only a markup string (progress and status
    descriptions): :func:`visible`, then every ``[`` escaped."""
    return escape(visible(value))


def styled(*parts: Part, newlines: bool = False) -> Text:
    """One line of text from ``parts``: each value made :func:`visible`, never read as markup."""
    line = Text()
    for part in parts:
        if isinstance(part, tuple):
            value, style = part
            line.append(visible(value, newlines=newlines), style=style)
        else:
            line.append(visible(part, newlines=newlines))
    return line


def say(*parts: Part, err: bool = False, style: str | None = None) -> None:
    """Print one line built by :func:`styled` (to stderr with ``err``); long lines wrap, never cut."""
    target = err_console if err else console
    target.print(styled(*parts, newlines=True), style=style, soft_wrap=True)


def render(renderable: RenderableType) -> None:
    """Print a Rich renderable built from :func:`styled` text (a tree, a table)."""
    console.print(renderable)


def plain(value: Any) -> Any:
    """``value`` as JSON-ready data (pydantic models dumped, containers walked)."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def print_json(value: Any) -> None:
    """``value`` as indented JSON on stdout (JSON escapes every control character itself)."""
    print(json.dumps(plain(value), indent=2, sort_keys=True, default=str))


def table(rows: Iterable[Any], columns: Sequence[str], title: str | None = None) -> None:
    """A table; cells fold onto more lines rather than being cut (identifiers stay whole)."""
    t = Table(title=title, header_style="bold")
    for column in columns:
        t.add_column(column, overflow="fold")
    for row in rows:
        data = plain(row)
        t.add_row(*(Text("" if data.get(c) is None else visible(data.get(c))) for c in columns))
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
            say((key.ljust(width), "bold"), "  ", item)
