"""Console page latency, server-side, at size: every console page against the same data read
through the API (the floor), and the jobs page against the MLflow UI's runs listing (issue 17 §4).

Goal: every page answers in p95 < 150 ms server-side with 10,000 objects, 1,000 jobs and 100,000
audit events in the database.

The data (the seed is set-up, not the measured thing; the JSON says how each part was made):

- a real `strongroom up` (HTTPS on 127.0.0.1, the default embedded SQLite) with a Team Environment
  ``risk`` launched from the catalog; alice (DataScientist of risk) and ava (Auditor);
- ``--objects`` objects in ``risk-data`` under ``raw/``, put through the API (encrypted, each one
  audited), from a few client threads;
- ``--jobs`` finished jobs of team ``risk`` and the audit events up to ``--events``, bulk-loaded
  into the database while the server is stopped: job rows as ``JobsService.create_job`` writes
  them (status Completed or Failed), audit events chained to the real head with the log's own
  hash (``strongroom audit verify`` passes), a realistic mix of people, actions, teams and 3%
  denials;
- MLflow: ``--runs`` finished runs (5 params, 3 metrics, 2 tags each) in one experiment of a
  SQLite store, logged with ``MlflowClient`` before its server starts.

Pages: every GET route of ``strongroom.console.routes()`` under ``/console/`` (so pages added
later are measured too) except downloads, sign-in and SSO; path parameters are filled from the
seed (a route whose parameter has no sample is listed under ``not_measured``), each page is
viewed by the first of alice, ava, admin who may see it; and audit searches with filters.

Measured per side, sequentially on one keep-alive connection, ``--requests`` views per page and
run, ours and the peer alternated ABBA, ``--repeats`` runs each:

- ours: the console page (HTML, with its session cookie): the server's own time, ``duration_ms``
  of the request's line in ``logs/access.log`` (found by request id), from the first byte of the
  request to the last of the response inside the ASGI app (TLS and the client excluded);
- floor: the same items through the API with a bearer token (JSON, 25 items where it pages), timed
  the same way;
- MLflow: what its UI's runs listing costs its server for one view: ``GET /`` (the page) plus
  ``POST /ajax-api/2.0/mlflow/runs/search`` (the experiment's runs, newest first, ``max_results``
  as the UI asks), each timed by gunicorn's access log (``%(D)s``, request start to response
  end, transport excluded), summed per view. ``mlflow server`` over plain HTTP on 127.0.0.1, its
  default (no auth app), telemetry off.

The figure is the p95 of each run; the report is the median and spread of the runs.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import os
import random
import re
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import httpx
from _common import alternate, figure, parser, repeats, save, version
from sqlalchemy import Table, insert, select
from starlette.routing import Route

from strongroom.audit.chain import GENESIS_HASH, event_hash
from strongroom.audit.db import AuditEventRow
from strongroom.console import routes
from strongroom.core import launcher
from strongroom.core.config import Config
from strongroom.db.engine import Database
from strongroom.jobs.db import JobRow
from strongroom.jobs.models import JobSpec
from strongroom.platform import initialize
from strongroom.sdk.session import Session

PAGE = 25
GOAL_MS = 150.0
TEAM, BUCKET = "risk", "risk-data"
MLFLOW_UI_MAX_RESULTS = 100  # the first page of runs the MLflow UI's experiment view asks for
# Not pages: file downloads (a stream of a whole object or the whole audit log) and sign-in.
SKIPPED = ("/console/signin", "/console/oidc/", "/console/data/{bucket}/download", "/console/audit/export")
SEARCHES = (  # audit searches an auditor runs (the unfiltered first page is the route itself)
    "principal=alice",
    "action=GetObject",
    "team=risk&decision=Deny",
    "principal=bob&action=DeleteObject",
    "decision=Invalid",
    "team=nobody",
)
ROW = b"20000,2,2,1,24,2,2,-1,-1,-2,-2,3913,3102,689,0,0,0,0,689,0,0,0,0,1\n"


def _p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[-1] if len(values) > 1 else values[0]


def _durations(log: Path, ids: set[str], parse: Callable[[str], tuple[str, float] | None]) -> dict[str, float]:
    """Server times (ms) of these request ids in ``log`` (waits for the lines to be written)."""
    found: dict[str, float] = {}
    for _ in range(100):
        found = {}
        for line in log.read_text().splitlines():
            parsed = parse(line)
            if parsed is not None and parsed[0] in ids:
                found[parsed[0]] = parsed[1]
        if len(found) == len(ids):
            return found
        time.sleep(0.1)
    raise RuntimeError(f"{len(ids) - len(found)} requests are missing from {log}")


def _ours_line(line: str) -> tuple[str, float] | None:
    try:
        record = json.loads(line)
        return str(record["request_id"]), float(record["duration_ms"])
    except (ValueError, KeyError, TypeError):
        return None


def _gunicorn_line(line: str) -> tuple[str, float] | None:
    parts = line.split()
    if len(parts) != 2 or not parts[1].isdigit():
        return None
    return parts[0], int(parts[1]) / 1000.0  # %(D)s is microseconds


# -- the seed ---------------------------------------------------------------------------------------


def _put_objects(url: str, token: str, ca: Path, count: int, threads: int = 4) -> float:
    """``count`` objects under ``raw/`` through the API; returns the seconds it took."""
    started = time.perf_counter()

    def put(part: range) -> None:
        with Session(url=url, token=token, ca=ca) as alice:
            for i in part:
                alice.buckets.put_object(BUCKET, f"raw/part-{i:05d}.csv", ROW)

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(put, [range(t, count, threads) for t in range(threads)]))
    return time.perf_counter() - started


def _job_rows(count: int, now: dt.datetime) -> list[dict[str, Any]]:
    rows = []
    for i in range(count):
        name = f"prep-credit-{i:04d}"
        spec = JobSpec.model_validate(
            {
                "name": name,
                "team": TEAM,
                "kind": "processing",
                "code": {"source": f"sr://{BUCKET}/code/prep.py"},
                "hyperparameters": {"max_depth": 5, "eta": 0.2, "num_round": 100},
                "security": {"network_isolation": True, "volume_kms_key": "default"},
                "resources": {"scratch_mb": 256, "max_runtime_seconds": 3600},
            }
        ).model_dump(mode="json")
        created = now - dt.timedelta(minutes=10 * (count - i))
        started, ended = created + dt.timedelta(seconds=3), created + dt.timedelta(seconds=95)
        failed = i % 17 == 0
        rows.append(
            {
                "id": uuid.uuid4().hex,
                "team": TEAM,
                "name": name,
                "kind": "processing",
                "created_by": "alice",
                "role": "DataScientist",
                "spec": spec,
                "status": "Failed" if failed else "Completed",
                "secondary_status": "Failed" if failed else "Completed",
                "transitions": [
                    {"status": "Starting", "start": created.isoformat(), "end": started.isoformat(), "message": ""},
                    {"status": "Training", "start": started.isoformat(), "end": ended.isoformat(), "message": ""},
                ],
                "failure_reason": "exit code 1: KeyError: 'LIMIT_BAL'" if failed else "",
                "created_at": created,
                "started_at": started,
                "ended_at": ended,
                "attempts": 1,
                "billable_seconds": 92.0,
                "exit_code": 1 if failed else 0,
                "inputs_resolved": [],
                "outputs_produced": [],
                "runtime_version": {"python": "3.11"},
                "code_resolved": {},
                "log_key": b"",
                "network_isolation": True,
                "use_spot": False,
                "claimed_by": "",
                "requested": "",
                "not_before": None,
            }
        )
    return rows


_PEOPLE = [("alice", "DataScientist", TEAM), ("bob", "DataScientist", TEAM), ("mo", "MLOpsEngineer", TEAM)]
_PEOPLE += [("dora", "DataScienceAdmin", TEAM), ("ava", "Auditor", ""), ("admin", "PlatformAdmin", "")]
_PEOPLE += [("fay", "DataScientist", "fraud"), ("gus", "MLOpsEngineer", "fraud")]
_ACTIONS = ["GetObject", "PutObject", "ListObjects", "DescribeJob", "ListJobs", "CreateJob", "InvokeEndpoint"]
_ACTIONS += ["ViewConsolePage", "Decrypt", "GenerateDataKey", "DeleteObject", "LogMetrics"]


def _audit_rows(count: int, after: tuple[int, str], start: dt.datetime) -> list[dict[str, Any]]:
    """``count`` events chained after ``after`` (seq, hash), hashed as ``AuditLog.append`` does."""
    rng = random.Random(17)
    seq, prev = after
    rows = []
    for i in range(count):
        user, role, team = rng.choice(_PEOPLE)
        action = rng.choice(_ACTIONS)
        denied = rng.random() < 0.03
        fields = {
            "seq": seq + 1,
            "id": uuid.uuid4().hex,
            "time": (start + dt.timedelta(milliseconds=i)).isoformat(),
            "principal": user,
            "token_kind": "user",
            "role": role,
            "team": team or (TEAM if i % 2 else "fraud"),
            "action": action,
            "resource": f"srn:strongroom:{team or TEAM}:object/{BUCKET}/raw/part-{i % 10_000:05d}.csv",
            "decision": "Deny" if denied else "Allow",
            "policies": [] if denied else [f"{role}-{action}"],
            "outcome": "denied" if denied else "success",
            "error": "not allowed by any policy" if denied else "",
            "request_id": uuid.uuid4().hex,
            "source": "127.0.0.1",
            "user_agent": "strongroom-sdk/bench",
            "params": {"prefix": "raw/"} if action == "ListObjects" else {},
            "prev_hash": prev,
        }
        prev = event_hash(fields)
        seq += 1
        rows.append({**fields, "time": start + dt.timedelta(milliseconds=i), "hash": prev})
    return rows


def _bulk_load(config: Config, jobs: int, events: int) -> dict[str, Any]:
    """Jobs and audit events straight into the database (the server is stopped meanwhile)."""
    db = Database(config.effective_database_url)
    started = time.perf_counter()
    try:
        with db.write_connection() as connection:
            head = connection.execute(
                select(AuditEventRow.seq, AuditEventRow.hash, AuditEventRow.time).order_by(AuditEventRow.seq.desc())
            ).first()
            after = (int(head[0]), str(head[1])) if head else (0, GENESIS_HASH)
            start = head[2] + dt.timedelta(milliseconds=1) if head else dt.datetime.now(dt.UTC)
            missing = max(0, events - after[0])
            rows = _audit_rows(missing, after, start)
            table = cast(Table, AuditEventRow.__table__)
            for at in range(0, len(rows), 5000):
                connection.execute(insert(table), rows[at : at + 5000])
            connection.execute(insert(cast(Table, JobRow.__table__)), _job_rows(jobs, dt.datetime.now(dt.UTC)))
    finally:
        db.dispose()
    return {"audit_events_loaded": missing, "audit_events_before": after[0], "seconds": time.perf_counter() - started}


# -- the MLflow peer ----------------------------------------------------------------------------------


@dataclass
class Mlflow:
    """``mlflow server`` on a SQLite store seeded with ``runs`` finished runs."""

    folder: Path
    runs: int
    process: subprocess.Popen[bytes] | None = None
    url: str = ""
    experiment: str = ""
    log: Path = field(default_factory=Path)
    seed_seconds: float = 0.0

    def start(self) -> None:
        os.environ.update(MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true")
        from mlflow.entities import Metric, Param, RunTag
        from mlflow.tracking import MlflowClient

        store = f"sqlite:///{self.folder / 'mlflow.db'}"
        started = time.perf_counter()
        client = MlflowClient(tracking_uri=store)
        self.experiment = client.create_experiment("credit-default", artifact_location=str(self.folder / "art"))
        rng = random.Random(3)
        for i in range(self.runs):
            run = client.create_run(self.experiment, run_name=f"xgb-{i:04d}")
            now = int(time.time() * 1000)
            client.log_batch(
                run.info.run_id,
                metrics=[Metric(m, rng.random(), now, 0) for m in ("validation:auc", "train:auc", "validation:loss")],
                params=[
                    Param(k, str(v))
                    for k, v in {"max_depth": 5, "eta": 0.2, "num_round": 100, "subsample": 0.8, "seed": i}.items()
                ],
                tags=[RunTag("team", TEAM), RunTag("mlflow.user", "alice")],
            )
            client.set_terminated(run.info.run_id, "FINISHED")
        self.seed_seconds = time.perf_counter() - started
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.log = self.folder / "access.log"
        command = [
            str(Path(sys.executable).with_name("mlflow")), "server",
            "--backend-store-uri", store, "--default-artifact-root", str(self.folder / "art"),
            "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
            "--gunicorn-opts",
            f"--access-logfile {self.log} --access-logformat '%({{x-request-id}}i)s %(D)s'",
        ]  # fmt: skip
        out = (self.folder / "server.log").open("wb")
        self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=os.environ.copy())
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mlflow server exited; see {self.folder / 'server.log'}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise RuntimeError("mlflow server did not answer within 120 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()


# -- the pages ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    name: str  # figure key
    path: str  # console path with query
    api: str | None  # the floor: the same items through the API, or None (measured against the goal)


def _api_floor(template: str, samples: dict[str, str], query: str) -> str | None:
    """The API read that returns what ``template`` shows (the same user, the same page size)."""
    s = samples
    return {
        "/console/": None,
        "/console/catalog": f"/api/v1/teams/{TEAM}/provisioned-products",
        "/console/catalog/launch/{product}": f"/api/v1/catalog/products/{s['product']}",
        "/console/catalog/{team}/{name}": f"/api/v1/teams/{TEAM}/provisioned-products/{s['provisioned']}",
        "/console/catalog/{team}/{name}/status": f"/api/v1/teams/{TEAM}/provisioned-products/{s['provisioned']}",
        "/console/notebooks": f"/api/v1/teams/{TEAM}/notebooks",
        "/console/access": None,
        "/console/data": "/api/v1/buckets",
        "/console/data/{bucket}": f"/api/v1/buckets/{BUCKET}/list?prefix=raw/&delimiter=/&max_keys={PAGE}",
        "/console/data/{bucket}/versions": f"/api/v1/buckets/{BUCKET}/versions?prefix={s['key']}&max_keys={PAGE}",
        "/console/jobs": f"/api/v1/teams/{TEAM}/jobs?limit={PAGE}",
        "/console/jobs/{team}/{name}": f"/api/v1/teams/{TEAM}/jobs/{s['job']}",
        "/console/jobs/{team}/{name}/log": f"/api/v1/teams/{TEAM}/jobs/{s['job']}/logs",
        "/console/tokens": "/api/v1/tokens",
        "/console/people": "/api/v1/users",
        "/console/endpoints": f"/api/v1/teams/{TEAM}/endpoints",
        "/console/audit": f"/api/v1/audit/events?limit={PAGE}" + (f"&{query}" if query else ""),
    }.get(template)


def _fill(template: str, samples: dict[str, str]) -> str | None:
    """``template`` with its parameters filled from the seed, or None if one has no sample."""
    by_route = {"name": samples["job"] if template.startswith("/console/jobs/") else samples["provisioned"]}
    if template.startswith("/console/notebooks/"):
        return None

    def value(match: re.Match[str]) -> str:
        name = match.group(1).split(":")[0]
        found = by_route.get(name) or samples.get(name)
        if found is None:
            raise KeyError(name)
        return found

    try:
        return re.sub(r"\{([^}]+)\}", value, template)
    except KeyError:
        return None


def pages(samples: dict[str, str]) -> tuple[list[tuple[str, str, str | None]], list[str]]:
    """(template, path, api) of every console GET page, and the templates that cannot be filled."""
    found: list[tuple[str, str, str | None]] = []
    unfilled: list[str] = []
    queries = {"/console/data/{bucket}": "?prefix=raw/", "/console/data/{bucket}/versions": f"?key={samples['key']}"}
    for route in routes():
        if not isinstance(route, Route) or "GET" not in (route.methods or ()):
            continue
        template = route.path
        if not template.startswith("/console/") or template.startswith(SKIPPED):
            continue
        path = _fill(template, samples)
        if path is None:
            unfilled.append(template)
            continue
        found.append((template, path + queries.get(template, ""), _api_floor(template, samples, "")))
    for query in SEARCHES:
        found.append(("/console/audit", f"/console/audit?{query}", _api_floor("/console/audit", samples, query)))
    return found, unfilled


def _key(template: str, path: str) -> str:
    name = re.sub(r"[^a-z0-9]+", "_", path.split("?")[0].removeprefix("/console/").lower()).strip("_") or "home"
    if "?" in path and template == "/console/audit":
        name += "_" + re.sub(r"[^a-z0-9]+", "_", path.split("?", 1)[1].lower()).strip("_")
    return name


def _signed_in(url: str, ca: ssl.SSLContext, token: str) -> httpx.Client:
    client = httpx.Client(base_url=url, verify=ca, timeout=60)
    page = client.get("/console/signin")
    signin = re.search(r'name="signin_token" value="([^"]+)"', page.text)
    assert signin is not None
    done = client.post("/console/signin", data={"token": token, "signin_token": signin.group(1)})
    if done.status_code != 303:
        raise RuntimeError(f"console sign-in failed: {done.status_code}")
    return client


def _timed(client: httpx.Client, method: str, path: str, **kwargs: Any) -> str:
    rid = uuid.uuid4().hex
    headers = {"x-request-id": rid, **kwargs.pop("headers", {})}
    answer = client.request(method, path, headers=headers, **kwargs)
    if answer.status_code != 200:
        raise RuntimeError(f"{method} {path}: {answer.status_code} {answer.text[:300]}")
    return rid


def main() -> None:
    p = parser(__doc__ or "")
    p.add_argument("--objects", type=int, default=10_000)
    p.add_argument("--jobs", type=int, default=1_000)
    p.add_argument("--events", type=int, default=100_000, help="audit events in the database before measuring")
    p.add_argument("--runs", type=int, default=1_000, help="MLflow runs")
    p.add_argument("--requests", type=int, default=60, help="views of each page per run and side")
    args = p.parse_args()
    if args.smoke:
        args.objects, args.jobs, args.events, args.runs, args.requests = 30, 30, 500, 20, 5
    with tempfile.TemporaryDirectory(prefix="sr-bench-console-") as tmp:
        home = Path(tmp) / "home"
        config = Config(home=home, port=0)
        admin_token = initialize(config).token.secret
        server = launcher.start(config)
        mlflow: Mlflow | None = None
        if importlib.util.find_spec("mlflow") is not None:
            mlflow = Mlflow(Path(tmp) / "mlflow", args.runs)
            (Path(tmp) / "mlflow").mkdir()
        else:
            print("peer: mlflow is not installed (pip install -e '.[bench]'); no MLflow UI figure", flush=True)
        try:
            with Session(url=server.url, token=admin_token, ca=server.ca) as admin:
                env = admin.catalog.launch("team-environment", {"TeamName": TEAM}, wait=True, timeout=300)
                admin.users.create("alice")
                admin.teams.add_member(TEAM, "alice", "DataScientist")
                admin.users.create("ava")
                admin.users.grant_role("ava", "Auditor")
                tokens = {u: admin.tokens.create("bench", user=u).secret for u in ("alice", "ava")}
                tokens["admin"] = admin_token
            put_seconds = _put_objects(server.url, tokens["alice"], server.ca, args.objects)
            server.stop()
            loaded = _bulk_load(config, args.jobs, args.events)
            server = launcher.start(config, timeout=180)
            if mlflow:
                mlflow.start()
            ca = ssl.create_default_context(cafile=str(server.ca))
            samples = {
                "team": TEAM,
                "bucket": BUCKET,
                "product": "team-environment",
                "provisioned": env.name,
                "job": f"prep-credit-{args.jobs - 1:04d}",
                "key": "raw/part-00000.csv",
            }
            found, unfilled = pages(samples)
            consoles = {u: _signed_in(server.url, ca, t) for u, t in tokens.items()}
            apis = {
                u: httpx.Client(base_url=server.url, verify=ca, timeout=60, headers={"authorization": f"Bearer {t}"})
                for u, t in tokens.items()
            }
            plan: list[tuple[str, Page, str]] = []  # (figure key, page, user)
            refused: dict[str, str] = {}
            for template, path, api in found:
                viewer = next((u for u in ("alice", "ava", "admin") if consoles[u].get(path).status_code == 200), None)
                if viewer is None:
                    refused[path] = "no seeded user may view it"
                    continue
                plan.append((_key(template, path), Page(_key(template, path), path, api), viewer))
            mlflow_client = httpx.Client(base_url=mlflow.url if mlflow else "http://127.0.0.1", timeout=60)
            search = {
                "experiment_ids": [mlflow.experiment if mlflow else ""],
                "max_results": MLFLOW_UI_MAX_RESULTS,
                "order_by": ["attributes.start_time DESC"],
                "run_view_type": "ACTIVE_ONLY",
            }
            if mlflow:
                listed = mlflow_client.post("/ajax-api/2.0/mlflow/runs/search", json=search).json()
                assert len(listed["runs"]) == min(args.runs, MLFLOW_UI_MAX_RESULTS), len(listed.get("runs", []))
            # Warm both servers (and the audit checkpoint worker's walk over the loaded events).
            for _, page, user in plan:
                for _ in range(3):
                    consoles[user].get(page.path)
                    if page.api:
                        apis[user].get(page.api)
            time.sleep(5 if not args.smoke else 0)
            log = home / "logs" / "access.log"

            def ours() -> dict[str, float]:
                out = {}
                for key, page, user in plan:
                    ids = {_timed(consoles[user], "GET", page.path) for _ in range(args.requests)}
                    out[key] = _p95(list(_durations(log, ids, _ours_line).values()))
                out["runs_listing"] = out["jobs"]
                return out

            def peer() -> dict[str, float]:
                out = {}
                for key, page, user in plan:
                    if page.api:
                        ids = {_timed(apis[user], "GET", page.api) for _ in range(args.requests)}
                        out[key] = _p95(list(_durations(log, ids, _ours_line).values()))
                if mlflow is None:
                    return out
                search_path = "/ajax-api/2.0/mlflow/runs/search"
                views = [
                    (_timed(mlflow_client, "GET", "/"), _timed(mlflow_client, "POST", search_path, json=search))
                    for _ in range(args.requests)
                ]
                times = _durations(mlflow.log, {i for view in views for i in view}, _gunicorn_line)
                out["runs_listing"] = _p95([times[a] + times[b] for a, b in views])
                return out

            runs = alternate(ours, peer, repeats(args))
            figures = []
            for key, page, _ in plan:
                fig = figure(
                    f"console_{key}_p95",
                    "ms",
                    runs,
                    key=key,
                    better="lower",
                    goal=None if page.api else GOAL_MS,
                    what=f"p95 server-side time of {page.path} vs "
                    + (f"the same items through the API ({page.api})" if page.api else f"the {GOAL_MS:g} ms goal"),
                    peer_name="the API (JSON)" if page.api else "goal",
                    path=page.path,
                    api=page.api,
                    goal_ms=GOAL_MS,
                )
                fig["meets_goal"] = max(fig["ours_runs"]) < GOAL_MS
                figures.append(fig)
            if mlflow:
                runs_fig = figure(
                    "console_jobs_vs_mlflow_runs_listing_p95",
                    "ms",
                    runs,
                    key="runs_listing",
                    better="lower",
                    what=f"p95 server-side time of the console's jobs page ({args.jobs} jobs, {PAGE} a page) vs the "
                    f"MLflow UI's runs listing ({args.runs} runs: GET / plus runs/search, max_results "
                    f"{MLFLOW_UI_MAX_RESULTS}, summed per view)",
                    peer_name=f"mlflow server {version('mlflow')} (gunicorn, SQLite)",
                    goal_ms=GOAL_MS,
                )
                figures.append(runs_fig)
            over = [f["name"] for f in figures if "meets_goal" in f and not f["meets_goal"]]
            print(f"console pages over {GOAL_MS:g} ms (any run's p95): {', '.join(over) or 'none'}", flush=True)
            save(
                "console",
                figures,
                args.smoke,
                compared={
                    "database": "SQLite (the default embedded store), one `strongroom up` process",
                    "durability": "every timed request is a read (the seed is written before); each Strongroom "
                    "request (page or API floor) also commits its audit event before answering; MLflow writes nothing",
                    "objects": args.objects,
                    "jobs": args.jobs,
                    "audit_events_at_start": max(args.events, loaded["audit_events_before"]),
                    "mlflow_runs": args.runs,
                    "requests_per_page_and_run": args.requests,
                    "page_size": PAGE,
                    "goal_ms": GOAL_MS,
                    "over_goal": over,
                    "not_measured": {**{t: "no sample for its parameters" for t in unfilled}, **refused},
                    "seed": {
                        "objects": f"put through the API by alice (encrypted, each audited), 4 client threads, "
                        f"{put_seconds:.0f} s",
                        "jobs": "bulk-inserted job rows (Completed, every 17th Failed) as create_job writes them, "
                        "server stopped",
                        "audit_events": f"{loaded['audit_events_loaded']} events bulk-inserted after the "
                        f"{loaded['audit_events_before']} real ones, chained with the log's hash, server stopped "
                        f"({loaded['seconds']:.0f} s with the jobs)",
                        "mlflow_runs": f"MlflowClient into SQLite, before its server started "
                        f"({mlflow.seed_seconds:.0f} s)"
                        if mlflow
                        else "not installed",
                    },
                    "ours": "console page (HTML) with a session cookie; access.log duration_ms",
                    "floor": "the API (JSON) with a bearer token, same user; access.log duration_ms",
                    "mlflow": "GET / + POST /ajax-api/2.0/mlflow/runs/search per view, gunicorn %(D)s, plain HTTP",
                    "versions": {"mlflow": version("mlflow"), "strongroom": version("strongroom")},
                },
            )
            for client in (*consoles.values(), *apis.values(), mlflow_client):
                client.close()
        finally:
            if mlflow:
                mlflow.stop()
            server.stop()


if __name__ == "__main__":
    main()
