"""The `strongroom` command against a real platform."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import update
from typer.testing import CliRunner

from strongroom.audit.db import AuditEventRow
from strongroom.cli.main import app
from strongroom.core.config import Config
from strongroom.platform import Platform
from tests.support import RunningServer

runner = CliRunner()


def run(server: RunningServer, *args: str, token: str | None = None) -> tuple[int, str]:
    env = {"STRONGROOM_HOME": str(server.config.home), "STRONGROOM_TOKEN": token or server.admin_token}
    result = runner.invoke(app, list(args), env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def test_init_refuses_an_existing_home(initialized: tuple[Config, str]) -> None:
    config, _ = initialized
    result = runner.invoke(app, ["init", "--home", str(config.home)])
    assert result.exit_code != 0
    assert "already" in str(result.exception) or "already" in result.output


def test_init_prints_a_working_token_once(tmp_path: Path) -> None:
    home = tmp_path / "fresh"
    result = runner.invoke(app, ["init", "--home", str(home), "--port", "0", "--json"], catch_exceptions=False)
    assert result.exit_code == 0
    token = json.loads(result.output)["token"]
    assert token.startswith("sr_tok_")
    assert token.encode() not in (home / "strongroom.db").read_bytes()


def test_status_and_identity_commands(server: RunningServer) -> None:
    code, out = run(server, "status", "--json")
    assert code == 0
    status = json.loads(out)
    assert status["https"] == "ok" and status["process"] == "running" and status["socket"] == server.socket
    assert run(server, "teams", "create", "risk")[0] == 0
    assert run(server, "users", "create", "alice")[0] == 0
    assert run(server, "teams", "add-member", "risk", "alice", "DataScientist")[0] == 0
    code, out = run(server, "teams", "describe", "risk", "--json")
    assert json.loads(out)["members"][0]["user"] == "alice"
    code, out = run(server, "tokens", "create", "laptop", "--user", "alice", "--json")
    alice = json.loads(out)["secret"]
    code, out = run(server, "roles", "assume", "DataScientist", "--team", "risk", "--export", token=alice)
    assert code == 0 and out.startswith("export STRONGROOM_TOKEN=srs_")
    code, out = run(server, "teams", "create", "mine", token=alice)
    assert code == 1 and "not allowed to CreateTeam" in out


def test_policy_simulate_names_the_guardrail(server: RunningServer) -> None:
    run(server, "teams", "create", "risk")
    run(server, "users", "create", "alice")
    run(server, "teams", "add-member", "risk", "alice", "DataScientist")
    code, out = run(
        server,
        "policy",
        "simulate",
        "--principal",
        "alice",
        "--action",
        "CreateTrainingJob",
        "--resource",
        "srn:strongroom:risk:training-job/t1",
        "--context",
        '{"network_isolation": false}',
    )
    assert code == 0
    assert "Deny" in out and "guardrail-network-isolation" in out
    code, out = run(
        server,
        "policy",
        "simulate",
        "--principal",
        "alice",
        "--action",
        "CreateTrainingJob",
        "--resource",
        "srn:strongroom:risk:training-job/t1",
        "--context",
        "{not json",
    )
    assert code != 0


def test_policy_attach_validates(server: RunningServer, tmp_path: Path) -> None:
    run(server, "teams", "create", "risk")
    bad = tmp_path / "bad.cedar"
    bad.write_text('permit (principal, action == Action::"Teleport", resource);')
    code, out = run(server, "policy", "attach", "risk", "bad", str(bad))
    assert code == 1 and "schema" in out
    good = tmp_path / "good.cedar"
    good.write_text('@id("ds-sim")\npermit (principal, action == Action::"SimulatePolicy", resource);')
    assert run(server, "policy", "attach", "risk", "good", str(good))[0] == 0
    code, out = run(server, "policy", "list", "risk", "--json")
    assert [p["name"] for p in json.loads(out)] == ["good"]


def test_audit_commands_and_tamper_detection(server: RunningServer, tmp_path: Path) -> None:
    run(server, "teams", "create", "risk")
    code, out = run(server, "audit", "verify")
    assert code == 0 and "OK" in out
    code, out = run(server, "audit", "query", "--action", "CreateTeam", "--json")
    assert [e["resource"] for e in json.loads(out)] == ["srn:strongroom:risk:team/risk"]
    export = tmp_path / "audit.jsonl"
    assert run(server, "audit", "export", "-o", str(export))[0] == 0
    lines = [json.loads(line) for line in export.read_text().splitlines()]
    assert lines[0]["seq"] == 1 and all("hash" in e for e in lines)
    platform = Platform(server.config)
    try:
        with platform.db.write() as session:
            session.execute(update(AuditEventRow).where(AuditEventRow.seq == 2).values(principal="mallory"))
    finally:
        platform.close()
    code, out = run(server, "audit", "verify")
    assert code == 1 and "event 2" in out and "edited" in out


def test_catalog_commands_launch_describe_and_explain_errors(server: RunningServer) -> None:
    code, out = run(server, "catalog", "products")
    assert code == 0 and "team-environment" in out and "InstanceSize [small|medium|large]" in out
    code, out = run(server, "catalog", "launch", "team-environment", "-p", "TeamName=risk")
    assert code == 0 and "AVAILABLE" in out and "DataBucket: sr://risk-data" in out
    code, out = run(server, "catalog", "describe", "risk", "team-environment")
    assert code == 0 and "LaunchCompleted" in out and "data-bucket" in out
    admin = server.session()
    admin.users.create("alice")
    admin.teams.add_member("risk", "alice", "DataScientist")
    alice = admin.tokens.create("cli", user="alice").secret
    code, out = run(
        server, "catalog", "launch", "notebook", "-p", "TeamName=risk", "-p", "NotebookName=Bad!", token=alice
    )
    assert code == 1 and "does not match the pattern" in out and "parameters.NotebookName" in out
    code, out = run(server, "catalog", "launch", "notebook", "-p", "TeamName")
    assert code == 1 and "Key=Value" in out
    code, out = run(server, "notebooks", "list", "risk", "--json")
    assert code == 0 and json.loads(out) == []
