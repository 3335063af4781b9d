"""Cost of security on the control plane: the API with the guard (Cedar authorization + the
hash-chained audit append, fail closed) against the same app with the guard switched off.

Measured in the same run, over HTTPS on 127.0.0.1:
- through the SDK, one client, one connection: a read (describe a team) and a create (a user);
- with wrk, for the same read and create: one keep-alive connection (latency-bound), and four
  connections from two threads (the server's capacity on this machine);
- Cedar decision time per call, in process.

Guarded and unguarded servers alternate (``_common.alternate``), at least 3 runs each.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import alternate, figure, parser, repeats, save, version

from strongroom.core import launcher
from strongroom.core.config import Config
from strongroom.core.context import Grant, Principal
from strongroom.platform import initialize
from strongroom.policy.engine import PolicyEngine, Target
from strongroom.sdk.session import Session

HERE = Path(__file__).parent

WRK_CREATE = """
counter = 0
request = function()
  counter = counter + 1
  local body = '{"name": "w' .. id .. '-' .. counter .. '"}'
  return wrk.format("POST", "/api/v1/users", nil, body)
end
setup = function(thread) thread:set("id", math.random(1, 1000000000)) end
"""


def _sdk_rates(session: Session, n: int, tag: str) -> tuple[float, float]:
    session.teams.describe("bench")
    start = time.perf_counter()
    for _ in range(n):
        session.teams.describe("bench")
    reads = n / (time.perf_counter() - start)
    start = time.perf_counter()
    for i in range(n):
        session.users.create(f"{tag}-{i}")
    creates = n / (time.perf_counter() - start)
    return reads, creates


def _wrk(url: str, token: str, ca_dir: Path, seconds: int, script: str | None, connections: int = 1) -> float:
    if not shutil.which("wrk"):
        return float("nan")
    args = [
        "wrk",
        f"-t{min(2, connections)}",
        f"-c{connections}",
        f"-d{seconds}s",
        "-H",
        f"Authorization: Bearer {token}",
        "-H",
        "Content-Type: application/json",
    ]
    if script:
        lua = ca_dir / "create.lua"
        lua.write_text(script)
        args += ["-s", str(lua)]
    out = subprocess.run([*args, url], capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"wrk saw failed requests:\n{out}")
    for line in out.splitlines():
        if line.startswith("Requests/sec:"):
            return float(line.split()[1])
    raise RuntimeError(out)


def _measure(home: Path, token: str, n: int, seconds: int, tag: str, unguarded: bool) -> dict[str, float]:
    config = Config(home=home)
    if unguarded:
        env = {**os.environ, "STRONGROOM_HOME": str(home), "PYTHONPATH": str(HERE)}
        log = (home / "logs" / "unguarded.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, str(HERE / "_unguarded_server.py"), str(home)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        info_path = config.run_dir / "server.json"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if info_path.exists() and json.loads(info_path.read_text() or "{}").get("pid") == process.pid:
                break
            time.sleep(0.05)
        server = launcher.ServerProcess(config, process, json.loads(info_path.read_text()), home / "logs" / "u.log")
    else:
        (config.run_dir / "server.json").unlink(missing_ok=True)
        server = launcher.start(config)
    try:
        with Session(url=server.url, token=token, ca=server.ca) as session:
            if not unguarded and not any(t.name == "bench" for t in session.teams.list()):
                session.teams.create("bench")
            reads, creates = _sdk_rates(session, n, tag)
        rates = {"sdk_read": reads, "sdk_create": creates, "sdk_read_ms": 1000 / reads, "sdk_create_ms": 1000 / creates}
        for connections, suffix in ((1, ""), (4, "_4c")):
            rates[f"wrk_read{suffix}"] = _wrk(
                f"{server.url}/api/v1/teams/bench", token, home, seconds, None, connections
            )
            rates[f"wrk_create{suffix}"] = _wrk(
                f"{server.url}/api/v1/users",
                token,
                home,
                seconds,
                WRK_CREATE.replace("w' ..", f"{tag}{connections}w' .."),
                connections,
            )
    finally:
        server.stop()
    return rates


def _cedar_decision_us(n: int) -> float:
    engine = PolicyEngine.shipped()
    principal = Principal("alice", "api", (Grant("DataScientist", "risk"),))
    target = Target("training-job", "risk", "t")
    context = {"network_isolation": True, "volume_kms_key": "k"}
    engine.decide(principal, "CreateTrainingJob", target, context)
    start = time.perf_counter()
    for _ in range(n):
        engine.decide(principal, "CreateTrainingJob", target, context)
    return (time.perf_counter() - start) / n * 1e6


def main() -> None:
    args = parser(__doc__ or "").parse_args()
    n, seconds = (50, 1) if args.smoke else (2000, 10)
    home = Path(tempfile.mkdtemp(prefix="sr-bench-cp-"))
    try:
        init = initialize(Config(home=home, port=0))
        token = init.token.secret
        count = iter(range(1_000_000))
        runs = alternate(
            lambda: _measure(home, token, n, seconds, f"g{next(count)}", unguarded=False),
            lambda: _measure(home, token, n, seconds, f"u{next(count)}", unguarded=True),
            repeats(args),
        )
        figures: list[dict[str, Any]] = []

        def add(name: str, unit: str, key: str, what: str, better: str = "higher") -> None:
            figures.append(figure(name, unit, runs, key, better=better, what=what, peer_name="the same app, guard off"))

        for key, label in (("sdk_read", "read"), ("sdk_create", "create")):
            add(f"control_plane_sdk_{label}", "calls/s", key, f"authorized, audited {label} through the SDK")
            add(f"control_plane_sdk_{label}_latency", "ms", f"{key}_ms", f"SDK {label} latency", better="lower")
        for key, label in (
            ("wrk_read", "read"),
            ("wrk_create", "create"),
            ("wrk_read_4c", "read_4_connections"),
            ("wrk_create_4c", "create_4_connections"),
        ):
            what = f"wrk {label.replace('_', ' ')}" + ("" if "4" in label else ", 1 connection")
            add(f"control_plane_wrk_{label}", "req/s", key, what)
        decisions = alternate(lambda: _cedar_decision_us(200 if args.smoke else 20000), None, repeats(args))
        figures.append(
            figure("cedar_decision", "us", decisions, better="lower", what="Cedar decision, in process (ours alone)")
        )
        path = save(
            "control_plane",
            figures,
            args.smoke,
            compared={
                "ours": "strongroom up (Cedar authorization + hash-chained audit append per call), SQLite",
                "peer": "the same app with the guard switched off (benchmarks/_unguarded_server.py)",
                "cedarpy": version("cedarpy"),
                "sizes": {"sdk_calls": n, "wrk_seconds": seconds},
            },
        )
        print(f"summary: {path}")
    finally:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
