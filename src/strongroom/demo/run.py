"""`strongroom demo`: a fresh platform, team `risk` and its people, allowed and denied calls,
and a verified audit chain, printed as it happens."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from strongroom.core import launcher
from strongroom.core.config import Config
from strongroom.core.errors import StrongroomError
from strongroom.core.platform import initialize
from strongroom.sdk.session import Session

console = Console()

PEOPLE = [
    # name, role, team
    ("dana", "DataScienceAdmin", "risk"),
    ("alice", "DataScientist", "risk"),
    ("omar", "MLOpsEngineer", "risk"),
    ("fred", "DataScientist", "fraud"),
    ("ava", "Auditor", ""),
]


@dataclass
class Step:
    who: str
    what: str
    expect: str
    got: str = ""
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.expect == self.got


def _attempt(step: Step, call: Callable[[], Any]) -> Step:
    try:
        result = call()
    except StrongroomError as exc:
        step.got, step.detail = "denied" if exc.status == 403 else f"error {exc.status}", exc.detail
        return step
    step.got = "allowed"
    if isinstance(result, str):
        step.detail = result
    return step


def _assumed_grant(session: Session, role: str, team: str) -> str:
    with session.assume_role(role, team) as assumed:
        return assumed.whoami().grants[0]


def _simulate(session: Session, principal: str, action: str, resource: str, context: dict[str, Any]) -> str:
    result = session.policies.simulate(principal, action, resource, context)
    if result.decision != "Allow":
        raise _SimulatedDenial(result.explanation)
    return result.explanation


class _SimulatedDenial(StrongroomError):
    status = 403


def run_demo(home: Path | None = None, keep_running: bool = False) -> int:
    """Run the demo; returns the process exit code (0 when every step behaved as expected)."""
    home = home or Path(tempfile.mkdtemp(prefix="strongroom-demo-"))
    config = Config(home=home, port=0)
    console.rule("[bold]Strongroom demo")
    console.print(f"Initialising a fresh platform in [bold]{home}[/bold]")
    init = initialize(config)
    server = launcher.start(config)
    console.print(f"Platform up at [bold]{server.url}[/bold] (sandbox socket {server.socket})")
    steps: list[Step] = []
    try:
        admin = Session(url=server.url, token=init.token.secret, ca=server.ca)
        for team in ("risk", "fraud"):
            admin.teams.create(team, description=f"{team} modelling team")
        sessions: dict[str, Session] = {"admin": admin}
        for name, role, team in PEOPLE:
            admin.users.create(name)
            if team:
                admin.teams.add_member(team, name, role)
            else:
                admin.users.grant_role(name, role)
            token = admin.tokens.create("demo", user=name).secret
            sessions[name] = Session(url=server.url, token=token, ca=server.ca)
        console.print(
            "Created teams [bold]risk[/bold] and [bold]fraud[/bold] and their people: "
            + ", ".join(f"{n} ({r}{'@' + t if t else ''})" for n, r, t in PEOPLE)
        )
        alice, dana, omar, ava = sessions["alice"], sessions["dana"], sessions["omar"], sessions["ava"]
        job = "srn:strongroom:risk:training-job/credit-default"
        safe = {"network_isolation": True, "volume_kms_key": "srn:strongroom:risk:key/risk-key"}
        checks: list[tuple[Step, Callable[[], Any]]] = [
            (Step("alice", "describe her team risk", "allowed"), lambda: alice.teams.describe("risk") and "ok"),
            (Step("alice", "describe team fraud", "denied"), lambda: alice.teams.describe("fraud")),
            (Step("alice", "create a team", "denied"), lambda: alice.teams.create("shadow-it")),
            (
                Step("alice", "assume DataScientist@risk", "allowed"),
                lambda: _assumed_grant(alice, "DataScientist", "risk"),
            ),
            (
                Step("dana", "add omar to risk as DataScientist", "allowed"),
                lambda: dana.teams.add_member("risk", "omar", "DataScientist") and "ok",
            ),
            (
                Step("dana", "add herself to fraud", "denied"),
                lambda: dana.teams.add_member("fraud", "dana", "DataScientist"),
            ),
            (
                Step("admin", "simulate: alice trains with network isolation + KMS key", "allowed"),
                lambda: _simulate(admin, "alice", "CreateTrainingJob", job, safe),
            ),
            (
                Step("admin", "simulate: alice trains without network isolation", "denied"),
                lambda: _simulate(admin, "alice", "CreateTrainingJob", job, {**safe, "network_isolation": False}),
            ),
            (
                Step("admin", "simulate: alice trains without a volume KMS key", "denied"),
                lambda: _simulate(admin, "alice", "CreateTrainingJob", job, {"network_isolation": True}),
            ),
            (
                Step("admin", "simulate: alice creates an endpoint", "denied"),
                lambda: _simulate(admin, "alice", "CreateEndpoint", "srn:strongroom:risk:endpoint/credit", {}),
            ),
            (
                Step("admin", "simulate: omar creates an endpoint", "allowed"),
                lambda: _simulate(admin, "omar", "CreateEndpoint", "srn:strongroom:risk:endpoint/credit", {}),
            ),
            (Step("ava", "read the audit log", "allowed"), lambda: f"{len(ava.audit.tail(50))} recent events"),
            (Step("ava", "create a user", "denied"), lambda: ava.users.create("mallory")),
            (Step("omar", "read the audit log", "denied"), lambda: omar.audit.tail(5)),
        ]
        for step, call in checks:
            steps.append(_attempt(step, call))
        _print_steps(steps)
        report = ava.audit.verify()
        denials = ava.audit.query(decision="Deny", limit=1000)
        colour = "green" if report.ok else "red"
        console.print(
            f"Audit chain: [{colour}]{'OK' if report.ok else 'FAILED ' + report.problem}[/{colour}] — "
            f"{report.events} events, {report.checkpoints} signed checkpoints; {len(denials)} denials recorded"
        )
        failed = [s for s in steps if not s.ok]
        if keep_running:
            console.print(f"\nPlatform left running. Home: {home}\n  export STRONGROOM_HOME={home}")
            console.print(f"  export STRONGROOM_TOKEN={init.token.secret}\n  strongroom status")
        for session in sessions.values():
            session.close()
        if failed or not report.ok:
            console.print(f"[red]{len(failed)} step(s) did not behave as expected[/red]; server log: {server.log_path}")
            return 1
        console.print("[green]Demo complete.[/green]")
        return 0
    finally:
        if not keep_running:
            server.stop()


def _print_steps(steps: list[Step]) -> None:
    table = Table(title="Allowed and denied calls", header_style="bold")
    for column in ("who", "what", "expected", "got", "detail"):
        table.add_column(column, overflow="fold")
    for step in steps:
        colour = "green" if step.ok else "red"
        table.add_row(step.who, step.what, step.expect, f"[{colour}]{step.got}[/{colour}]", step.detail[:90])
    console.print(table)
