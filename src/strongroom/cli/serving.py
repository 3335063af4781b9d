"""`strongroom models`, `strongroom endpoints` and `strongroom invoke`."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from strongroom.cli.common import JsonOpt, session
from strongroom.cli.output import say, show, visible
from strongroom.sdk.serving import DataCaptureConfig
from strongroom.sdk.session import Session
from strongroom.sdk.tracking import resolve_team

models_app = typer.Typer(no_args_is_help=True, help="Models: a model archive plus the built-in XGBoost runtime.")
endpoints_app = typer.Typer(no_args_is_help=True, help="HTTPS endpoints with data capture.")
TeamOpt = Annotated[str | None, typer.Option("--team", help="The team (default: $STRONGROOM_TEAM or your only team).")]
MODEL_COLUMNS = ["name", "model_data", "source_job", "runtime", "created_by", "created_at"]
ENDPOINT_COLUMNS = ["name", "status", "endpoint_config_name", "url", "failure_reason"]


def _team(s: Session, team: str | None) -> str:
    return team or resolve_team(s)


@models_app.command("create")
def models_create(
    name: Annotated[str, typer.Argument(help="Default with --training-job: <training-job>-model.")] = "",
    model_data: Annotated[str, typer.Option(help="An sr:// model.tar.gz.")] = "",
    training_job: Annotated[str, typer.Option(help="Use this training job's model.tar.gz.")] = "",
    kms_key: Annotated[str, typer.Option(help="The team key (alias or id).")] = "default",
    runtime: Annotated[
        str, typer.Option(help="xgboost (built in) or script (the archive's inference.py).")
    ] = "xgboost",
    team: TeamOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a model (name it as the workshop does: <training-job>-model)."""
    s = session()
    model = s.models.create(
        _team(s, team), name, model_data=model_data, training_job=training_job, kms_key=kms_key, runtime=runtime
    )
    show(model, as_json, MODEL_COLUMNS)


@models_app.command("list")
def models_list(team: TeamOpt = None, as_json: JsonOpt = False) -> None:
    """List a team's models."""
    s = session()
    show(s.models.list(_team(s, team)), as_json, MODEL_COLUMNS)


@models_app.command("describe")
def models_describe(name: str, team: TeamOpt = None, as_json: JsonOpt = False) -> None:
    """Show a model."""
    s = session()
    show(s.models.describe(_team(s, team), name), as_json)


@models_app.command("delete")
def models_delete(name: str, team: TeamOpt = None) -> None:
    """Delete a model (endpoints serving it keep their pinned copy)."""
    s = session()
    s.models.delete(_team(s, team), name)
    say("deleted model ", (name, "bold"))


@endpoints_app.command("create")
def endpoints_create(
    name: str,
    model: Annotated[str, typer.Option(help="The model to serve.")],
    instance_count: Annotated[int, typer.Option(help="Worker processes.")] = 1,
    capture_uri: Annotated[str, typer.Option(help="sr:// destination of data capture (off when empty).")] = "",
    sampling: Annotated[int, typer.Option(help="Percent of requests captured.")] = 100,
    kms_key: Annotated[str, typer.Option(help="The team key (alias or id).")] = "default",
    wait: Annotated[bool, typer.Option(help="Wait until InService.")] = True,
    team: TeamOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create <name>-config (one AllTraffic variant) and the endpoint <name>."""
    s = session()
    team = _team(s, team)
    variant = {"VariantName": "AllTraffic", "ModelName": model, "InitialInstanceCount": instance_count}
    capture = DataCaptureConfig(capture_uri, sampling_percentage=sampling) if capture_uri else None
    s.endpoint_configs.create(team, f"{name}-config", [variant], capture, kms_key=kms_key)
    endpoint = s.endpoints.create(team, name, f"{name}-config")
    if wait:
        endpoint = s.endpoints.wait(team, name)
    show(endpoint, as_json, ENDPOINT_COLUMNS)


@endpoints_app.command("list")
def endpoints_list(team: TeamOpt = None, as_json: JsonOpt = False) -> None:
    """List a team's endpoints."""
    s = session()
    show(s.endpoints.list(_team(s, team)), as_json, ENDPOINT_COLUMNS)


@endpoints_app.command("describe")
def endpoints_describe(name: str, team: TeamOpt = None, as_json: JsonOpt = False) -> None:
    """Show an endpoint: status, failure reason, URL and capture counters (captured, dropped)."""
    s = session()
    show(s.endpoints.describe(_team(s, team), name), as_json)


@endpoints_app.command("update")
def endpoints_update(
    name: str,
    config: Annotated[str, typer.Option(help="An existing endpoint config to serve instead.")] = "",
    model: Annotated[str, typer.Option(help="Or: a model (makes <name>-config-<UTC time>).")] = "",
    instance_count: Annotated[int, typer.Option(help="Worker processes (with --model).")] = 1,
    capture_uri: Annotated[str, typer.Option(help="sr:// destination of data capture (with --model).")] = "",
    sampling: Annotated[int, typer.Option(help="Percent of requests captured (with --model).")] = 100,
    kms_key: Annotated[str, typer.Option(help="The team key (with --model).")] = "default",
    wait: Annotated[bool, typer.Option(help="Wait until it serves the new config.")] = True,
    team: TeamOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Move an endpoint to another config, blue-green: the new workers serve before the old stop."""
    if bool(config) == bool(model):
        raise typer.BadParameter("give exactly one of --config or --model")
    s = session()
    team = _team(s, team)
    if model:
        config = f"{name}-config-{time.strftime('%Y%m%d%H%M%S', time.gmtime())}"
        variant = {"VariantName": "AllTraffic", "ModelName": model, "InitialInstanceCount": instance_count}
        capture = DataCaptureConfig(capture_uri, sampling_percentage=sampling) if capture_uri else None
        s.endpoint_configs.create(team, config, [variant], capture, kms_key=kms_key)
    endpoint = s.endpoints.update(team, name, config, wait=wait)
    show(endpoint, as_json, ENDPOINT_COLUMNS)


@endpoints_app.command("metrics")
def endpoints_metrics(name: str, team: TeamOpt = None, as_json: JsonOpt = False) -> None:
    """Per-variant invocations, 4xx/5xx and latency (p50/p99), and the capture's lag and drops."""
    s = session()
    found = s.endpoints.metrics(_team(s, team), name)
    if as_json:
        show(found, True)
        return
    rows = [
        {
            "variant": v.variant or "(none)",
            "invocations": v.invocations,
            "4xx": v.client_errors,
            "5xx": v.server_errors,
            "model_p50_ms": v.model_latency.p50_ms,
            "model_p99_ms": v.model_latency.p99_ms,
            "overhead_p50_ms": v.overhead_latency.p50_ms,
        }
        for v in found.variants
    ]
    show(rows, False)
    c = found.capture
    say(f"capture: {c.captured} captured, {c.dropped} dropped, {c.pending} segments pending, lag {c.lag_seconds:g} s")


@endpoints_app.command("delete")
def endpoints_delete(name: str, team: TeamOpt = None) -> None:
    """Delete an endpoint (its workers stop; its capture is uploaded first)."""
    s = session()
    s.endpoints.delete(_team(s, team), name)
    say("deleting endpoint ", (name, "bold"))


def invoke(
    endpoint: str,
    body: Annotated[str, typer.Option(help="The rows; '-' reads stdin, '@file' reads a file.")] = "-",
    content_type: Annotated[str, typer.Option(help="text/csv or application/json.")] = "text/csv",
    explain: Annotated[bool, typer.Option(help="Also return each feature's SHAP contribution (JSON).")] = False,
    team: TeamOpt = None,
) -> None:
    """Send rows to an endpoint and print its answer (one score per row)."""
    s = session()
    if body == "-":
        payload = sys.stdin.buffer.read()
    elif body.startswith("@"):
        payload = Path(body[1:]).read_bytes()
    else:
        payload = body.encode()
    answer = s.endpoints.invoke(_team(s, team), endpoint, payload, content_type, explain=explain)
    print(visible(answer.decode("utf-8", "replace"), newlines=True))
