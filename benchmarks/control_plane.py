"""Cost of security on the control plane: the API with the guard (Cedar authorization + the
hash-chained audit append, fail closed) against the same app with the guard switched off.

Measured in the same run, over HTTPS on 127.0.0.1:
- through the SDK, one client, one connection: a read (describe a team) and a create (a user);
- with wrk, for the same read and create: one keep-alive connection (latency-bound), and four
  connections from two threads (the server's capacity on this machine);
- Cedar decision time per call, in process.

Guarded and unguarded servers alternate (``_common.alternate``), at least 3 runs each.

On PostgreSQL (``--postgres URL``, default ``STRONGROOM_BENCH_POSTGRES_URL`` or
``STRONGROOM_TEST_POSTGRES_URL``; a schema of its own, dropped afterwards), in the same run: wrk
creates with 8 connections against ``strongroom up --workers 1`` and ``--workers 2``, each
against the unguarded floor with as many processes, and how creates grow from 1 to 2 processes.
Beside each rate, the CPU each create cost (the server's processes and their PostgreSQL
backends, read from /proc): on a shared machine the rate moves with the load, the cost much less.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import Runs, alternate, alternate_sides, figure, parser, repeats, save, version

from strongroom.core import launcher
from strongroom.core.config import Config
from strongroom.core.context import Grant, Principal
from strongroom.platform import initialize
from strongroom.policy.engine import PolicyEngine, Target
from strongroom.sdk.session import Session

HERE = Path(__file__).parent
CORES = os.cpu_count() or 1


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


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


def _start(home: Path, unguarded: bool, workers: int = 1) -> launcher.ServerProcess:
    config = Config(home=home)
    if not unguarded:
        (config.run_dir / "server.json").unlink(missing_ok=True)
        return launcher.start(config, args=("--workers", str(workers)))
    env = {**os.environ, "STRONGROOM_HOME": str(home), "PYTHONPATH": str(HERE)}
    info_path = config.run_dir / "server.json"
    info_path.unlink(missing_ok=True)
    log = (home / "logs" / "unguarded.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, str(HERE / "_unguarded_server.py"), str(home), str(workers)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if json.loads(info_path.read_text() or "{}").get("pid") == process.pid:
                break
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    return launcher.ServerProcess(config, process, json.loads(info_path.read_text()), home / "logs" / "u.log")


def _measure(home: Path, token: str, n: int, seconds: int, tag: str, unguarded: bool) -> dict[str, float]:
    server = _start(home, unguarded)
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


_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of process ``pid`` (all its threads) so far; None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _backends(url: str, application: str) -> list[int]:
    """The PostgreSQL backend pids serving connections named ``application``."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            query = text("SELECT pid FROM pg_stat_activity WHERE application_name = :name")
            return [int(pid) for (pid,) in conn.execute(query, {"name": application})]
    finally:
        engine.dispose()


def _cpu_of(pids: list[int]) -> dict[int, float]:
    return {pid: cpu for pid in pids if (cpu := _cpu_seconds(pid)) is not None}


def _creates(
    home: Path, token: str, seconds: int, tag: str, unguarded: bool, workers: int, postgres: tuple[str, str]
) -> dict[str, float]:
    """wrk creates/s with 8 connections (2 threads) against ``workers`` API processes, and the CPU
    each create cost: the server's processes (master and API processes) and the PostgreSQL
    backends of their connections (``postgres``: the database URL and the application name the
    platform's connections carry), from /proc before and after the run (wrk's own CPU excluded).
    Measured after 2 s of the same load, so that start-up (pools, caches) is not in it."""
    url, application = postgres
    server = _start(home, unguarded, workers)
    try:
        script = WRK_CREATE.replace("w' ..", f"{tag}w' ..")
        # Warm up first (connection pools, caches, the first TLS handshakes): the steady state is measured.
        _wrk(f"{server.url}/api/v1/users", token, home, 2, WRK_CREATE.replace("w' ..", f"{tag}warm' .."), 8)
        processes = [int(p["pid"]) for p in server.info.get("processes", [])] + [server.process.pid]
        before_server, before_db = _cpu_of(processes), _cpu_of(_backends(url, application))
        rate = _wrk(f"{server.url}/api/v1/users", token, home, seconds, script, connections=8)
        after_server, after_db = _cpu_of(processes), _cpu_of(_backends(url, application))
    finally:
        server.stop()
    creates = rate * seconds or float("nan")  # none in a (smoke) run too short for any
    server_cpu = sum(cpu - before_server.get(pid, 0.0) for pid, cpu in after_server.items())
    db_cpu = sum(cpu - before_db.get(pid, 0.0) for pid, cpu in after_db.items())
    return {
        "rate": rate,
        "server_cpu_ms": server_cpu / creates * 1000,
        "db_cpu_ms": db_cpu / creates * 1000,
        "cpu_ms": (server_cpu + db_cpu) / creates * 1000,
    }


def _postgres_schema(url: str, name: str, create: bool) -> str:
    """Create (or drop) schema ``name`` in ``url``'s database; the URL that points the platform at it."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    engine = create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{name}"' if create else f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
    finally:
        engine.dispose()
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options=-csearch_path%3D{name}"


def _postgres_figures(url: str, smoke: bool, runs: int) -> list[dict[str, Any]]:
    seconds = 1 if smoke else 10
    schema = f"sr_bench_{uuid.uuid4().hex[:10]}"
    # The platform's connections carry the schema's name: their backends' CPU is counted per create.
    database_url = f"{_postgres_schema(url, schema, create=True)}&application_name={schema}"
    home = Path(tempfile.mkdtemp(prefix="sr-bench-cp-pg-"))
    try:
        token = initialize(Config(home=home, port=0, database_url=database_url)).token.secret
        pg = (url, schema)
        count = iter(range(1_000_000))

        def creates(workers: int, unguarded: bool) -> Callable[[], dict[str, float]]:
            kind = "u" if unguarded else "g"
            return lambda: _creates(home, token, seconds, f"pg{workers}{kind}{next(count)}", unguarded, workers, pg)

        # All four sides in the same rounds (ABBA): the growth figure compares our 2 processes with
        # our 1, so neither may run all its turns before the other while the machine's load drifts.
        load: list[float] = []
        sides = [(f"{who}_{w}", creates(w, who == "peer")) for w in (1, 2) for who in ("ours", "peer")]
        samples = alternate_sides(sides, runs, load)
        by_workers = {w: Runs(ours=samples[f"ours_{w}"], peer=samples[f"peer_{w}"], load=load) for w in (1, 2)}
        figures: list[dict[str, Any]] = []
        for w in (1, 2):
            processes = f"{w} API process{'es' if w > 1 else ''}"
            peer_name = f"the same app, guard off, {w} process{'es' if w > 1 else ''}"
            figures.append(
                figure(
                    f"control_plane_pg_create_{w}w",
                    "req/s",
                    by_workers[w],
                    "rate",
                    what=f"wrk create, 8 connections, PostgreSQL, {processes}",
                    peer_name=peer_name,
                    goal_req_s=500,
                )
            )
            cpu = figure(
                f"control_plane_pg_create_cpu_{w}w",
                "ms",
                by_workers[w],
                "cpu_ms",
                better="lower",
                what=f"CPU per create (API processes + their PostgreSQL backends), {processes}",
                peer_name=peer_name,
            )
            for part in ("server_cpu_ms", "db_cpu_ms"):
                cpu[part] = {side: _median(by_workers[w].values(side, part)) for side in ("ours", "peer")}
            # What the machine's cores could serve at that cost if they did nothing else (no load, no
            # client): the figure that stays meaningful when other work shares the cores.
            cpu["cpu_bound_req_s"] = {side: CORES * 1000 / cpu[side] for side in ("ours", "peer") if cpu[side]}
            figures.append(cpu)
        growth = Runs(ours=by_workers[2].ours, peer=by_workers[1].ours, load=load)
        figures.append(
            figure(
                "control_plane_pg_create_growth",
                "req/s",
                growth,
                "rate",
                what="authorized creates/s, 2 API processes against 1 (PostgreSQL)",
                peer_name="strongroom up --workers 1",
            )
        )
        return figures
    finally:
        shutil.rmtree(home, ignore_errors=True)
        _postgres_schema(url, schema, create=False)


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


def _server_version(url: str) -> str:
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return str(conn.execute(text("SHOW server_version")).scalar())
    finally:
        engine.dispose()


def main() -> None:
    p = parser(__doc__ or "")
    p.add_argument(
        "--postgres",
        default=os.environ.get("STRONGROOM_BENCH_POSTGRES_URL", ""),
        help="a PostgreSQL database for the 1 vs 2 API processes figures (a schema of its own is created); "
        "full runs fall back to STRONGROOM_TEST_POSTGRES_URL",
    )
    args = p.parse_args()
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
        # Smoke runs (CI) measure PostgreSQL only when asked for by --postgres or STRONGROOM_BENCH_POSTGRES_URL.
        postgres = args.postgres or ("" if args.smoke else os.environ.get("STRONGROOM_TEST_POSTGRES_URL", ""))
        if postgres:
            figures += _postgres_figures(postgres, args.smoke, repeats(args))
        path = save(
            "control_plane",
            figures,
            args.smoke,
            compared={
                "ours": "strongroom up (Cedar authorization + hash-chained audit append per call), SQLite; "
                "the control_plane_pg_* figures on PostgreSQL with --workers 1 and 2",
                "peer": "the same app with the guard switched off (benchmarks/_unguarded_server.py)",
                "durability": "both sides: each create committed before it is answered, in the same database with "
                "the same settings (SQLite WAL, synchronous=NORMAL; PostgreSQL with its default synchronous_commit); "
                "the peer writes no audit event",
                "versions": {
                    "strongroom": version("strongroom"),
                    "cedarpy": version("cedarpy"),
                    "uvicorn": version("uvicorn"),
                    "httpx": version("httpx"),
                },
                "cedarpy": version("cedarpy"),
                "sizes": {"sdk_calls": n, "wrk_seconds": seconds},
                "postgresql": _server_version(postgres) if postgres else "not run",
            },
        )
        print(f"summary: {path}")
    finally:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
