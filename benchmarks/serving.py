"""An endpoint's latency and throughput: Strongroom (HTTPS + token + policy + audit + 100% durable
capture, sandboxed worker) against a bare FastAPI + uvicorn + the same booster over TLS (the floor:
no auth, no capture, the model in the server process).

Same model (XGBoost, 23 features, 100 rounds, depth 5), same single-row CSV request, same client
(wrk): one connection for latency (p50, p99), 16 connections for throughput. Also: seconds from
CreateEndpoint to InService. (`mlflow models serve` is not installed here; it is not measured.)
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import xgboost as xgb
from _common import parser, report, save

from strongroom.algorithms.xgboost.archive import archive_bytes
from strongroom.core import launcher
from strongroom.core.config import Config
from strongroom.platform import initialize
from strongroom.sdk.serving import DataCaptureConfig
from strongroom.sdk.session import Session

HERE = Path(__file__).parent
ROW = "20000,2,2,1,24,2,2,-1,-1,-2,-2,3913,3102,689,0,0,0,0,689,0,0,0,0"


def _booster(rows: int) -> xgb.Booster:
    rng = np.random.default_rng(0)
    features = rng.normal(size=(rows, 23)).astype(np.float32)
    label = (features[:, 0] + rng.normal(size=rows) > 0).astype(int)
    params = {"max_depth": 5, "eta": 0.2, "objective": "binary:logistic", "verbosity": 0}
    return xgb.train(params, xgb.DMatrix(features, label=label), num_boost_round=100)


def _wrk(url: str, seconds: int, connections: int, token: str, work: Path) -> dict[str, float]:
    lua = work / "post.lua"
    lua.write_text(f'wrk.method = "POST"\nwrk.body = "{ROW}"\nwrk.headers["Content-Type"] = "text/csv"\n')
    args = ["wrk", f"-t{min(2, connections)}", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(lua)]
    if token:
        args += ["-H", f"Authorization: Bearer {token}"]
    out = subprocess.run([*args, url], capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in out:
        raise RuntimeError(f"wrk saw failed requests:\n{out}")
    figures: dict[str, float] = {"socket_errors": float("Socket errors" in out)}
    for line in out.splitlines():
        parts = line.split()
        if line.startswith("Requests/sec:"):
            figures["rps"] = float(parts[1])
        elif len(parts) == 2 and parts[0] in ("50%", "99%"):
            value = parts[1]
            scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
            unit = next(u for u in ("us", "ms", "s") if value.endswith(u))
            figures[f"p{parts[0][:-1]}_ms"] = float(value[: -len(unit)]) * scale[unit]
    return figures


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    args = parser(__doc__ or "").parse_args()
    seconds = 1 if args.smoke else 10
    work = Path(tempfile.mkdtemp(prefix="sr-bench-serving-"))
    home = work / "home"
    booster = _booster(2000)
    model_path = work / "model.ubj"
    booster.save_model(model_path)
    token = initialize(Config(home=home, port=0)).token.secret
    server = launcher.start(Config(home=home, port=0))
    bare: subprocess.Popen[bytes] | None = None
    try:
        admin = Session(url=server.url, token=token, ca=server.ca)
        admin.teams.create("bench")
        admin.users.create("mo")
        admin.users.create("ds")
        admin.teams.add_member("bench", "mo", "MLOpsEngineer")
        admin.teams.add_member("bench", "ds", "DataScienceAdmin")
        admin.teams.add_member("bench", "ds", "DataScientist")
        ds = Session(url=server.url, token=admin.tokens.create("b", user="ds").secret, ca=server.ca)
        ds.keys.create("bench", "bench-key")
        ds.buckets.create("bench-data", "bench", key="bench-key")
        ds.buckets.put_object("bench-data", "model/model.tar.gz", archive_bytes(booster.save_raw("ubj")))
        mo_token = admin.tokens.create("b", user="mo").secret
        mo = Session(url=server.url, token=mo_token, ca=server.ca)
        mo.models.create("bench", "m", model_data="sr://bench-data/model/model.tar.gz", kms_key="bench-key")
        variant = {"VariantName": "AllTraffic", "ModelName": "m", "InitialInstanceCount": 1}
        capture = DataCaptureConfig("sr://bench-data/capture")
        mo.endpoint_configs.create("bench", "c", [variant], capture, kms_key="bench-key")
        start = time.perf_counter()
        mo.endpoints.create("bench", "e", "c")
        mo.endpoints.wait("bench", "e")
        in_service = time.perf_counter() - start
        url = f"{server.url}/endpoints/bench/e/invocations"
        ours_1 = _wrk(url, seconds, 1, mo_token, work)
        ours_16 = _wrk(url, seconds, 16, mo_token, work)
        captured = mo.endpoints.describe("bench", "e").capture

        cert, key = work / "peer.pem", work / "peer.key"  # a throwaway certificate for the floor
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                str(key),
                "-out",
                str(cert),
                "-days",
                "1",
                "-subj",
                "/CN=localhost",
            ],
            check=True,
            capture_output=True,
        )
        port = _free_port()
        bare = subprocess.Popen(
            [sys.executable, str(HERE / "_bare_serving.py"), str(model_path), str(cert), str(key), str(port)]
        )
        peer_url = f"https://127.0.0.1:{port}/invocations"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        peer_1 = _wrk(peer_url, seconds, 1, "", work)
        peer_16 = _wrk(peer_url, seconds, 16, "", work)
        figures: list[dict[str, Any]] = [
            report("serving_p50_1_connection", ours_1["p50_ms"], peer_1["p50_ms"], "ms"),
            report("serving_p99_16_connections", ours_16["p99_ms"], peer_16["p99_ms"], "ms"),
            report("serving_throughput_16_connections", ours_16["rps"], peer_16["rps"], "req/s"),
            report("serving_in_service", in_service, in_service, "s", note="CreateEndpoint to InService; no peer"),
        ]
        figures[-2]["socket_errors"] = {"ours": ours_16["socket_errors"], "peer": peer_16["socket_errors"]}
        path = save(
            "serving",
            figures,
            args.smoke,
            wrk_seconds=seconds,
            capture=json.loads(captured.model_dump_json()),
            peer="FastAPI + uvicorn + booster over TLS; mlflow not installed",
        )
        print(f"summary: {path}")
    except Exception:
        print(server.log()[-4000:], file=sys.stderr)
        raise
    finally:
        if bare is not None:
            bare.terminate()
            bare.wait(10)
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
