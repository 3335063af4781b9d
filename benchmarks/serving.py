"""An endpoint's latency, throughput, start time and memory: Strongroom (HTTPS + token + policy +
audit + 100% durable capture, sandboxed worker process) against `mlflow models serve` (plain HTTP,
no auth, no capture) and a bare FastAPI + uvicorn + the same booster over TLS (the floor: no auth,
no capture, the model in the server process).

Same run, same model (XGBoost with the workshop's hyperparameters, trained on the synthetic
credit-default data of ``strongroom.demo``), same single-row CSV request, same client (wrk, with a
Lua script that POSTs the row; ours adds the token header, MLflow's CSV reader needs a header line).
Each side is measured in turns (ABBA order over the three servers, at least 3 runs each): one
connection for latency (p50, p99), 16 connections for throughput and p99 under load. Also: start
time (ours: CreateEndpoint to InService; the peers: process start to the first 200) and the
resident memory of one serving worker process.

    .venv/bin/python benchmarks/serving.py            # full: 10 s per wrk run, 3 runs per side
    .venv/bin/python benchmarks/serving.py --smoke    # CI: 1 s per wrk run, one start each, no MLflow

MLflow is a benchmark-only peer (``pip install -e '.[bench]'``); without it (and in smoke mode, which
starts each server once) its figures say "not run".
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import numpy as np
import xgboost as xgb
from _common import Runs, figure, parser, repeats, sampling_load, save, version

from strongroom.algorithms.xgboost.archive import archive_bytes
from strongroom.core import launcher
from strongroom.core.config import Config
from strongroom.demo.data import FEATURES, LABEL, credit_default
from strongroom.platform import initialize
from strongroom.sdk.serving import DataCaptureConfig
from strongroom.sdk.session import Session

HERE = Path(__file__).parent
# The workshop's hyperparameters (notebook 01).
PARAMS = {
    "max_depth": 5,
    "eta": 0.2,
    "gamma": 4,
    "min_child_weight": 6,
    "subsample": 0.8,
    "objective": "binary:logistic",
    "verbosity": 0,
}
ROUNDS = 100
WORKER_MARK = "strongroom.serving.inside.worker"


def _model(rows: int) -> tuple[xgb.Booster, str]:
    """The workshop-like model and one held-out row as headerless CSV (the model's feature order)."""
    table = credit_default(rows + 1, seed=0)
    train, held_out = table.iloc[:rows], table.iloc[rows:]
    matrix = xgb.DMatrix(train[FEATURES].to_numpy(np.float32), label=train[LABEL].to_numpy())
    booster = xgb.train(PARAMS, matrix, num_boost_round=ROUNDS)
    row = ",".join(str(v) for v in held_out[FEATURES].iloc[0].tolist())
    return booster, row


def _lua(path: Path, body: str, headers: dict[str, str]) -> Path:
    lines = ['wrk.method = "POST"', f"wrk.body = {json.dumps(body)}"]
    lines += [f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def _ms(value: str) -> float:
    for unit, scale in (("us", 0.001), ("ms", 1.0), ("s", 1000.0), ("m", 60000.0)):
        if value.endswith(unit):
            return float(value[: -len(unit)]) * scale
    raise ValueError(value)


def _wrk(url: str, lua: Path, seconds: int, connections: int) -> dict[str, float]:
    args = ["wrk", f"-t{min(2, connections)}", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(lua), url]
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    out = done.stdout
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed at {url}: {done.stdout}{done.stderr}")
    if "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"wrk saw failed requests at {url}:\n{out}")
    figures: dict[str, float] = {}
    for line in out.splitlines():
        parts = line.split()
        if line.startswith("Requests/sec:"):
            figures["rps"] = float(parts[1])
        elif len(parts) == 2 and parts[0] in ("50%", "99%"):
            figures[f"p{parts[0][:-1]}_ms"] = _ms(parts[1])
    return figures


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _descendants(pid: int) -> list[tuple[int, str]]:
    """(pid, command line) of every process below ``pid``."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            try:
                out.append((child, (Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ").decode())))
            except OSError:
                continue
            todo.append(child)
    return out


def _post_ok(url: str, body: bytes, headers: dict[str, str], context: ssl.SSLContext | None) -> bool:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310 (http(s) only)
    try:
        with urllib.request.urlopen(request, timeout=5, context=context) as answer:  # noqa: S310
            return bool(answer.status == 200)
    except (OSError, urllib.error.URLError):
        return False


class Peer:
    """A peer server started as a process; ``start`` measures process start to the first 200."""

    def __init__(self, name: str, command: list[str], url: str, body: str, env: dict[str, str] | None = None) -> None:
        self.name, self.command, self.url, self.body, self.env = name, command, url, body, env
        self.process: subprocess.Popen[bytes] | None = None
        # the floor's throwaway certificate is not verified
        self.context = ssl._create_unverified_context() if url.startswith("https") else None  # noqa: S323
        self.log: Path | None = None

    def start(self, log: Path) -> float:
        self.log = log
        began = time.perf_counter()
        with log.open("wb") as out:
            # its own process group: MLflow's CLI runs uvicorn as a child, which must stop with it
            self.process = subprocess.Popen(
                self.command, stdout=out, stderr=subprocess.STDOUT, env=self.env, start_new_session=True
            )
        deadline = time.monotonic() + 120
        while not _post_ok(self.url, self.body.encode(), {"Content-Type": "text/csv"}, self.context):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not start: {log.read_text()[-2000:]}")
            time.sleep(0.02)
        return time.perf_counter() - began

    def worker_rss_mb(self) -> float:
        """The resident memory of the process that serves (for uvicorn --workers 1: the uvicorn one)."""
        assert self.process is not None
        serving = [pid for pid, cmd in _descendants(self.process.pid) if "uvicorn" in cmd]
        return _rss_mb(serving[-1] if serving else self.process.pid)

    def stop(self) -> None:
        if self.process is not None:
            group = self.process.pid  # the group this benchmark started (start_new_session)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(group, signal.SIGKILL)
                self.process.wait()
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:  # until no process of the group (uvicorn's child) is left
                try:
                    os.killpg(group, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.05)
        self.process = None


def _certificate(work: Path) -> tuple[Path, Path]:
    cert, key = work / "peer.pem", work / "peer.key"  # a throwaway certificate for the floor
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"),
            *("-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=localhost"),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def _mlflow(work: Path, booster: xgb.Booster, row: str) -> Peer | None:
    mlflow = Path(sys.executable).parent / "mlflow"
    if version("mlflow") == "not installed" or not mlflow.exists():
        return None
    env = {
        **os.environ,
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "true",
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",  # it runs `uvicorn` by name
        # Like for like: our worker and the floor predict on one thread. MLflow's DMatrix would start an
        # OpenMP team over every core, whose spin-waits cost a row tens of ms on a busy machine.
        "OMP_NUM_THREADS": "1",
    }
    model_dir = work / "mlflow-model"
    script = (
        "import sys, xgboost as xgb, mlflow.xgboost\n"
        "b = xgb.Booster(); b.load_model(sys.argv[1]); mlflow.xgboost.save_model(b, sys.argv[2])\n"
    )
    booster.save_model(work / "mlflow.ubj")
    subprocess.run(
        [sys.executable, "-c", script, str(work / "mlflow.ubj"), str(model_dir)],
        check=True,
        env=env,
        capture_output=True,
    )
    port = _free_port()
    body = ",".join(FEATURES) + "\n" + row  # MLflow's CSV reader takes the first line as the header
    command = [str(mlflow), "models", "serve", "-m", str(model_dir), "--env-manager", "local"]
    command += ["-h", "127.0.0.1", "-p", str(port)]
    return Peer("mlflow", command, f"http://127.0.0.1:{port}/invocations", body, env)


class Ours:
    """A Strongroom platform with one endpoint (1 worker, 100% capture) serving the model."""

    def __init__(self, work: Path, booster: xgb.Booster) -> None:
        home = work / "home"
        self.admin_token = initialize(Config(home=home, port=0)).token.secret
        self.server = launcher.start(Config(home=home, port=0))
        admin = Session(url=self.server.url, token=self.admin_token, ca=self.server.ca)
        admin.teams.create("bench")
        admin.users.create("mo")
        admin.users.create("ds")
        admin.teams.add_member("bench", "mo", "MLOpsEngineer")
        admin.teams.add_member("bench", "ds", "DataScienceAdmin")
        admin.teams.add_member("bench", "ds", "DataScientist")
        ds = Session(url=self.server.url, token=admin.tokens.create("b", user="ds").secret, ca=self.server.ca)
        ds.keys.create("bench", "bench-key")
        ds.buckets.create("bench-data", "bench", key="bench-key")
        ds.buckets.put_object("bench-data", "model/model.tar.gz", archive_bytes(booster.save_raw("ubj")))
        self.token = admin.tokens.create("b", user="mo").secret
        self.mo = Session(url=self.server.url, token=self.token, ca=self.server.ca)
        self.mo.models.create("bench", "m", model_data="sr://bench-data/model/model.tar.gz", kms_key="bench-key")
        variant = {"VariantName": "AllTraffic", "ModelName": "m", "InitialInstanceCount": 1}
        capture = DataCaptureConfig("sr://bench-data/capture")  # 100% sampling, input and output
        self.mo.endpoint_configs.create("bench", "c", [variant], capture, kms_key="bench-key")
        self.endpoint = ""

    def url(self) -> str:
        return f"{self.server.url}/endpoints/bench/{self.endpoint}/invocations"

    def start(self, name: str) -> float:
        """CreateEndpoint to InService (polled every 20 ms), in seconds."""
        began = time.perf_counter()
        self.mo.endpoints.create("bench", name, "c")
        while (status := self.mo.endpoints.describe("bench", name).status) == "Creating":
            time.sleep(0.02)
        if status != "InService":
            raise RuntimeError(f"endpoint {name} is {status}: {self.mo.endpoints.describe('bench', name)}")
        self.endpoint = name
        return time.perf_counter() - began

    def stop(self, name: str) -> None:
        self.mo.endpoints.delete("bench", name)
        deadline = time.monotonic() + 60
        while name in {e.name for e in self.mo.endpoints.list("bench")} and time.monotonic() < deadline:
            time.sleep(0.1)

    def worker_rss_mb(self) -> float:
        workers = [
            pid for pid, cmd in _descendants(self.server.process.pid) if WORKER_MARK in cmd and "bwrap" not in cmd
        ]
        return max(_rss_mb(pid) for pid in workers)

    def front_rss_mb(self) -> float:
        return _rss_mb(self.server.process.pid)


def _alternate(
    sides: list[tuple[str, Callable[[], dict[str, float]]]], runs: int, load: list[float]
) -> dict[str, list[dict[str, float]]]:
    """ABBA over several sides: forward on even rounds, backward on odd ones."""
    out: dict[str, list[dict[str, float]]] = {name: [] for name, _ in sides}
    with sampling_load(load):
        for i in range(runs):
            for name, measure in sides if i % 2 == 0 else list(reversed(sides)):
                out[name].append(measure())
    return out


def _pair(samples: dict[str, list[dict[str, float]]], peer: str, load: list[float]) -> Runs:
    return Runs(ours=samples["ours"], peer=samples.get(peer, []), load=load)


def main() -> None:
    args = parser(__doc__ or "").parse_args()
    runs = repeats(args)
    seconds = 1 if args.smoke else 10
    work = Path(tempfile.mkdtemp(prefix="sr-bench-serving-"))
    booster, row = _model(3000 if args.smoke else 20000)
    model_path = work / "model.ubj"
    booster.save_model(model_path)
    cert, key = _certificate(work)
    port = _free_port()
    bare = Peer(
        "bare",
        [sys.executable, str(HERE / "_bare_serving.py"), str(model_path), str(cert), str(key), str(port)],
        f"https://127.0.0.1:{port}/invocations",
        row,
    )
    mlflow = None if args.smoke else _mlflow(work, booster, row)  # smoke (CI) stays under its 120 s
    ours = Ours(work, booster)
    peers: dict[str, Peer] = {"bare": bare, **({"mlflow": mlflow} if mlflow else {})}
    try:
        # Start times, alternating: ours creates a fresh endpoint each time (the last one stays up).
        starts_load: list[float] = []
        start_sides: list[tuple[str, Callable[[], dict[str, float]]]] = []
        counter = iter(range(runs))

        def start_ours() -> dict[str, float]:
            i = next(counter)
            if ours.endpoint:
                ours.stop(ours.endpoint)
            return {"start_s": ours.start(f"e{i}")}

        def starter(peer: Peer) -> Callable[[], dict[str, float]]:
            def start() -> dict[str, float]:
                peer.stop()
                return {"start_s": peer.start(work / f"{peer.name}.log")}

            return start

        start_sides = [("ours", start_ours), *((name, starter(p)) for name, p in peers.items())]
        # Smoke (CI) starts each server once: the check is that it runs, and starts are the slow part.
        started = _alternate(start_sides, 1 if args.smoke else runs, starts_load)

        lua_ours = _lua(work / "ours.lua", row, {"Content-Type": "text/csv", "Authorization": f"Bearer {ours.token}"})
        luas = {name: _lua(work / f"{name}.lua", p.body, {"Content-Type": "text/csv"}) for name, p in peers.items()}

        def measure(url: str, lua: Path, rss: Callable[[], float]) -> Callable[[], dict[str, float]]:
            def run() -> dict[str, float]:
                one = _wrk(url, lua, seconds, 1)
                many = _wrk(url, lua, seconds, 16)
                return {
                    "p50_1_ms": one["p50_ms"],
                    "p99_1_ms": one["p99_ms"],
                    "rps_1": one["rps"],
                    "rps_16": many["rps"],
                    "p99_16_ms": many["p99_ms"],
                    "rss_mb": rss(),
                }

            return run

        load: list[float] = []
        sides = [("ours", measure(ours.url(), lua_ours, ours.worker_rss_mb))]
        sides += [(name, measure(p.url, luas[name], p.worker_rss_mb)) for name, p in peers.items()]
        measured = _alternate(sides, runs, load)
        front_rss = ours.front_rss_mb()
        stats = ours.mo.endpoints.describe("bench", ours.endpoint)

        vs_mlflow = _pair(measured, "mlflow", load)
        vs_bare = _pair(measured, "bare", load)
        starts_vs_mlflow = _pair(started, "mlflow", starts_load)
        mlflow_name = f"mlflow models serve {version('mlflow')} (HTTP, no auth, no capture)"
        bare_name = "bare FastAPI + uvicorn + booster over TLS (no auth, no capture)"
        figures = [
            figure(
                "serving_throughput_vs_mlflow",
                "req/s",
                vs_mlflow,
                "rps_16",
                better="higher",
                goal=None,
                what="single-row requests/s at 16 connections (goal >= 10x MLflow)",
                peer_name=mlflow_name,
            ),
            figure(
                "serving_throughput_vs_bare",
                "req/s",
                vs_bare,
                "rps_16",
                better="higher",
                what="single-row requests/s at 16 connections (goal >= 0.8x the floor)",
                peer_name=bare_name,
            ),
            figure(
                "serving_p50_1_connection",
                "ms",
                vs_bare,
                "p50_1_ms",
                better="lower",
                what="single-row p50 at 1 connection (goal <= 2 ms)",
                peer_name=bare_name,
            ),
            figure(
                "serving_p50_1_connection_vs_mlflow",
                "ms",
                vs_mlflow,
                "p50_1_ms",
                better="lower",
                what="single-row p50 at 1 connection",
                peer_name=mlflow_name,
            ),
            figure(
                "serving_p99_1_connection",
                "ms",
                vs_bare,
                "p99_1_ms",
                better="lower",
                what="single-row p99 at 1 connection",
                peer_name=bare_name,
            ),
            figure(
                "serving_p99_16_connections_vs_mlflow",
                "ms",
                vs_mlflow,
                "p99_16_ms",
                better="lower",
                what="p99 under load (16 connections)",
                peer_name=mlflow_name,
            ),
            figure(
                "serving_p99_16_connections",
                "ms",
                vs_bare,
                "p99_16_ms",
                better="lower",
                what="p99 under load (16 connections)",
                peer_name=bare_name,
            ),
            figure(
                "serving_start",
                "s",
                starts_vs_mlflow,
                "start_s",
                better="lower",
                what="start: ours CreateEndpoint to InService (goal <= 3 s); MLflow process start to first 200",
                peer_name=mlflow_name,
            ),
            figure(
                "serving_worker_rss",
                "MB",
                vs_mlflow,
                "rss_mb",
                better="lower",
                what="resident memory of one serving worker process",
                peer_name=mlflow_name,
            ),
        ]
        goals = {
            "throughput_vs_mlflow": ">= 10x",
            "throughput_vs_bare": ">= 0.8x",
            "p50_1_connection_ms": "<= 2",
            "in_service_s": "<= 3",
        }
        path = save(
            "serving",
            figures,
            args.smoke,
            compared={
                "ours": f"Strongroom {version('strongroom')}: HTTPS (TLS 1.2+), bearer token, InvokeEndpoint "
                "policy decision (kept for the token's lifetime), sandboxed worker process (1 instance), "
                "100% data capture (input and output) in an encrypted write-ahead spool, each answer sent only once "
                "the group commit (one fsync for every record waiting) that covers its record is durable",
                "mlflow": mlflow_name if mlflow else "not run (smoke, or not installed: pip install -e '.[bench]')",
                "bare": bare_name,
                "model": f"XGBoost {xgb.__version__}, workshop hyperparameters {PARAMS}, {ROUNDS} rounds, "
                "synthetic credit-default data (strongroom.demo), 23 features",
                "request": "one headerless CSV row (MLflow: the same row after a header line; its reader needs one)",
                "client": f"wrk, {seconds} s per run; 1 connection (latency), 16 (throughput, p99 under load)",
                "order": "ABBA over ours, bare, mlflow (forward on even runs, backward on odd)",
                "durability": "ours: an answer is sent once its captured record is fsynced (group commit); "
                "bare and MLflow capture nothing",
                "versions": {
                    "strongroom": version("strongroom"),
                    "xgboost": xgb.__version__,
                    "mlflow": version("mlflow") if mlflow else "not run",
                    "uvicorn": version("uvicorn"),
                },
                "goals": goals,
            },
            wrk_seconds=seconds,
            all_runs=measured,
            start_runs=started,
            control_plane_rss_mb=front_rss,
            capture=json.loads(stats.capture.model_dump_json()) if stats.capture else None,
            capture_records_per_fsync=(
                round(stats.capture.captured / stats.capture.flushes, 2)
                if stats.capture and stats.capture.flushes
                else None
            ),
            invocations=json.loads(stats.invocations.model_dump_json()) if stats.invocations else None,
        )
        print(f"summary: {path}")
    except Exception:
        print(ours.server.log()[-4000:], file=sys.stderr)
        for peer in peers.values():
            if peer.log is not None and peer.log.exists():
                print(peer.log.read_text()[-2000:], file=sys.stderr)
        raise
    finally:
        for peer in peers.values():
            peer.stop()
        ours.server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
