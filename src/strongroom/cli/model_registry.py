"""`strongroom models register|packages|approve|reject`: the model registry."""

from __future__ import annotations

from typing import Annotated

import typer

from strongroom.cli.common import JsonOpt, session
from strongroom.cli.output import say, show
from strongroom.cli.serving import TeamOpt, _team, models_app
from strongroom.serving.registry_models import ModelPackage

GROUP_COLUMNS = ["name", "versions", "latest_version", "latest_approved_version", "description", "created_by"]
PACKAGE_COLUMNS = ["group", "version", "approval_status", "model_name", "source_job", "created_by", "created_at"]
HISTORY_COLUMNS = ["status", "by", "role", "at", "reason"]
ReasonOpt = Annotated[str, typer.Option("--reason", help="Why (kept in the version's approval history).")]


def _show_package(package: ModelPackage, as_json: bool) -> None:
    if as_json:
        show(package, True)
        return
    show(package.model_dump(exclude={"approval_history"}), False)
    show(package.approval_history, False, HISTORY_COLUMNS, title="approval history")


@models_app.command("register")
def register(
    group: Annotated[str, typer.Argument(help="The model package group (created if new).")],
    model: Annotated[str, typer.Option("--model", help="A model of your team.")] = "",
    training_job: Annotated[str, typer.Option(help="Or: a training job whose model.tar.gz to register.")] = "",
    description: Annotated[str, typer.Option(help="What this version is.")] = "",
    approved: Annotated[bool, typer.Option("--approved", help="Register as Approved (MLOpsEngineer).")] = False,
    team: TeamOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Register a model (or a training job's model) as the next version of GROUP (PendingManualApproval)."""
    s = session()
    package = s.model_registry.register(
        _team(s, team),
        group,
        model_name=model,
        training_job=training_job,
        approval_status="Approved" if approved else "PendingManualApproval",
        description=description,
    )
    _show_package(package, as_json)


@models_app.command("packages")
def packages(
    group: Annotated[str, typer.Argument(help="A group: list its versions (newest first).")] = "",
    version: Annotated[int, typer.Argument(help="A version: show it with its approval history.")] = 0,
    team: TeamOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List model package groups, a group's versions, or one version with its approval history."""
    s = session()
    team = _team(s, team)
    if not group:
        show(s.model_registry.list_groups(team), as_json, GROUP_COLUMNS)
    elif not version:
        show(s.model_registry.versions(team, group), as_json, PACKAGE_COLUMNS)
    else:
        _show_package(s.model_registry.describe(team, group, version), as_json)


@models_app.command("approve")
def approve(group: str, version: int, reason: ReasonOpt, team: TeamOpt = None, as_json: JsonOpt = False) -> None:
    """Approve version VERSION of GROUP (MLOpsEngineer): endpoints may then serve it."""
    s = session()
    package = s.model_registry.approve(_team(s, team), group, version, reason)
    if as_json:
        show(package, True)
    else:
        say("approved ", (f"{group} version {version}", "bold"))


@models_app.command("reject")
def reject(group: str, version: int, reason: ReasonOpt, team: TeamOpt = None, as_json: JsonOpt = False) -> None:
    """Reject version VERSION of GROUP (MLOpsEngineer)."""
    s = session()
    package = s.model_registry.reject(_team(s, team), group, version, reason)
    if as_json:
        show(package, True)
    else:
        say("rejected ", (f"{group} version {version}", "bold"))
