"""Running it like a bank would, against a real `strongroom up`: recovery, health, metrics, logs."""

from __future__ import annotations

import json
import ssl
import time

import httpx
import pytest
from typer.testing import CliRunner

from strongroom.cli.main import app
from strongroom.core.config import Config
from strongroom.core.errors import Unauthenticated
from tests.support import RunningServer, start_server

runner = CliRunner()


def test_admin_recover_on_the_host_locks_out_the_old_token_of_a_running_server(server: RunningServer) -> None:
    old = server.session()
    old.status()  # the server has the old token in its authentication cache now
    env = {"STRONGROOM_HOME": str(server.config.home)}

    result = runner.invoke(app, ["admin", "recover", "--json"], env=env, catch_exceptions=False)

    assert result.exit_code == 0, result.output
    recovered = json.loads(result.output)
    assert len(recovered["revoked"]) == 1
    new = server.session(recovered["token"])
    assert new.status()["audit_head_seq"] > 0
    refused_after = None
    started = time.monotonic()
    while time.monotonic() - started < 10:
        try:
            old.status()
        except Unauthenticated:
            refused_after = time.monotonic() - started
            break
        time.sleep(0.2)
    assert refused_after is not None and refused_after < 6
    events = new.audit.query(action="RecoverPlatformAdmin")
    assert [(e.principal, e.params["revoked"]) for e in events] == [("system", recovered["revoked"])]


def test_probes_metrics_and_json_logs_of_a_server_run_by_systemd(initialized: tuple[Config, str]) -> None:
    config, token = initialized
    server = start_server(config, token, env={"INVOCATION_ID": "0123456789abcdef"})  # as systemd sets it
    try:
        with httpx.Client(base_url=server.url, verify=ssl.create_default_context(cafile=str(server.ca))) as client:
            assert client.get("/healthz").json() == {"status": "alive"}
            ready = client.get("/readyz")
            assert ready.status_code == 200
            assert ready.json() == {"status": "ready", "checks": {"database": "ok", "audit": "ok", "workers": "ok"}}
            assert client.get("/metrics").status_code == 401
            scraped = client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
            status = client.get("/api/v1/status", headers={"Authorization": f"Bearer {token}", "X-Request-Id": "r-42"})
        assert scraped.status_code == 200 and status.status_code == 200
        assert 'strongroom_http_requests_total{method="GET",route="/metrics",status="401"} 1.0' in scraped.text
    finally:
        server.stop()

    access = [json.loads(line) for line in (config.home / "logs" / "access.log").read_text().splitlines()]
    (mine,) = [r for r in access if r["request_id"] == "r-42"]
    assert mine["principal"] == "admin" and mine["action"] == "GET /api/v1/status" and mine["status"] == 200
    assert mine["duration_ms"] > 0 and mine["level"] == "info" and mine["time"].endswith("+00:00")
    assert [r["status"] for r in access if r["path"] == "/metrics"] == [401, 200]
    assert not [r for r in access if r["path"] in ("/healthz", "/readyz")]  # probes: metrics-free, log-free
    server_log = (config.home / "logs" / "strongroom.log").read_text().splitlines()
    assert any("strongroom API on" in json.loads(line)["message"] for line in server_log)
    # under a service manager stderr carries the same JSON lines (the journal keeps them)
    stderr = [json.loads(line) for line in server.log_path.read_text().splitlines() if line.startswith("{")]
    assert any(r.get("request_id") == "r-42" for r in stderr)


def _status_200s(scrape: str) -> float:
    line = 'strongroom_http_requests_total{method="GET",route="/api/v1/status",status="200"} '
    (value,) = [row.removeprefix(line) for row in scrape.splitlines() if row.startswith(line)]
    return float(value)


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_with_several_api_processes_every_scrape_counts_every_process(initialized: tuple[Config, str]) -> None:
    config, token = initialized
    server = start_server(config, token, args=("--workers", "2"))
    context = ssl.create_default_context(cafile=str(server.ca))
    headers = {"Authorization": f"Bearer {token}"}

    def ask(path: str) -> httpx.Response:  # a connection of its own: either process may accept it
        with httpx.Client(base_url=server.url, verify=context, headers=headers, timeout=30) as client:
            return client.get(path)

    try:
        asked, pids = 0, set[int]()
        while len(pids) < 2 or asked < 10:
            assert ask("/api/v1/status").status_code == 200 and asked < 80, "one process answered every request"
            asked += 1
            for log in (config.home / "logs").glob("access-*.log"):
                pids |= {json.loads(line)["pid"] for line in log.read_text().splitlines() if "/api/v1/status" in line}
        scrapes = [ask("/metrics") for _ in range(6)]
    finally:
        server.stop()
    # whichever process answers the scrape, it counts the requests both answered
    assert [_status_200s(scrape.text) for scrape in scrapes] == [float(asked)] * 6
