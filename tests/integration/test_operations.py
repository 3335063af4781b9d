"""Running it like a bank would, against a real `strongroom up`: recovery, health, metrics, logs."""

from __future__ import annotations

import json
import time

from typer.testing import CliRunner

from strongroom.cli.main import app
from strongroom.core.errors import Unauthenticated
from tests.support import RunningServer

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
