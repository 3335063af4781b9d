"""Console page latency, server-side, against the same data read through the API (the floor).

A real `strongroom up` (HTTPS on 127.0.0.1) with a Team Environment and ``--objects`` objects in
the team's data bucket (every put is also an audit event). Measured per side, sequentially on one
keep-alive connection, ``--requests`` times per run:

- ours: the console's data page (a bucket's first page of objects, rendered) and audit page (the
  first page of events), signed in with a console session;
- peer: the same reads through the API with a bearer token (``/api/v1/buckets/<b>/list`` and
  ``/api/v1/audit/events``, 25 items each, JSON).

The time is the server's own (``duration_ms`` of the request's line in ``logs/access.log``, found
by its request id), so the Python client's overhead is in neither side. The figure is the p95.
Not yet measured: 1,000 jobs, 100,000 audit events, and the MLflow UI's runs listing.
"""

from __future__ import annotations

import json
import re
import ssl
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from _common import alternate, figure, parser, repeats, save

from strongroom.core import launcher
from strongroom.core.config import Config
from strongroom.platform import initialize
from strongroom.sdk.session import Session

PAGE = 25


def _p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[-1] if len(values) > 1 else values[0]


def _server_ms(log: Path, ids: set[str]) -> list[float]:
    """``duration_ms`` of the access-log lines of these request ids (waits for them to be written)."""
    for _ in range(50):
        found = {}
        for line in log.read_text().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("request_id") in ids:
                found[record["request_id"]] = float(record["duration_ms"])
        if len(found) == len(ids):
            return list(found.values())
        time.sleep(0.1)
    raise RuntimeError(f"{len(ids) - len(found)} requests are missing from {log}")


def _console(url: str, ca: ssl.SSLContext, token: str) -> httpx.Client:
    client = httpx.Client(base_url=url, verify=ca, timeout=60)
    page = client.get("/console/signin")
    signin = re.search(r'name="signin_token" value="([^"]+)"', page.text)
    assert signin is not None
    done = client.post("/console/signin", data={"token": token, "signin_token": signin.group(1)})
    if done.status_code != 303:
        raise RuntimeError(f"console sign-in failed: {done.status_code}")
    return client


def main() -> None:
    p = parser(__doc__ or "")
    p.add_argument("--objects", type=int, default=10_000)
    p.add_argument("--requests", type=int, default=200)
    args = p.parse_args()
    objects, requests = (30, 20) if args.smoke else (args.objects, args.requests)
    with tempfile.TemporaryDirectory(prefix="sr-bench-console-") as tmp:
        home = Path(tmp) / "home"
        config = Config(home=home, port=0)
        admin_token = initialize(config).token.secret
        server = launcher.start(config)
        try:
            ca = ssl.create_default_context(cafile=str(server.ca))
            with Session(url=server.url, token=admin_token, ca=server.ca) as admin:
                admin.catalog.launch("team-environment", {"TeamName": "risk"}, wait=True, timeout=180)
                admin.users.create("alice")
                admin.teams.add_member("risk", "alice", "DataScientist")
                admin.users.create("ava")
                admin.users.grant_role("ava", "Auditor")
                tokens = {u: admin.tokens.create("bench", user=u).secret for u in ("alice", "ava")}
            with Session(url=server.url, token=tokens["alice"], ca=server.ca) as alice:
                row = b"20000,2,2,1,24,2,2,-1,-1,-2,-2,3913,3102,689,0,0,0,0,689,0,0,0,0,1\n"
                for i in range(objects):
                    alice.buckets.put_object("risk-data", f"raw/part-{i:05d}.csv", row)
            log = home / "logs" / "access.log"
            pages = {
                "data": (
                    "alice",
                    "/console/data/risk-data?prefix=raw/",
                    f"/api/v1/buckets/risk-data/list?prefix=raw/&delimiter=/&max_keys={PAGE}",
                ),
                "audit": ("ava", "/console/audit", f"/api/v1/audit/events?limit={PAGE}"),
            }
            consoles = {u: _console(server.url, ca, t) for u, t in tokens.items()}
            apis = {
                u: httpx.Client(base_url=server.url, verify=ca, timeout=60, headers={"authorization": f"Bearer {t}"})
                for u, t in tokens.items()
            }

            def measure(side: str) -> dict[str, float]:
                out = {}
                for name, (user, page, api) in pages.items():
                    client, path = (consoles[user], page) if side == "ours" else (apis[user], api)
                    ids = set()
                    for _ in range(requests):
                        rid = uuid.uuid4().hex
                        answer = client.get(path, headers={"x-request-id": rid})
                        if answer.status_code != 200:
                            raise RuntimeError(f"{path}: {answer.status_code}")
                        ids.add(rid)
                    out[name] = _p95(_server_ms(log, ids))
                return out

            runs = alternate(lambda: measure("ours"), lambda: measure("peer"), repeats(args))
            figures = [
                figure(
                    f"console_{name}_page_p95",
                    "ms",
                    runs,
                    key=name,
                    better="lower",
                    what=f"p95 server-side time of the console's {name} page vs the same {PAGE} items through the API",
                    peer_name="the API (JSON)",
                )
                for name in pages
            ]
            save(
                "console",
                figures,
                args.smoke,
                compared={"objects": objects, "requests_per_run": requests, "page": PAGE},
            )
            for client in (*consoles.values(), *apis.values()):
                client.close()
        finally:
            server.stop()


if __name__ == "__main__":
    main()
