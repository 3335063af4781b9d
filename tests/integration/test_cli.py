"""The `strongroom` command against a real platform."""

from __future__ import annotations

import datetime as dt
import json
import re
import socket
import time
from pathlib import Path

from sqlalchemy import delete, select, update
from typer.testing import CliRunner

from strongroom.audit.chain import event_hash
from strongroom.audit.db import AuditCheckpointRow, AuditEventRow
from strongroom.audit.log import _row_dict
from strongroom.cli.main import app
from strongroom.core.config import Config
from strongroom.experiments import Experiment, ExperimentAnalytics, Tracker, Trial
from strongroom.platform import Platform
from tests.support import RunningServer, start_server

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


def test_a_rehashed_forgery_is_named_by_verify_and_the_server_alerts_instead_of_signing(
    initialized: tuple[Config, str],
) -> None:
    """Write access to the database alone: delete the checkpoints, edit an event, recompute every hash."""
    config, token = initialized
    server = start_server(config, token, env={"STRONGROOM_AUDIT_CHECKPOINT_SECONDS": "0.5"})
    platform = Platform(config)
    try:
        for team in ("risk", "fraud"):
            assert run(server, "teams", "create", team)[0] == 0
        deadline = time.monotonic() + 20
        while (last := platform.audit_log.last_checkpoint()) is None or last.seq < 3:
            assert time.monotonic() < deadline, "the server signed no checkpoint"
            time.sleep(0.2)
        with platform.db.write() as session:
            session.execute(delete(AuditCheckpointRow))
            rows = list(session.scalars(select(AuditEventRow).order_by(AuditEventRow.seq)))
            for row in rows[1:]:
                if row.seq == 2:
                    row.principal = "mallory"
                row.prev_hash = rows[row.seq - 2].hash
                row.hash = event_hash(_row_dict(row))

        code, out = run(server, "audit", "verify", "--json")
        report = json.loads(out)
        assert code == 1 and re.search(r"events 2\.\.\d+ were rewritten", report["problem"]), report
        assert str(config.audit_witness_path) in report["problem"] and report["first_bad_seq"] == 2

        assert run(server, "teams", "create", "ops")[0] == 0  # activity: a checkpoint falls due
        deadline = time.monotonic() + 20
        while True:
            code, out = run(server, "audit", "query", "--action", "RaiseAlert", "--json")
            alerts = [e for e in json.loads(out) if e["params"].get("rule") == "audit-chain-broken"]
            if alerts or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert alerts and "deleted from the database" in alerts[0]["params"]["message"]
        with platform.db.read() as session:
            assert session.scalars(select(AuditCheckpointRow)).first() is None, "the server signed a forged head"
    finally:
        platform.close()
        server.stop()


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


def _team_with_alice(server: RunningServer) -> str:
    """Team Environment ``risk`` (buckets risk-data, risk-models) and alice, its DataScientist; her token."""
    admin = server.session()
    admin.catalog.launch("team-environment", {"TeamName": "risk"}, wait=True)
    admin.users.create("alice")
    admin.teams.add_member("risk", "alice", "DataScientist")
    return admin.tokens.create("cli", user="alice").secret


def test_hostile_names_print_literally(server: RunningServer, tmp_path: Path) -> None:
    alice = _team_with_alice(server)
    data = tmp_path / "data.csv"
    data.write_text("1,2\n")
    fake = "[bold red]FAKE[/bold red][link=http:evil.example]click[/link]"
    for key in (fake, "x[/bold]y"):
        code, out = run(server, "cp", str(data), f"sr://risk-data/{key}", token=alice)
        assert code == 0, out
    code, out = run(server, "ls", "-r", "sr://risk-data/", token=alice)
    assert code == 0, out
    assert f"sr://risk-data/{fake}" in out and "sr://risk-data/x[/bold]y" in out
    code, out = run(server, "cp", str(data), "sr://risk-data/clear\x1b[2Jscreen", token=alice)
    assert code == 1 and "U+001B" in out and "\x1b" not in out  # refused, and not echoed raw
    code, out = run(server, "teams", "create", "evil", "--description", "pwned\x1b[2J\x1b[1;31mred")
    assert code == 0
    code, out = run(server, "teams", "describe", "evil")
    assert "\x1b" not in out and "pwned\\x1b[2J\\x1b[1;31mred" in out
    code, out = run(server, "experiments", "create", "e1", "--description", "[ok] \x1b[2J", token=alice)
    code, out = run(server, "experiments", "list", token=alice)
    assert code == 0 and "\x1b" not in out and "[ok] \\x1b[2J" in out


def test_cli_errors_are_one_clear_line_or_a_json_problem(server: RunningServer, tmp_path: Path) -> None:
    alice = _team_with_alice(server)
    code, out = run(server, "cp", str(tmp_path / "nope.csv"), "sr://risk-data/raw/", token=alice)
    assert code == 1 and "nope.csv: no such file" in out and "Traceback" not in out
    code, out = run(server, "cp", str(tmp_path), "sr://risk-data/raw/", token=alice)
    assert code == 1 and "is a directory" in out
    code, out = run(server, "cp", str(tmp_path / "nope.csv"), "sr://risk-data/raw/", "--json", token=alice)
    problem = json.loads(out)
    assert code == 1 and problem["type"].endswith("/invalid-input") and problem["field"] == "source"
    data = tmp_path / "d.csv"
    data.write_text("1,2\n")
    assert run(server, "cp", str(data), "sr://risk-data/raw/", token=alice)[0] == 0
    code, out = run(server, "cp", "sr://risk-data/raw/d.csv", str(data / "inside-a-file.csv"), token=alice)
    assert code == 1 and "error:" in out and str(data) in out and "Traceback" not in out
    code, out = run(server, "teams", "create", "[Risk]")
    assert code == 1 and "'[Risk]'" in out  # the brackets of the user's input survive
    # jobs infer the team as experiments do (alice has only one)
    code, out = run(server, "jobs", "list", "--json", token=alice)
    assert code == 0 and json.loads(out) == []


def test_status_reports_an_iso_start_time(server: RunningServer) -> None:
    code, out = run(server, "status")
    assert code == 0
    line = next(line for line in out.splitlines() if line.startswith("started_at"))
    assert dt.datetime.fromisoformat(line.split(None, 1)[1]).tzinfo is not None


def test_an_uninitialised_home_says_init(tmp_path: Path) -> None:
    env = {"STRONGROOM_HOME": str(tmp_path / "nothing-here"), "STRONGROOM_TOKEN": "sr_tok_x"}
    for args in (["status"], ["teams", "list"]):
        result = runner.invoke(app, args, env=env)
        assert result.exit_code == 1 and "strongroom init" in result.output, result.output


def test_up_on_a_busy_port_says_so(initialized: tuple[Config, str]) -> None:
    config, _ = initialized
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        result = runner.invoke(app, ["up", "--home", str(config.home), "--port", str(port)])
    assert result.exit_code == 1, result.output
    assert f"cannot listen on 127.0.0.1:{port}" in result.output and "--port" in result.output


def test_experiment_analytics_honours_team(server: RunningServer) -> None:
    alice = _team_with_alice(server)
    admin = server.session()
    admin.users.create("ada")
    admin.users.grant_role("ada", "Auditor")
    as_alice = server.session(alice)
    Experiment.create(experiment_name="credit", session=as_alice)
    trial = Trial.create(trial_name="t1", experiment_name="credit", session=as_alice)
    tracker = Tracker.create(display_name="Training", trial=trial, session=as_alice)
    tracker.log_parameters({"max_depth": 5})
    tracker.close(wait=True)  # another session reads it: wait until the platform has committed it
    auditor = server.session(admin.tokens.create("audit", user="ada").secret)
    frame = ExperimentAnalytics(experiment_name="credit", session=auditor, team="risk").dataframe()
    assert list(frame["DisplayName"]) == ["Training"]
