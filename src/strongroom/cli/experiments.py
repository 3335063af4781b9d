"""`strongroom experiments`: experiments, trials, components and the analytics table."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from strongroom.cli.common import JsonOpt, session
from strongroom.cli.output import print_json, say, show
from strongroom.sdk.tracking import ExperimentsClient

experiments_app = typer.Typer(no_args_is_help=True, help="Experiments, trials and trial components.")
TeamOpt = Annotated[str | None, typer.Option(help="Team (default: $STRONGROOM_TEAM or your only team).")]


def _client(team: str | None) -> ExperimentsClient:
    return ExperimentsClient(session(), team)


@experiments_app.command("list")
def experiments_list(team: TeamOpt = None, as_json: JsonOpt = False) -> None:
    """List a team's experiments."""
    show(_client(team).list_experiments(), as_json, ["name", "display_name", "description", "created_by"])


@experiments_app.command("create")
def experiments_create(name: str, description: str = "", team: TeamOpt = None, as_json: JsonOpt = False) -> None:
    """Create an experiment."""
    show(_client(team).create_experiment(name, description=description), as_json)


@experiments_app.command("trials")
def experiments_trials(experiment: str, team: TeamOpt = None, as_json: JsonOpt = False) -> None:
    """List the trials of an experiment."""
    show(_client(team).list_trials(experiment), as_json, ["name", "experiment_name", "created_by", "created_at"])


@experiments_app.command("components")
def experiments_components(trial: str | None = None, team: TeamOpt = None, as_json: JsonOpt = False) -> None:
    """List trial components (of one trial with --trial)."""
    show(
        _client(team).list_components(trial=trial),
        as_json,
        ["name", "display_name", "status", "source", "start_time", "end_time"],
    )


@experiments_app.command("describe-component")
def experiments_describe_component(name: str, team: TeamOpt = None) -> None:
    """Print a trial component as JSON: parameters, metrics, inputs, outputs."""
    print_json(_client(team).describe_component(name))


@experiments_app.command("analytics")
def experiments_analytics(
    experiment: str | None = None,
    filters: Annotated[str, typer.Option(help='Search expression as JSON: {"Filters": [...]}.')] = "",
    sort_by: str | None = None,
    sort_order: str = "Ascending",
    team: TeamOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The analytics table (one row per component) as a table, or JSON records."""
    try:
        expression = json.loads(filters) if filters else None
    except ValueError as exc:
        raise typer.BadParameter(f"not JSON: {exc}", param_hint="--filters") from exc
    frame = _client(team).search(experiment, expression, sort_by, sort_order)
    if as_json:
        print(frame.to_json(orient="records", date_format="iso"))
        return
    say(frame.to_string(max_cols=12, max_colwidth=40))
