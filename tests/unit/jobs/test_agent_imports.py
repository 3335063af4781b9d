"""The job agent stays light: the built-in XGBoost, started early, imports the numeric libraries
while the agent downloads the inputs; were the agent to import them too, that second of CPU would
sit on the job's critical path (before the algorithm is told to start) and beside the algorithm's
own imports on the sandbox's cores."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("xgboost", "numpy", "pyarrow", "pandas", "scipy")
# The SDK's other domains: a session made for downloads and uploads needs none of them.
OTHER_SDK = tuple(f"strongroom.sdk.{m}" for m in ("tracking", "lineage", "catalog", "serving", "monitor", "jobs"))

# Everything the agent does between starting the algorithm and telling it to go, but the download
# itself: the spec's models, the HTTP client, the code to run, the resume note.
_AGENT_PATH = """
import json, sys
from strongroom.jobs.inside.agent import Agent
config = json.loads(sys.argv[1])
agent = Agent(config, control=sys.stdout)
from strongroom.sdk.session import Session
session = Session(socket="/nonexistent/api.sock", token="t")  # as agent.session() makes it
session.buckets
command = agent.fetch_code()
note = agent.resume_note()
session.close()
unwanted = sys.argv[2].split(",")
print(json.dumps(sorted(m for m in sys.modules if m in unwanted or m.split(".")[0] in unwanted)))
"""


def test_the_agent_imports_neither_the_algorithms_libraries_nor_the_sdk_it_does_not_use() -> None:
    spec = {
        "name": "xgb",
        "team": "risk",
        "kind": "training",
        "code": {"algorithm": "xgboost"},
        "hyperparameters": {"num_round": 10},
        "inputs": [{"name": "train", "source": "sr://risk-data/train", "content_type": "text/csv"}],
        "outputs": [{"name": "model", "destination": "sr://risk-data/models"}],
        "security": {"network_isolation": True, "volume_kms_key": "risk-key"},
    }
    config = json.dumps({"spec": spec, "inputs": []})
    done = subprocess.run(
        [sys.executable, "-c", _AGENT_PATH, config, ",".join(HEAVY + OTHER_SDK)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(done.stdout.splitlines()[-1]) == []
