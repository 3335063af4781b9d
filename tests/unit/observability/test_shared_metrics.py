"""`up --workers N`: a process's metrics must build and scrape while a sibling's file is still empty."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SCRAPE = """
from strongroom.core.config import Config
from strongroom.observability.metrics import Metrics, shared_between_processes
from strongroom.platform import initialize
from strongroom.db.engine import Database
import sys
config = Config(home=__import__("pathlib").Path(sys.argv[1]), port=0)
initialize(config)
assert shared_between_processes()
metrics = Metrics(Database(config.effective_database_url))
metrics.request("GET", "/api/v1/status", 200, 0.01)
print(metrics.render().decode())
"""


def test_a_sibling_file_not_yet_sized_does_not_stop_a_process_or_a_scrape(tmp_path: Path) -> None:
    shared = tmp_path / "metrics"
    shared.mkdir()
    (shared / "counter_4242.db").write_bytes(b"")  # a sibling between creating and sizing its file
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(shared)}
    done = subprocess.run(
        [sys.executable, "-c", SCRAPE, str(tmp_path / "home")], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert 'strongroom_http_requests_total{method="GET",route="/api/v1/status",status="200"} 1.0' in done.stdout
