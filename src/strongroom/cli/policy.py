"""`strongroom policy`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from strongroom.cli.common import JsonOpt, session
from strongroom.cli.output import print_json, say, show

policy_app = typer.Typer(no_args_is_help=True, help="Cedar policies: simulate, attach, list.")


# -- policy -----------------------------------------------------------------------------------


def _parse_tags(tags: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in tags or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"{item!r}: use key=value", param_hint="--tag")
        out[key] = value
    return out


@policy_app.command("simulate")
def policy_simulate(
    principal: Annotated[str, typer.Option(help="User name.")],
    action: Annotated[str, typer.Option(help="Action, e.g. CreateTrainingJob.")],
    resource: Annotated[str, typer.Option(help="srn:strongroom:<team>:<type>/<name>")],
    context: Annotated[str, typer.Option(help="Request context as JSON.")] = "{}",
    acting_as: Annotated[str | None, typer.Option(help="Role@team to act as.")] = None,
    owner: Annotated[str, typer.Option(help="Resource owner.")] = "",
    tag: Annotated[list[str] | None, typer.Option(help="Resource tag key=value (repeatable).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Print the decision and the policies that determined it."""
    try:
        parsed = json.loads(context)
    except ValueError as exc:
        raise typer.BadParameter(f"not JSON: {exc}", param_hint="--context") from exc
    result = session().policies.simulate(
        principal, action, resource, parsed, acting_as=acting_as, owner=owner, tags=_parse_tags(tag)
    )
    if as_json:
        print_json(result)
        return
    colour = "green" if result.decision == "Allow" else "red"
    say((result.decision, f"bold {colour}"), f"  {result.explanation}")
    say(f"determining policies: {', '.join(result.determining_policies) or '(none: default deny)'}")


@policy_app.command("attach")
def policy_attach(team: str, name: str, file: Path, description: str = "", as_json: JsonOpt = False) -> None:
    """Attach a Cedar policy file to a team (validated against the schema)."""
    show(session().policies.attach(team, name, file.read_text(), description), as_json)


@policy_app.command("list")
def policy_list(team: str, as_json: JsonOpt = False) -> None:
    """List the policies attached to a team."""
    show(session().policies.list(team), as_json, ["team", "name", "description", "created_by", "created_at"])


@policy_app.command("detach")
def policy_detach(team: str, name: str) -> None:
    """Detach a team policy."""
    session().policies.detach(team, name)
    say(f"detached {name} from {team}")


@policy_app.command("actions")
def policy_actions(as_json: JsonOpt = False) -> None:
    """The actions policies can name."""
    actions = session().status()["actions"]
    if as_json:
        print_json(actions)
    else:
        for action in actions:
            say(action)
