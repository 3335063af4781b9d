"""`strongroom audit`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from strongroom.cli.common import JsonOpt, session
from strongroom.cli.output import print_json, say, show

audit_app = typer.Typer(no_args_is_help=True, help="The hash-chained audit log.")


# -- audit ------------------------------------------------------------------------------------


@audit_app.command("verify")
def audit_verify(as_json: JsonOpt = False) -> None:
    """Walk the hash chain and the signed checkpoints; exit 1 and name the first bad event."""
    report = session().audit.verify()
    if as_json:
        print_json(report)
    elif report.ok:
        say(
            ("OK", "green"),
            f" {report.events} events, {report.checkpoints} signed checkpoints, head {report.head_seq} "
            f"{report.head_hash[:16]}…",
        )
    else:
        say(("FAILED", "red"), " ", report.problem)
    if not report.ok:
        raise typer.Exit(1)


_EVENT_COLUMNS = ["seq", "time", "principal", "role", "action", "resource", "decision", "outcome"]


@audit_app.command("tail")
def audit_tail(count: Annotated[int, typer.Option("-n", "--count")] = 20, as_json: JsonOpt = False) -> None:
    """The newest audit events."""
    show(session().audit.tail(count), as_json, _EVENT_COLUMNS)


@audit_app.command("query")
def audit_query(
    principal: str | None = None,
    action: str | None = None,
    team: str | None = None,
    decision: str | None = None,
    request_id: str | None = None,
    limit: int = 100,
    after_seq: int = 0,
    as_json: JsonOpt = False,
) -> None:
    """Audit events matching every filter given."""
    events = session().audit.query(
        principal=principal,
        action=action,
        team=team,
        decision=decision,
        request_id=request_id,
        limit=limit,
        after_seq=after_seq,
    )
    show(events, as_json, _EVENT_COLUMNS)


@audit_app.command("export")
def audit_export(
    output: Annotated[Path | None, typer.Option("-o", "--output", help="File (default stdout).")] = None,
    principal: str | None = None,
    action: str | None = None,
    team: str | None = None,
) -> None:
    """Export matching events as JSON lines."""
    lines = session().audit.export(principal=principal, action=action, team=team)
    if output is None:
        for line in lines:
            print(line)
        return
    count = 0
    with output.open("w") as handle:
        for line in lines:
            handle.write(line + "\n")
            count += 1
    say(f"wrote {count} events to {output}", err=True)
