"""`strongroom monitor ...`: baselines, monitoring schedules and their executions."""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated

import typer

from strongroom.cli.common import JsonOpt, session
from strongroom.cli.output import say, show
from strongroom.core.errors import InvalidInput
from strongroom.sdk.jobs import Jobs
from strongroom.sdk.monitor import CronExpressionGenerator
from strongroom.sdk.session import Session
from strongroom.sdk.tracking import resolve_team
from strongroom.storage.keys import parse_uri

app = typer.Typer(no_args_is_help=True, help="Model monitoring: baselines, schedules, executions and violations.")
TeamOpt = Annotated[str | None, typer.Option("--team", help="The team (default: $STRONGROOM_TEAM or your only team).")]
KeyOpt = Annotated[str, typer.Option("--kms-key", help="The team key of the monitoring jobs (alias or id).")]
SCHEDULE_COLUMNS = ["name", "endpoint", "status", "schedule_expression", "next_run", "last_execution_status"]
EXECUTION_COLUMNS = ["id", "status", "window_start", "window_end", "rows", "exit_message"]
TYPES = {"data-quality": "DataQuality", "explainability": "ModelExplainability"}
TypeOpt = Annotated[
    str,
    typer.Option(
        "--type",
        help="data-quality (statistics and constraints) or explainability (feature-attribution drift, nDCG).",
    ),
]


def _type(value: str) -> str:
    if value not in TYPES:
        raise InvalidInput(f"--type is one of {', '.join(TYPES)}, not {value!r}", field="monitoring_type")
    return TYPES[value]


def _team(s: Session, team: str | None) -> str:
    return team or resolve_team(s)


def _columns(value: str) -> list[str]:
    return [c for c in (p.strip() for p in value.split(",")) if c]


def _when(value: str | None, field: str) -> dt.datetime | None:
    if not value:
        return None
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"{value!r} is not an ISO 8601 time (2026-12-06T10:00:00Z)", field=field) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


@app.command("baseline")
def baseline(
    dataset: Annotated[str, typer.Argument(help="The sr:// CSV the model was trained on.")],
    output: Annotated[
        str, typer.Option(help="sr:// prefix for statistics.json and constraints.json (explainability: analysis.json).")
    ],
    exclude: Annotated[str, typer.Option(help="Comma-separated columns to leave out (the label).")] = "",
    kind: TypeOpt = "data-quality",
    model: Annotated[str, typer.Option(help="explainability: the sr:// model.tar.gz the endpoint serves.")] = "",
    no_header: Annotated[bool, typer.Option("--no-header", help="The CSV has no header row.")] = False,
    feature_names: Annotated[str, typer.Option(help="Comma-separated column names of a headerless CSV.")] = "",
    job_name: Annotated[str, typer.Option(help="The baseline job's name.")] = "",
    kms_key: KeyOpt = "default",
    wait: Annotated[bool, typer.Option(help="Wait until the job ends.")] = True,
    team: TeamOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Suggest a baseline in a sandboxed job: statistics and constraints of the training data, or
    (--type explainability) the model's global SHAP values over it."""
    s = session()
    team = _team(s, team)
    spec: dict[str, object] = {
        "job_name": job_name or f"baseline-{dt.datetime.now(dt.UTC).strftime('%Y%m%d-%H%M%S')}",
        "baseline_dataset": dataset,
        "output_uri": output.rstrip("/"),
        "header": not no_header,
        "feature_names": _columns(feature_names),
        "excluded_columns": _columns(exclude),
        "resources": {"volume_kms_key": kms_key},
    }
    if _type(kind) == "ModelExplainability":
        spec.update({"monitoring_type": "ModelExplainability", "model_uri": model})
    job = s.monitoring.suggest_baseline(team, spec)
    if wait:
        job = Jobs(s).wait(team, job.name, logs=False)
    show(job, as_json, ["name", "status", "failure_reason"])


@app.command("create")
def create(
    name: str,
    endpoint: Annotated[str, typer.Option(help="The endpoint whose captured requests are checked.")],
    output: Annotated[str, typer.Option(help="sr:// prefix for the reports.")],
    kind: TypeOpt = "data-quality",
    baseline: Annotated[
        str, typer.Option(help="sr:// prefix holding statistics.json and constraints.json (or analysis.json).")
    ] = "",
    analysis: Annotated[str, typer.Option(help="explainability: sr:// analysis.json (default: in --baseline).")] = "",
    threshold: Annotated[
        float | None, typer.Option(help="explainability: nDCG below this is a violation (default 0.9).")
    ] = None,
    statistics: Annotated[str, typer.Option(help="sr:// statistics.json (default: in --baseline).")] = "",
    constraints: Annotated[str, typer.Option(help="sr:// constraints.json (default: in --baseline).")] = "",
    cron: Annotated[str, typer.Option(help="cron(0 * ? * * *) or five fields; 'hourly' or 'daily'.")] = "",
    every_minutes: Annotated[int | None, typer.Option(help="Near-real-time: a window every N minutes.")] = None,
    every_records: Annotated[int | None, typer.Option(help="Near-real-time: a window every N records.")] = None,
    exclude: Annotated[str, typer.Option(help="Baseline columns the endpoint does not receive.")] = "",
    kms_key: KeyOpt = "default",
    team: TeamOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a monitoring schedule (hourly unless told otherwise)."""
    s = session()
    base = baseline.rstrip("/")
    monitoring_type = _type(kind)
    if monitoring_type == "ModelExplainability" and not (analysis or base):
        raise InvalidInput("give --baseline or --analysis", field="baseline")
    if monitoring_type == "DataQuality" and not (statistics and constraints) and not base:
        raise InvalidInput("give --baseline, or both --statistics and --constraints", field="baseline")
    expression = {"hourly": CronExpressionGenerator.hourly(), "daily": CronExpressionGenerator.daily()}.get(cron, cron)
    if not expression and every_minutes is None and every_records is None:
        expression = CronExpressionGenerator.hourly()
    spec: dict[str, object] = {
        "name": name,
        "endpoint": endpoint,
        "output_uri": output.rstrip("/"),
        "schedule_cron_expression": expression or None,
        "every_minutes": every_minutes,
        "every_records": every_records,
        "resources": {"volume_kms_key": kms_key},
    }
    if monitoring_type == "ModelExplainability":
        spec.update(
            {
                "monitoring_type": monitoring_type,
                "analysis_uri": analysis or f"{base}/analysis.json",
                "attribution_threshold": threshold,
            }
        )
    else:
        spec.update(
            {
                "statistics_uri": statistics or f"{base}/statistics.json",
                "constraints_uri": constraints or f"{base}/constraints.json",
                "excluded_columns": _columns(exclude),
            }
        )
    show(s.monitoring.create_schedule(_team(s, team), spec), as_json, SCHEDULE_COLUMNS)


@app.command("list")
def list_schedules(team: TeamOpt = None, as_json: JsonOpt = False) -> None:
    """List a team's monitoring schedules."""
    s = session()
    show(s.monitoring.list_schedules(_team(s, team)), as_json, SCHEDULE_COLUMNS)


@app.command("describe")
def describe(name: str, team: TeamOpt = None, as_json: JsonOpt = False) -> None:
    """Show a schedule: status, expression, next run, the latest execution's status."""
    s = session()
    show(s.monitoring.describe_schedule(_team(s, team), name), as_json)


@app.command("run")
def run(
    name: str,
    start: Annotated[str | None, typer.Option(help="Window start, ISO 8601 (default: the last window's end).")] = None,
    end: Annotated[str | None, typer.Option(help="Window end, ISO 8601 (default: now).")] = None,
    wait: Annotated[bool, typer.Option(help="Wait until the execution ends.")] = True,
    team: TeamOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run one execution now (it starts once the window's capture is uploaded)."""
    s = session()
    team = _team(s, team)
    execution = s.monitoring.run_now(team, name, _when(start, "start"), _when(end, "end"))
    if wait:
        execution = s.monitoring.wait_execution(team, name, execution.id)
    show(execution, as_json, EXECUTION_COLUMNS)


@app.command("executions")
def executions(
    name: str,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 20,
    team: TeamOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List a schedule's executions, newest first."""
    s = session()
    show(s.monitoring.list_executions(_team(s, team), name, limit), as_json, EXECUTION_COLUMNS)


@app.command("violations")
def violations(
    name: str,
    execution: Annotated[str, typer.Option(help="An execution id (default: the latest that completed).")] = "",
    team: TeamOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Print constraint_violations.json of an execution."""
    s = session()
    team = _team(s, team)
    if execution:
        found = s.monitoring.describe_execution(team, name, execution)
    else:
        done = [
            e for e in s.monitoring.list_executions(team, name) if e.status in ("Completed", "CompletedWithViolations")
        ]
        if not done:
            raise InvalidInput(f"schedule {name} has no completed execution yet", field="execution")
        found = done[0]
    if not found.violations_uri:
        raise InvalidInput(f"execution {found.id} is {found.status}: {found.exit_message}", field="execution")
    bucket, key = parse_uri(found.violations_uri)
    document = json.loads(s.buckets.get_object(bucket, key))
    if as_json:
        print(json.dumps(document, indent=2))
        return
    # an attribution violation names the model output ("label"), not a feature
    rows = [{"feature_name": v.get("feature_name", v.get("label", "")), **v} for v in document["violations"]]
    show(rows, False, ["feature_name", "constraint_check_type", "description"])


@app.command("stop")
def stop(name: str, team: TeamOpt = None) -> None:
    """Stop a schedule (no new execution starts)."""
    s = session()
    s.monitoring.stop_schedule(_team(s, team), name)
    say("stopped monitoring schedule ", (name, "bold"))


@app.command("start")
def start_schedule(name: str, team: TeamOpt = None) -> None:
    """Start a stopped schedule again."""
    s = session()
    s.monitoring.start_schedule(_team(s, team), name)
    say("started monitoring schedule ", (name, "bold"))


@app.command("delete")
def delete(name: str, team: TeamOpt = None) -> None:
    """Delete a schedule and its execution records (reports stay in the bucket)."""
    s = session()
    s.monitoring.delete_schedule(_team(s, team), name)
    say("deleted monitoring schedule ", (name, "bold"))


@app.command("set-webhook")
def set_webhook(
    url: Annotated[str, typer.Argument(help="https:// URL; the team's monitoring alerts are POSTed there (JSON).")],
    team: TeamOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Send the team's monitoring alerts to its own HTTPS webhook too (a DataScienceAdmin command)."""
    s = session()
    show(s.monitoring.set_alert_webhook(_team(s, team), url), as_json, ["team", "url", "updated_by", "updated_at"])


@app.command("webhook")
def webhook(team: TeamOpt = None, as_json: JsonOpt = False) -> None:
    """Show the team's alert webhook."""
    s = session()
    show(s.monitoring.describe_alert_webhook(_team(s, team)), as_json, ["team", "url", "updated_by", "updated_at"])


@app.command("delete-webhook")
def delete_webhook(team: TeamOpt = None) -> None:
    """Stop sending the team's monitoring alerts to its webhook."""
    s = session()
    team = _team(s, team)
    s.monitoring.delete_alert_webhook(team)
    say("deleted the alert webhook of team ", (team, "bold"))
