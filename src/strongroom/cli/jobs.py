"""`strongroom jobs` and `strongroom runtimes`."""

from __future__ import annotations

from typing import Annotated

import typer

from strongroom.cli.common import JsonOpt, session
from strongroom.cli.output import say, show, visible
from strongroom.sdk.session import Session
from strongroom.sdk.tracking import resolve_team

jobs_app = typer.Typer(no_args_is_help=True, help="Processing, training and transform jobs.")
runtimes_app = typer.Typer(no_args_is_help=True, help="Approved Python environments for jobs.")
TeamOpt = Annotated[
    str | None, typer.Option("--team", help="The job's team (default: $STRONGROOM_TEAM or your only team).")
]


def _team(s: Session, team: str | None) -> str:
    return team or resolve_team(s)


@jobs_app.command("list")
def jobs_list(team: TeamOpt = None, status: str | None = None, limit: int = 50, as_json: JsonOpt = False) -> None:
    """List a team's jobs, newest first."""
    s = session()
    jobs = s.jobs.list(_team(s, team), status, limit)
    show(jobs, as_json, ["name", "kind", "status", "secondary_status", "created_by", "created_at", "failure_reason"])


@jobs_app.command("describe")
def jobs_describe(name: str, team: TeamOpt = None, as_json: JsonOpt = False) -> None:
    """Show a job: spec summary, status, outputs and its status history."""
    s = session()
    job = s.jobs.describe(_team(s, team), name)
    if as_json:
        show(job, True)
        return
    summary = job.model_dump(mode="json", exclude={"spec", "status_transitions", "inputs_resolved", "timeline"})
    show(summary, False)
    show(job.status_transitions, False, ["status", "start", "end", "message"], title="status")
    show(job.timeline, False, ["phase", "seconds", "start", "end"], title="timeline")


@jobs_app.command("logs")
def jobs_logs(
    name: str,
    team: TeamOpt = None,
    follow: Annotated[bool, typer.Option("-f", "--follow", help="Keep printing until the job ends.")] = False,
) -> None:
    """Print a job's log lines (with -f, until it ends)."""
    s = session()
    team = _team(s, team)
    lines = s.jobs.follow(team, name) if follow else iter(s.jobs.logs(team, name, limit=10_000))
    for line in lines:
        print(visible(line.text), flush=True)


@jobs_app.command("metrics")
def jobs_metrics(name: str, team: TeamOpt = None, as_json: JsonOpt = False) -> None:
    """Print the metrics a job reported (from its metric definitions)."""
    s = session()
    show(s.jobs.metrics(_team(s, team), name), as_json, ["name", "step", "value", "time"])


@jobs_app.command("stop")
def jobs_stop(name: str, team: TeamOpt = None, reason: str = "") -> None:
    """Stop a running job."""
    s = session()
    job = s.jobs.stop(_team(s, team), name, reason)
    say(f"{job.name}: {job.status}")


@jobs_app.command("interrupt")
def jobs_interrupt(name: str, team: TeamOpt = None, notice: str = "") -> None:
    """Simulate a spot interruption: the job checkpoints, is requeued, and resumes."""
    s = session()
    job = s.jobs.interrupt(_team(s, team), name, notice)
    say(f"{job.name}: interruption requested")


@runtimes_app.command("list")
def runtimes_list(as_json: JsonOpt = False) -> None:
    """List the approved Python environments jobs can run in."""
    body = session().request("GET", "/api/v1/runtimes").json()["items"]
    show(body, as_json, ["name", "python", "description"])


@runtimes_app.command("register")
def runtimes_register(name: str, python: str, description: str = "", as_json: JsonOpt = False) -> None:
    """Approve another Python environment (PlatformAdmin)."""
    body = (
        session()
        .request("POST", "/api/v1/runtimes", json_body={"name": name, "python": python, "description": description})
        .json()
    )
    show(body, as_json)


def explain(
    model: Annotated[str, typer.Argument(help="sr:// URI of a training job's model.tar.gz")],
    dataset: Annotated[str, typer.Argument(help="sr:// URI of one CSV (with a header or not) or Parquet file")],
    output: Annotated[str, typer.Option(help="sr:// prefix for analysis.json and report.html")],
    volume_kms_key: Annotated[str, typer.Option(help="the team key for the job's volume")],
    label: Annotated[str, typer.Option(help="label column name in the report")] = "label",
    instance_count: Annotated[int, typer.Option(help="Dask workers (rows are split across them)")] = 1,
    feature_names: Annotated[
        str | None,
        typer.Option(help="comma-separated feature names, in order, for a model trained on headerless data"),
    ] = None,
    team: TeamOpt = None,
) -> None:
    """Explain a model over a dataset (exact TreeSHAP) as a sandboxed job; print the top features."""
    from strongroom.sdk.jobs import ExplainabilityJob

    s = session()
    team = _team(s, team)
    runner = ExplainabilityJob(session=s, team=team, volume_kms_key=volume_kms_key, instance_count=instance_count)
    names = [n.strip() for n in feature_names.split(",")] if feature_names else None
    job = runner.run(model, dataset, output, label=label, feature_names=names, logs=False).job()
    say((job.name, "green"), f" {job.status}")
    for produced in job.outputs_produced:
        say(f"  {produced.uri}")
    for line in s.jobs.logs(team, job.name):
        if line.text.startswith("top feature"):
            say(f"  {line.text}")


def reproduce(
    job: Annotated[str, typer.Argument(help="the completed job to run again")],
    team: TeamOpt = None,
    allow_runtime_drift: Annotated[bool, typer.Option(help="run even if the runtime's versions changed")] = False,
    use_latest_inputs: Annotated[bool, typer.Option(help="run on today's data if a recorded version is gone")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Re-run a job from its lineage and prove the outputs identical (exit 1 on any difference)."""
    s = session()
    report = s.jobs.reproduce(
        _team(s, team), job, allow_runtime_drift=allow_runtime_drift, use_latest_inputs=use_latest_inputs
    )
    if as_json:
        show(report, True)
    else:
        for note in report.notes:
            say(("note:", "yellow"), f" {note}")
        for output in report.outputs:
            mark = ("identical", "green") if output.identical else ("DIFFERENT", "red")
            say(mark, f"  {output.name}  {output.original_sha256[:16]}  {output.reproduced_sha256[:16]}")
        verdict = (
            [("identical", "green")] if report.identical else [("different", "red"), f": {report.first_difference}"]
        )
        say(f"{report.reproduction} reproduces {report.original}: ", *verdict)
    if not report.identical:
        raise typer.Exit(1)
