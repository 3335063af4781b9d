"""What the CLI prints: user-chosen strings shown as data, never as markup or terminal control."""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest
from rich.console import Console

from strongroom.cli import output
from strongroom.cli.output import as_markup, say, show, table, visible

HOSTILE_MARKUP = "[bold red]FAKE[/bold red][link=http:evil.example]click[/link]"
CLEAR_SCREEN = "report\x1b[2J\x1b]8;;http://evil.example\x1b\\x"


def printed(monkeypatch: pytest.MonkeyPatch, action: Callable[[], None], width: int = 100) -> str:
    """What ``action`` printed, as a colour terminal ``width`` columns wide would receive it."""
    buffer = io.StringIO()
    terminal = Console(file=buffer, force_terminal=True, color_system="standard", width=width, highlight=False)
    monkeypatch.setattr(output, "console", terminal)
    action()
    return buffer.getvalue()


def test_visible_shows_control_characters_and_keeps_the_rest() -> None:
    assert visible("sr://risk-data/raw/data.csv") == "sr://risk-data/raw/data.csv"
    assert visible("a\x1b[2Jb") == "a\\x1b[2Jb"
    assert visible("evil\u202etxt.exe") == "evil\\u202etxt.exe"
    assert visible("two\nlines") == "two\\nlines"
    assert visible("two\nlines", newlines=True) == "two\nlines"
    assert visible("tab\there\r") == "tab\\there\\r"


def test_markup_in_a_key_prints_literally_without_a_link(monkeypatch: pytest.MonkeyPatch) -> None:
    out = printed(monkeypatch, lambda: say("  ", HOSTILE_MARKUP, ("OK", "green")))
    assert HOSTILE_MARKUP in out
    assert "\x1b]8;" not in out  # no OSC 8 hyperlink reached the terminal
    assert "\x1b[32mOK" in out  # our own styling still works


def test_a_stray_closing_tag_does_not_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    out = printed(monkeypatch, lambda: table([{"key": "x[/bold]y"}], ["key"]))
    assert "x[/bold]y" in out


def test_escape_sequences_are_shown_not_obeyed(monkeypatch: pytest.MonkeyPatch) -> None:
    out = printed(monkeypatch, lambda: show({"description": CLEAR_SCREEN}, False))
    assert "\x1b[2J" not in out and "\x1b]8" not in out
    assert "report\\x1b[2J\\x1b]8;;http://evil.example\\x1b\\x" in out


def test_brackets_in_an_error_message_survive(capsys: pytest.CaptureFixture[str]) -> None:
    say(("error:", "red"), " Regex 'validation-auc:([0-9\\.]+)' matched nothing [bold]", err=True)
    assert "validation-auc:([0-9\\.]+)' matched nothing [bold]" in capsys.readouterr().err


def test_tables_never_cut_identifiers_at_80_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    srn = "srn:strongroom:risk-analytics:training-job/credit-default-xgboost-2026-12-06-04-49-07"
    version = "0192f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0"
    rows = [{"srn": srn, "kind": "artifact", "type": "Model", "name": "model", "version_id": version}]
    out = printed(monkeypatch, lambda: table(rows, ["srn", "kind", "type", "name", "version_id"]), width=80)
    assert "…" not in out
    cells: dict[int, str] = {}
    body = out.split("┡", 1)[1].splitlines()[1:]
    for line in body:
        for index, cell in enumerate(line.split("│")[1:-1]):
            cells[index] = cells.get(index, "") + cell.strip()
    assert srn in cells.values() and version in cells.values()


def test_markup_only_apis_get_escaped_text(monkeypatch: pytest.MonkeyPatch) -> None:
    """Progress and status descriptions are markup strings: `as_markup` keeps them literal."""
    buffer = io.StringIO()
    terminal = Console(file=buffer, force_terminal=True, color_system="standard", width=100, highlight=False)
    terminal.print(as_markup(f"up {HOSTILE_MARKUP}\x1b[2J"))
    assert f"up {HOSTILE_MARKUP}\\x1b[2J" in buffer.getvalue()
