"""`strongroom repos`: team git repositories and commit lookup."""

from __future__ import annotations

from typing import Annotated

import typer

from strongroom.cli.common import JsonOpt, session
from strongroom.cli.output import show

repos_app = typer.Typer(no_args_is_help=True, help="Team git repositories and commits.")


@repos_app.command("create")
def repos_create(team: str, name: str, description: str = "", as_json: JsonOpt = False) -> None:
    """Create a team git repository."""
    show(session().repositories.create(team, name, description), as_json)


@repos_app.command("list")
def repos_list(team: str, as_json: JsonOpt = False) -> None:
    """List a team's git repositories and their clone URLs."""
    show(session().repositories.list(team), as_json, ["name", "clone_url", "created_by", "created_at"])


@repos_app.command("describe")
def repos_describe(team: str, name: str, as_json: JsonOpt = False) -> None:
    """Show a repository."""
    show(session().repositories.describe(team, name), as_json)


@repos_app.command("commits")
def repos_commits(
    team: str,
    name: str,
    ref: Annotated[str, typer.Option(help="Branch, tag or commit.")] = "main",
    limit: int = 20,
    as_json: JsonOpt = False,
) -> None:
    """List the commits reachable from a branch, tag or commit."""
    show(session().repositories.list_commits(team, name, ref, limit), as_json, ["sha", "author", "date", "message"])


@repos_app.command("commit")
def repos_commit(team: str, name: str, sha: str, as_json: JsonOpt = False) -> None:
    """Show one commit."""
    show(session().repositories.get_commit(team, name, sha), as_json)
