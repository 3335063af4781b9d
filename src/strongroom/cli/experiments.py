"""`strongroom experiments`: experiments, trials, components and the analytics table."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Annotated

import typer

from strongroom.cli.common import JsonOpt, session
from strongroom.cli.output import print_json, say, show
from strongroom.core.errors import StrongroomError
from strongroom.sdk.tracking import ExperimentsClient
from strongroom.sdk.tracking_journal import JOURNAL_ENV, replay_journals

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


@experiments_app.command("replay-journal")
def experiments_replay_journal(
    journal: Annotated[
        Path | None,
        typer.Option("--journal", help=f"Journal directory (default ${JOURNAL_ENV} or ~/.strongroom/journal)."),
    ] = None,
    team: TeamOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Send what journaled Trackers that died (kill -9, a crash) logged but the platform had not
    acknowledged: the journals of this platform, team and user whose writer is gone."""
    opened = session()
    client = ExperimentsClient(opened, team)
    summary = replay_journals(opened, client.team, str(opened.whoami().user), journal)
    failed = [f for f in summary.files if f.error]
    if as_json:
        print_json(dataclasses.asdict(summary))
    else:
        for done in summary.files:
            line = f"{done.path}: "
            line += f"stopped: {done.error}" if done.error else "replayed"
            line += f"; {done.batches} batches, {done.resent_points} points of the batch in flight sent again, "
            line += f"{done.writes} writes ({done.points} points) sent"
            say(line)
            for refused in done.refused:
                say(("refused:", "red"), f" {refused}")
        say(
            f"{len(summary.files) - len(failed)} journals replayed ({summary.points} points sent), "
            f"{len(failed)} kept, {summary.locked} still held by a running writer, "
            f"{summary.other} of another platform, team or user left alone ({summary.folder})"
        )
    if failed and as_json:
        raise typer.Exit(1)  # the summary says why; a second JSON document would break a script's parse
    if failed:
        raise StrongroomError(f"{len(failed)} journals could not be replayed: {failed[0].error}")
