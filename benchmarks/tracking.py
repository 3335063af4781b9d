"""Experiment tracking: Strongroom's SDK against MLflow, mode for mode, doing the same work.

Ours goes through the real platform: a fresh home, `strongroom up` over HTTPS, a DataScientist's
token, the SDK. The peer is MLflow on a SQLite file store in a temporary directory (telemetry
off), in process, through its fluent API and client. Each pair gives the same guarantee:

1. ``log_metric`` durable, one caller: ours ``durability="durable"`` (committed when the call
   returns) against ``mlflow.log_metric`` (synchronous, committed when it returns); over HTTPS,
   and over the platform's Unix socket (how notebooks and jobs reach it); and, like for like on
   disk, against MLflow whose SQLite this benchmark sets to WAL with ``synchronous=NORMAL`` as ours
   is (the default MLflow peer fsyncs every commit, ours does not);
2. the same from 8 threads at once (ours shares round trips: group commit);
3. ``log_metric`` buffered: ours ``durability="buffered"`` against MLflow's asynchronous logging
   (``synchronous=False``); both clocks stop after the final flush has committed everything;
4. ``log_batch`` of 10,000 points, durable on return: ours in one call (requests of 10,000), MLflow
   in calls of 1,000 (its limit per ``log_batch``);
5. creating components with 5 parameters and 5 metrics each (ours buffered, flushed before the
   clock stops; MLflow synchronous runs);
6. items 1 to 4 against ``mlflow server`` over HTTPS with its basic-auth app (a shared service
   with a credential on every call, as ours is), its SQLite journaled as ours in every one of its
   processes;
7. ``log_metric`` journaled, one caller: ours ``durability="journaled"`` (appended to a local
   journal file, no fsync, when the call returns; sent in batches in the background) against
   ``mlflow.log_metric`` (synchronous) with MLflow's SQLite journaled as ours (WAL,
   ``synchronous=NORMAL``: the commit is in the WAL file, not fsynced), in process and behind
   ``mlflow server``. Both survive a ``kill -9`` of the caller right after the call returns, neither
   a power loss of the client's machine. Timed: calls/s until the last call returns; and,
   reported separately, the seconds from the last call's return until its point is readable on the
   platform (ours: the background batch; MLflow: already committed);
8. the analytics DataFrame (``ExperimentAnalytics.dataframe()`` against ``mlflow.search_runs``) at
   1,000 and 10,000 components/runs. MLflow's 10,000 runs are copied in SQL from runs made through
   its API (making them one by one would take 15 minutes); what is timed is the search.

Every figure alternates ours and MLflow, at least 3 runs each (see ``_common``).
"""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import _sqlite_like_ours
from _common import alternate, figure, parser, repeats, save, version

from strongroom.core import launcher
from strongroom.core.config import Config
from strongroom.experiments import ExperimentAnalytics, Tracker, Trial
from strongroom.platform import initialize
from strongroom.sdk.session import Session

PARAMS = 5
METRICS = 5
THREADS = 8
DURABLE = "both: committed when the call returns (survives kill -9 of the caller)"


def _threads(count: int, work: Callable[[int], None]) -> None:
    pool = [threading.Thread(target=work, args=(k,)) for k in range(count)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()


class Ours:
    """Strongroom through its SDK, over HTTPS to a real server."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.components = 0
        self.columns: list[str] = []  # of the last analytics DataFrame

    def log_metric(self, durability: str, n: int, threads: int = 1) -> float:
        with Tracker.create(display_name=f"{durability}-{threads}", session=self.session, durability=durability) as t:
            self.session.experiments.flush()  # the creation is not part of what is timed
            per_thread = n // threads
            started = time.perf_counter()

            def work(k: int) -> None:
                for i in range(per_thread):
                    t.log_metric(f"loss-{k}", 1.0 / (i + 1), i)

            _threads(threads, work) if threads > 1 else work(0)
            t.flush()
            return per_thread * threads / (time.perf_counter() - started)

    def log_metric_journaled(self, n: int, reader: Session) -> dict[str, float]:
        """Calls/s until the last ``log_metric`` returned, and the seconds until ``reader`` (another
        session, with no writer of its own to flush) sees the last point on the platform."""
        with Tracker.create(display_name="journaled", session=self.session, durability="journaled") as t:
            self.session.experiments.flush()  # the creation (and the journal's opening) is not timed
            started = time.perf_counter()
            for i in range(n):
                t.log_metric("loss", 1.0 / (i + 1), i)
            returned = time.perf_counter()
            while not any(
                m.name == "loss" and m.count == n
                for m in reader.experiments.describe_component(t.trial_component_name).metrics
            ):
                time.sleep(0.01)
            readable = time.perf_counter()
        return {"calls": n / (returned - started), "readable": readable - returned}

    def log_batch(self, n: int) -> float:
        with Tracker.create(display_name="batch", session=self.session) as t:
            self.session.experiments.flush()
            points = [{"name": "batched", "value": i * 0.001, "step": i} for i in range(n)]
            started = time.perf_counter()
            self.session.experiments.log_batch(t.trial_component_name, points)
            return n / (time.perf_counter() - started)

    def create_components(self, trial: Trial, n: int) -> float:
        started = time.perf_counter()
        self._components(trial, n)
        self.session.experiments.flush()
        return n / (time.perf_counter() - started)

    def _components(self, trial: Trial, n: int) -> None:
        for _ in range(n):
            i = self.components
            self.components += 1
            with Tracker.create(display_name=f"component-{i}", trial=trial, session=self.session) as t:
                t.log_parameters({f"param{j}": i * j for j in range(PARAMS)})
                for j in range(METRICS):
                    t.log_metric(f"metric{j}", i * 0.01 + j, 0)

    def fill(self, trial: Trial, n: int) -> None:
        self._components(trial, n)
        self.session.experiments.flush()

    def dataframe(self, experiment: str, expected: int) -> float:
        started = time.perf_counter()
        frame = ExperimentAnalytics(experiment_name=experiment, session=self.session).dataframe()
        seconds = time.perf_counter() - started
        assert len(frame) == expected, (len(frame), expected)
        assert frame[f"metric{METRICS - 1} - Last"].notna().all() and frame["param1"].notna().all()
        self.columns = [str(c) for c in frame.columns]
        return len(frame) / seconds


class Peer:
    """MLflow on a SQLite file store: in process, or behind ``mlflow server`` (``tracking_uri``)."""

    def __init__(self, folder: Path, tracking_uri: str = "", *, like_ours: bool = False) -> None:
        os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
        os.environ["DO_NOT_TRACK"] = "true"
        import mlflow
        from mlflow.tracking import MlflowClient

        self.mlflow = mlflow
        self.folder = folder
        self.db = folder / "mlflow.db"
        if like_ours:
            _sqlite_like_ours.install(str(self.db))
        self.uri = tracking_uri or f"sqlite:///{self.db}"
        mlflow.set_tracking_uri(self.uri)
        self.client = MlflowClient(self.uri)
        self.experiment = self.client.create_experiment("bench", artifact_location=(folder / "artifacts").as_uri())
        self.runs = 0
        self.columns: list[str] = []  # of the last analytics DataFrame

    def activate(self) -> None:
        """Point MLflow's fluent API (process-wide) at this peer's store before using it."""
        self.mlflow.set_tracking_uri(self.uri)

    def log_metric(self, durability: str, n: int, threads: int = 1) -> float:
        self.activate()
        synchronous = durability == "durable"
        run = self.client.create_run(self.experiment)
        run_id = run.info.run_id
        per_thread = n // threads
        started = time.perf_counter()

        def work(k: int) -> None:
            if threads == 1:  # the fluent API, as a user writes it
                with self.mlflow.start_run(run_id=run_id):
                    for i in range(per_thread):
                        self.mlflow.log_metric(f"loss-{k}", 1.0 / (i + 1), step=i, synchronous=synchronous)
                    self.mlflow.flush_async_logging()
                return
            for i in range(per_thread):
                self.client.log_metric(run_id, f"loss-{k}", 1.0 / (i + 1), step=i, synchronous=synchronous)

        _threads(threads, work) if threads > 1 else work(0)
        self.mlflow.flush_async_logging()
        return per_thread * threads / (time.perf_counter() - started)

    def log_metric_journaled(self, n: int) -> dict[str, float]:
        """``log_metric_journaled`` of ``Ours`` for MLflow: synchronous calls (committed to its WAL
        when they return), then the seconds until a read sees the last point."""
        self.activate()
        run_id = self.client.create_run(self.experiment).info.run_id
        with self.mlflow.start_run(run_id=run_id):
            started = time.perf_counter()
            for i in range(n):
                self.mlflow.log_metric("loss", 1.0 / (i + 1), step=i, synchronous=True)
            returned = time.perf_counter()
        while len(self.client.get_metric_history(run_id, "loss")) < n:
            time.sleep(0.01)
        readable = time.perf_counter()
        return {"calls": n / (returned - started), "readable": readable - returned}

    def log_batch(self, n: int) -> float:
        self.activate()
        from mlflow.entities import Metric

        run_id = self.client.create_run(self.experiment).info.run_id
        now = int(time.time() * 1000)
        metrics = [Metric("batched", i * 0.001, now, i) for i in range(n)]
        started = time.perf_counter()
        for start in range(0, n, 1000):
            self.client.log_batch(run_id, metrics=metrics[start : start + 1000])
        return n / (time.perf_counter() - started)

    def create_components(self, experiment: str, n: int) -> float:
        self.activate()
        started = time.perf_counter()
        for _ in range(n):
            i = self.runs
            self.runs += 1
            with self.mlflow.start_run(experiment_id=experiment, run_name=f"component-{i}"):
                self.mlflow.log_params({f"param{j}": i * j for j in range(PARAMS)})
                self.mlflow.log_metrics({f"metric{j}": i * 0.01 + j for j in range(METRICS)}, step=0)
        return n / (time.perf_counter() - started)

    def new_experiment(self, name: str) -> str:
        self.activate()
        return str(self.mlflow.create_experiment(name, artifact_location=(self.folder / name).as_uri()))

    def copy_runs(self, source: str, target: str, total: int) -> None:
        """Fill ``target`` to ``total`` runs by copying the rows of ``source``'s runs in SQL."""
        with sqlite3.connect(self.db) as db:
            existing = db.execute("SELECT count(*) FROM runs WHERE experiment_id = ?", (target,)).fetchone()[0]
            templates = [r[0] for r in db.execute("SELECT run_uuid FROM runs WHERE experiment_id = ?", (source,))]
            tables = {
                t: [c[1] for c in db.execute(f"PRAGMA table_info({t})")]
                for t in ("runs", "params", "metrics", "latest_metrics", "tags")
            }
            for k in range(total - existing):
                template, new = templates[k % len(templates)], uuid.uuid4().hex
                for table, columns in tables.items():
                    replaced = {"run_uuid": new}
                    if table == "runs":
                        replaced.update(experiment_id=target, name=f"component-{existing + k}")
                    chosen = ["?" if c in replaced else f'"{c}"' for c in columns]
                    values = [replaced[c] for c in columns if c in replaced]
                    names = ", ".join(f'"{c}"' for c in columns)
                    # names come from MLflow's own schema (PRAGMA table_info), values are bound
                    statement = (
                        f"INSERT INTO {table} ({names}) SELECT {', '.join(chosen)} FROM {table} WHERE run_uuid = ?"  # noqa: S608
                    )
                    db.execute(
                        statement,
                        (*values, template),
                    )

    def dataframe(self, experiment: str, expected: int) -> float:
        self.activate()
        started = time.perf_counter()
        frame = self.mlflow.search_runs(experiment_ids=[experiment], max_results=100_000)
        seconds = time.perf_counter() - started
        assert len(frame) == expected, (len(frame), expected)
        # the same components as ours: every run carries its parameters and metrics
        assert frame[f"metrics.metric{METRICS - 1}"].notna().all() and frame["params.param1"].notna().all()
        self.columns = [str(c) for c in frame.columns]
        return len(frame) / seconds


class TrackingServer:
    """``mlflow server`` as a team would run it: TLS, the basic-auth app, SQLite.

    The like-for-like peer of Strongroom's server: both are shared services reached over HTTPS
    with a credential on every call. MLflow's credential cache is switched on (one PBKDF2 check
    per user and minute, as Strongroom keeps decisions), so the peer is not slowed by hashing;
    and its SQLite file is journaled as ours (WAL, ``synchronous=NORMAL``, in every process of the
    server through a ``sitecustomize`` of this benchmark), so that a durable call costs neither
    side an fsync. MLflow's default (a rollback journal, ``synchronous=FULL``) fsyncs several
    times per call and would make the comparison one of disks, not of servers.
    """

    USER, PASSWORD = "admin", "bench-password-1"
    settled_seconds = 0.0  # how long its start-up kept working after the health check answered

    def __init__(self, folder: Path, workers: int = 4) -> None:
        folder.mkdir(parents=True)
        key, cert = folder / "key.pem", folder / "cert.pem"
        _self_signed(key, cert)
        (folder / "auth.ini").write_text(
            "[mlflow]\ndefault_permission = EDIT\n"
            f"database_uri = sqlite:///{folder / 'auth.db'}\n"
            f"admin_username = {self.USER}\nadmin_password = {self.PASSWORD}\n"
            "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
            "auth_cache_ttl_seconds = 60\n"
        )
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.db = folder / "mlflow.db"
        site = folder / "site"
        site.mkdir()
        (site / "sitecustomize.py").write_text(_sqlite_like_ours.sitecustomize_source(self.db))
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(site), str(Path(__file__).parent)]),
            "MLFLOW_AUTH_CONFIG_PATH": str(folder / "auth.ini"),
            "MLFLOW_FLASK_SERVER_SECRET_KEY": uuid.uuid4().hex,
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "DO_NOT_TRACK": "true",
        }
        command = [
            str(Path(sys.executable).with_name("mlflow")), "server",
            "--backend-store-uri", f"sqlite:///{self.db}",
            "--default-artifact-root", str(folder / "artifacts"),
            "--host", "127.0.0.1", "--port", str(port), "--app-name", "basic-auth", "--workers", str(workers),
            "--uvicorn-opts", f"--ssl-keyfile {key} --ssl-certfile {cert}",
        ]  # fmt: skip
        self.log = (folder / "server.log").open("wb")
        self.process = subprocess.Popen(command, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self.uri = f"https://localhost:{port}"
        os.environ.update(
            MLFLOW_TRACKING_USERNAME=self.USER,
            MLFLOW_TRACKING_PASSWORD=self.PASSWORD,
            MLFLOW_TRACKING_SERVER_CERT_PATH=str(cert),
        )
        self._wait(cert)

    def _wait(self, cert: Path, timeout: float = 600.0) -> None:  # 4 workers importing MLflow on a loaded machine
        import requests

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mlflow server exited with {self.process.returncode}; see {self.log.name}")
            try:
                if requests.get(f"{self.uri}/health", verify=str(cert), timeout=2).ok:
                    self.settled_seconds = _settle(self.process.pid)
                    self._check_journal()
                    return
            except requests.RequestException:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"mlflow server did not answer within {timeout:g}s; see {self.log.name}")

    def _check_journal(self) -> None:
        """Fail unless the server's processes opened its SQLite file in WAL mode (a setting the
        file keeps): otherwise the sitecustomize did not run and the peer is not like ours."""
        with sqlite3.connect(self.db) as db:
            mode = db.execute("PRAGMA journal_mode").fetchone()[0]
        if mode != "wal":
            raise RuntimeError(f"mlflow server's SQLite file is in {mode} mode, not WAL; see {self.log.name}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


def _tree_cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) used so far by ``pid`` and its live descendants, from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    total, stack = 0.0, [pid]
    while stack:
        current = stack.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            for task in Path(f"/proc/{current}/task").iterdir():
                stack.extend(int(c) for c in (task / "children").read_text().split())
        except (OSError, ValueError):
            continue
    return total


def _settle(pid: int, idle: float = 0.05, window: float = 1.0, timeout: float = 300.0) -> float:
    """Wait until ``pid``'s process tree is idle (under ``idle`` CPU seconds in ``window``).

    ``mlflow server`` answers its health check once one web worker is up, while its other
    workers and its job runners (seven huey consumers) are still importing MLflow: tens of CPU
    seconds that, on 2 cores, fell on whatever was measured first (one of our durable runs at 6
    metrics/s). Returns how long it took.
    """
    started = time.monotonic()
    before = _tree_cpu_seconds(pid)
    while time.monotonic() - started < timeout:
        time.sleep(window)
        now = _tree_cpu_seconds(pid)
        if now - before < idle:
            break
        before = now
    return time.monotonic() - started


def _self_signed(key_path: Path, cert_path: Path) -> None:
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _start(folder: Path) -> tuple[launcher.ServerProcess, str]:
    config = Config(home=folder / "home", port=0)
    admin_token = initialize(config).token.secret
    server = launcher.start(config)
    with Session(url=server.url, token=admin_token, ca=server.ca) as admin:
        admin.teams.create("bench")
        admin.users.create("alice")
        admin.teams.add_member("bench", "alice", "DataScientist")
        token = admin.tokens.create("bench", user="alice").secret
    return server, token


def main() -> None:
    args = parser(__doc__ or "").parse_args()
    runs = repeats(args)
    if args.smoke:
        sizes: dict[str, Any] = {
            "durable": 40,
            "journaled": 100,
            "threads": 80,
            "buffered": 400,
            "batch": 2000,
            "components": 20,
            "frames": [20, 40],
        }
    else:
        sizes = {
            "durable": 300,
            "journaled": 1000,
            "threads": 800,
            "buffered": 1000,
            "batch": 10_000,
            "components": 100,
            "frames": [1000, 10_000],
        }
    folder = Path(tempfile.mkdtemp(prefix="sr-bench-tracking-"))
    os.environ["STRONGROOM_TRACKING_JOURNAL"] = str(folder / "journal")  # ours, journaled: not the user's
    server, token = _start(folder)
    figures: list[dict[str, Any]] = []
    try:
        tracking_server: TrackingServer | None = None
        try:
            peer: Peer | None = Peer(folder / "mlflow")
            relaxed: Peer | None = Peer(folder / "mlflow-wal", like_ours=True)
            # Smoke runs (CI) check that the peer works, not its speed: one worker starts in a
            # fraction of the time four take on two cores.
            tracking_server = TrackingServer(folder / "mlflow-server", workers=1 if args.smoke else 4)
            served: Peer | None = Peer(folder / "mlflow-client", tracking_server.uri)
        except ImportError:
            print("peer: mlflow is not installed (pip install -e '.[bench]'); peer figures are nan")
            peer = served = relaxed = None
        with Session(url=server.url, token=token, ca=server.ca) as session:
            ours = Ours(session)

            def pair(
                name: str, unit: str, mine: Callable[[], float], theirs: Callable[[], float], **extra: Any
            ) -> None:
                measured = alternate(mine, theirs if peer else None, runs)
                figures.append(figure(name, unit, measured, peer_name="MLflow, SQLite file store", **extra))

            def pair_server(name: str, mine: Callable[[], float], theirs: Callable[[], float], **extra: Any) -> None:
                measured = alternate(mine, theirs if served else None, runs)
                peer_name = "mlflow server (HTTPS, basic-auth, SQLite in WAL mode with synchronous=NORMAL, as ours)"
                figures.append(figure(name, "metrics/s", measured, peer_name=peer_name, **extra))

            n = sizes["durable"]
            pair(
                "tracking_log_metric_durable",
                "metrics/s",
                lambda: ours.log_metric("durable", n),
                lambda: peer.log_metric("durable", n),  # type: ignore[union-attr]
                what="log_metric, durable when it returns, one caller",
                ours_mode='Tracker(durability="durable")',
                durability="both: committed when the call returns (survives kill -9 of the caller)",
                peer_mode="mlflow.log_metric (synchronous)",
                points=n,
            )
            # the same against MLflow journaled as we are (WAL, synchronous=NORMAL): like for like on disk
            measured = alternate(
                lambda: ours.log_metric("durable", n),
                (lambda: relaxed.log_metric("durable", n)) if relaxed else None,  # type: ignore[union-attr]
                runs,
            )
            figures.append(
                figure(
                    "tracking_log_metric_durable_mlflow_wal_normal",
                    "metrics/s",
                    measured,
                    peer_name="MLflow, SQLite file store in WAL mode with synchronous=NORMAL (as ours)",
                    what="log_metric, durable when it returns, one caller, against MLflow journaled as ours",
                    ours_mode='Tracker(durability="durable")',
                    durability="both: committed when the call returns (survives kill -9 of the caller); "
                    "neither fsyncs per commit (WAL, synchronous=NORMAL)",
                    peer_mode="mlflow.log_metric (synchronous), its SQLite set to WAL + synchronous=NORMAL by an "
                    "SQLAlchemy connect listener in this benchmark",
                    points=n,
                )
            )
            with Session(socket=server.socket, token=token) as local:  # how notebooks and jobs reach it
                n = sizes["durable"]
                pair(
                    "tracking_log_metric_durable_unix_socket",
                    "metrics/s",
                    lambda: Ours(local).log_metric("durable", n),
                    lambda: peer.log_metric("durable", n),  # type: ignore[union-attr]
                    what="log_metric, durable when it returns, one caller, over the platform's Unix socket",
                    ours_mode='Tracker(durability="durable") over the Unix socket (as in notebooks and jobs)',
                    durability="both: committed when the call returns (survives kill -9 of the caller)",
                    peer_mode="mlflow.log_metric (synchronous)",
                    points=n,
                )
            n = sizes["threads"]
            pair(
                f"tracking_log_metric_durable_{THREADS}_threads",
                "metrics/s",
                lambda: ours.log_metric("durable", n, THREADS),
                lambda: peer.log_metric("durable", n, THREADS),  # type: ignore[union-attr]
                what=f"log_metric, durable when it returns, {THREADS} threads of one process",
                ours_mode='Tracker(durability="durable"), group commit',
                durability="both: committed when the call returns (survives kill -9 of the caller)",
                peer_mode="MlflowClient.log_metric (synchronous) from each thread",
                points=n,
            )
            n = sizes["buffered"]
            pair(
                "tracking_log_metric_buffered",
                "metrics/s",
                lambda: ours.log_metric("buffered", n),
                lambda: peer.log_metric("buffered", n),  # type: ignore[union-attr]
                what="log_metric, buffered, until the final flush has committed",
                ours_mode='Tracker(durability="buffered") + flush()',
                durability="both: queued and sent in the background; all committed when the clock stops",
                peer_mode="mlflow.log_metric(synchronous=False) + flush_async_logging()",
                points=n,
            )
            n = sizes["journaled"]
            with Session(url=server.url, token=token, ca=server.ca) as reader:
                for against, side, peer_name in (
                    (
                        "MLflow in process",
                        relaxed,
                        "MLflow, SQLite file store in WAL mode with synchronous=NORMAL (as ours)",
                    ),
                    (
                        "mlflow server",
                        served,
                        "mlflow server (HTTPS, basic-auth, SQLite in WAL mode with synchronous=NORMAL, as ours)",
                    ),
                ):
                    runs_ = alternate(
                        lambda: ours.log_metric_journaled(n, reader),
                        (lambda side=side: side.log_metric_journaled(n)) if side else None,  # type: ignore[misc]
                        runs,
                    )
                    stem = (
                        "tracking_log_metric_journaled" if side is relaxed else "tracking_server_log_metric_journaled"
                    )
                    common = {
                        "peer_name": peer_name,
                        "ours_mode": 'Tracker(durability="journaled") over HTTPS',
                        "peer_mode": (
                            "MLflow client (synchronous=True) to mlflow server over HTTPS, its SQLite set to WAL + "
                            "synchronous=NORMAL in every server process"
                            if side is served
                            else "mlflow.log_metric (synchronous), its SQLite set to WAL + synchronous=NORMAL"
                        ),
                        "durability": "both: written to a local file when the call returns, not fsynced (ours: the "
                        "tracking journal; MLflow: SQLite's WAL with synchronous=NORMAL); survives kill -9 of the "
                        "caller, not a power loss of its machine",
                        "points": n,
                    }
                    figures.append(
                        figure(
                            stem,
                            "metrics/s",
                            runs_,
                            "calls",
                            what=f"log_metric, journaled when it returns, one caller, {n:,} calls, against "
                            f"{against} journaled as ours",
                            **common,
                        )
                    )
                    figures.append(
                        figure(
                            f"{stem}_readable",
                            "s",
                            runs_,
                            "readable",
                            better="lower",
                            what=f"seconds from the last of {n:,} journaled log_metric calls returning until its "
                            f"point is readable on the platform, against {against} journaled as ours",
                            **common,
                        )
                    )
            # the same calls against MLflow's tracking server: a shared service over TLS with a
            # credential on every call, as Strongroom is (the in-process peer above has neither)
            for durability, threads, what in (
                ("durable", 1, "log_metric, durable when it returns, one caller"),
                ("durable", THREADS, f"log_metric, durable when it returns, {THREADS} threads of one process"),
                ("buffered", 1, "log_metric, buffered, until the final flush has committed"),
            ):
                n = sizes["threads" if threads > 1 else durability]
                suffix = f"_{threads}_threads" if threads > 1 else ""
                pair_server(
                    f"tracking_server_log_metric_{durability}{suffix}",
                    lambda d=durability, n=n, t=threads: ours.log_metric(d, n, t),  # type: ignore[misc]
                    lambda d=durability, n=n, t=threads: served.log_metric(d, n, t),  # type: ignore[misc,union-attr]
                    what=f"{what}, against mlflow server",
                    ours_mode=f'Tracker(durability="{durability}") over HTTPS',
                    peer_mode=f"MLflow client (synchronous={durability == 'durable'}) to mlflow server over HTTPS",
                    durability=(
                        DURABLE
                        if durability == "durable"
                        else "both: queued and sent in the background; all committed when the clock stops"
                    )
                    + "; neither fsyncs per commit (WAL, synchronous=NORMAL)",
                    points=n,
                )
            n = sizes["batch"]
            pair_server(
                "tracking_server_log_batch",
                lambda: ours.log_batch(n),
                lambda: served.log_batch(n),  # type: ignore[union-attr]
                what=f"log_batch of {n:,} metric points, durable when it returns, against mlflow server",
                ours_mode="experiments.log_batch (one call) over HTTPS",
                peer_mode="MlflowClient.log_batch (calls of 1,000) to mlflow server over HTTPS",
                durability=DURABLE + "; neither fsyncs per commit (WAL, synchronous=NORMAL)",
                points=n,
            )
            n = sizes["batch"]
            pair(
                "tracking_log_batch",
                "metrics/s",
                lambda: ours.log_batch(n),
                lambda: peer.log_batch(n),  # type: ignore[union-attr]
                what=f"log_batch of {n:,} metric points, durable when it returns",
                ours_mode="experiments.log_batch (one call)",
                durability="both: committed when the call returns (survives kill -9 of the caller)",
                peer_mode="MlflowClient.log_batch (calls of 1,000, its limit)",
                points=n,
            )
            session.experiments.create_experiment("bench")
            trial = Trial.create(trial_name="bench-trial", experiment_name="bench", session=session)
            peer_experiment = peer.new_experiment("components") if peer else ""
            n = sizes["components"]
            pair(
                "tracking_create_components",
                "components/s",
                lambda: ours.create_components(trial, n),
                lambda: peer.create_components(peer_experiment, n),  # type: ignore[union-attr]
                what="components (runs) with 5 parameters and 5 metrics each",
                ours_mode="Tracker (buffered), flushed before the clock stops",
                durability="ours buffered, MLflow synchronous; all committed when the clock stops",
                peer_mode="mlflow.start_run + log_params + log_metrics (synchronous)",
                components=n,
            )
            session.experiments.create_experiment("frames")
            frames_trial = Trial.create(trial_name="frames-trial", experiment_name="frames", session=session)
            peer_frames = peer.new_experiment("frames") if peer else ""
            filled = 0
            for rows in sizes["frames"]:
                ours.fill(frames_trial, rows - filled)
                filled = rows
                if peer:
                    peer.copy_runs(peer_experiment, peer_frames, rows)
                    peer.dataframe(peer_frames, rows)  # imports, first use
                ours.dataframe("frames", rows)  # first Arrow use
                pair(
                    f"tracking_analytics_dataframe_{rows // 1000}k" if rows >= 1000 else f"tracking_analytics_{rows}",
                    "rows/s",
                    lambda rows=rows: ours.dataframe("frames", rows),  # type: ignore[misc]
                    lambda rows=rows: peer.dataframe(peer_frames, rows),  # type: ignore[misc,union-attr]
                    what=f"analytics DataFrame of {rows:,} components",
                    ours_mode="ExperimentAnalytics(...).dataframe() over HTTPS (Arrow)",
                    durability="a read: n/a",
                    peer_mode="mlflow.search_runs (pandas)",
                    rows=rows,
                    # both a pandas DataFrame of the same rows, each with 5 parameters and 5 metrics;
                    # ours has more columns (min, max, avg, std, last, count per metric; MLflow: last)
                    columns={"ours": len(ours.columns), "peer": len(peer.columns) if peer else None},
                )
    finally:
        settled = tracking_server.settled_seconds if tracking_server else 0.0
        server.stop()
        if tracking_server:
            tracking_server.stop()
        shutil.rmtree(folder, ignore_errors=True)
    path = save(
        "tracking",
        figures,
        args.smoke,
        compared={
            "ours": {
                "strongroom": version("strongroom"),
                "database": "SQLite, WAL, synchronous=NORMAL (no fsync per commit: a commit survives kill -9 of "
                "the caller or of the platform, not a power loss of the platform's machine; see docs/experiments.md)",
                "transport": "HTTPS",
            },
            "peer": {
                "mlflow": version("mlflow"),
                "database": "SQLite file store, WAL, synchronous=NORMAL in every server process (a sitecustomize "
                "of the benchmark, checked: the file is in WAL mode), as ours: no fsync per commit",
                "transport": "in process",
            },
            "peer_like_ours": {
                "mlflow": version("mlflow"),
                "database": "SQLite file store, WAL, synchronous=NORMAL (set by the benchmark, as ours: no fsync "
                "per commit)",
                "transport": "in process",
                "figures": [
                    "tracking_log_metric_durable_mlflow_wal_normal",
                    "tracking_log_metric_journaled",
                    "tracking_log_metric_journaled_readable",
                ],
            },
            "server_peer": {
                "mlflow": version("mlflow"),
                "server": "mlflow server --app-name basic-auth, uvicorn with TLS, "
                + ("1 worker (smoke run)" if args.smoke else "4 workers (its default)"),
                "database": "SQLite file store, WAL, synchronous=NORMAL in every server process (a sitecustomize "
                "of the benchmark, checked: the file is in WAL mode), as ours: no fsync per commit",
                "credential cache": "auth_cache_ttl_seconds = 60",
                "transport": "HTTPS",
                "settled": "measured once its process tree was idle (its workers and job runners import MLflow "
                f"after the health check answers): {settled:.1f} s after it answered",
            },
            "durability": "per figure (its 'durability'): each mode of ours against the MLflow mode with the "
            "same guarantee; the crash tests in tests/integration/test_experiments.py check ours",
            "sizes": sizes,
            "threads": THREADS,
        },
    )
    print(f"summary: {path}")


if __name__ == "__main__":
    main()
