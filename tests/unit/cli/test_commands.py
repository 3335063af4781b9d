"""The shape of the `strongroom` command: help on every leaf, --version, one way to print."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer
from typer.testing import CliRunner

import strongroom
from strongroom.cli.main import app

CLI_DIR = Path(strongroom.__file__).parent / "cli"


def leaves(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, Any]]:
    if hasattr(command, "commands"):
        for name, sub in command.commands.items():
            yield from leaves(sub, (*path, name))
    else:
        yield " ".join(path), command


def test_every_leaf_command_has_help_text() -> None:
    found = dict(leaves(typer.main.get_command(app)))
    assert len(found) > 80  # the walk reached every group
    missing = sorted(name for name, command in found.items() if not (command.help or "").strip())
    assert missing == [], f"commands without help text: {missing}"


def test_version() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"strongroom {strongroom.__version__}"


def test_commands_print_only_through_the_output_module() -> None:
    """A direct ``console.print(f"...{name}")`` would read a user's name as Rich markup."""
    offenders = []
    for path in sorted(CLI_DIR.glob("*.py")):
        if path.name == "output.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("print", "log", "rule")
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id.endswith("console")
            ):
                offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []


def test_docs_cli_md_names_every_command() -> None:
    """docs/cli.md is the reference: each command appears in a row of its group's table."""
    reference = (Path(strongroom.__file__).parents[2] / "docs" / "cli.md").read_text()
    missing = []
    for name, _ in leaves(typer.main.get_command(app)):
        *group, leaf = name.split(" ")
        prefix = " ".join(["strongroom", *group])
        rows = [line for line in reference.splitlines() if f"`{prefix} " in line]
        spans = [span for row in rows for span in row.split("`")[1::2]]
        if not any(span.startswith(f"{prefix} {leaf}") or (group and span.split(" ")[0] == leaf) for span in spans):
            missing.append(name)
    assert missing == [], f"docs/cli.md does not mention: {missing}"


def test_up_on_a_mistyped_home_leaves_nothing_that_init_would_refuse(tmp_path: Path) -> None:
    home = tmp_path / "srv" / "strongroom"
    cli = CliRunner()

    refused = cli.invoke(app, ["up", "--home", str(home)])
    assert refused.exit_code == 1 and "is not a Strongroom home" in refused.output
    assert not home.exists()  # `up` used to create home/logs/ first
    made = cli.invoke(app, ["init", "--home", str(home), "--port", "0", "--json"])
    assert made.exit_code == 0, made.output
