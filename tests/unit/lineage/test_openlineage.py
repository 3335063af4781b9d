"""OpenLineage run events through the file transport and to a local HTTP receiver."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from strongroom.core.errors import ConfigurationError
from strongroom.lineage.models import ArtifactRef, GitCommit, JobLineage
from strongroom.lineage.openlineage import OpenLineageEmitter, build_transport, run_id_for

RECORD = JobLineage(
    job="srn:strongroom:risk:training-job/train-1",
    inputs=[ArtifactRef(uri="sr://risk-data/train.csv", name="train", version_id="v4", sha256="a" * 64)],
    outputs=[ArtifactRef(uri="sr://risk-data/model.tar.gz", type="Model", version_id="v1")],
    commit=GitCommit(repository="https://git.example.org/risk/credit.git", commit="0123abcd", branch="main"),
)


def test_file_transport_writes_start_and_complete(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    emitter = OpenLineageEmitter(build_transport(file=str(path)), namespace="bank")
    assert emitter.emit(RECORD, "START") and emitter.emit(RECORD, "COMPLETE")
    emitter.close()
    events = [json.loads(line) for line in path.read_text().splitlines()]
    assert [e["eventType"] for e in events] == ["START", "COMPLETE"]
    start, complete = events
    assert start["run"]["runId"] == complete["run"]["runId"] == run_id_for(RECORD.job)
    assert start["job"] == {**start["job"], "namespace": "bank", "name": RECORD.job}
    assert start["inputs"][0]["namespace"] == "sr://risk-data" and start["inputs"][0]["name"] == "train.csv"
    assert start["inputs"][0]["facets"]["version"]["datasetVersion"] == "v4"
    assert start["outputs"] == [] and complete["outputs"][0]["name"] == "model.tar.gz"
    assert complete["job"]["facets"]["sourceCodeLocation"]["version"] == "0123abcd"


class _Receiver(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        type(self).received.append({"path": self.path, "event": json.loads(body)})
        self.send_response(201)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return None  # keep the test output quiet


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict]]]:
    _Receiver.received = []
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/api/v1/lineage", _Receiver.received
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_http_transport_posts_a_fail_event(receiver: tuple[str, list[dict]]) -> None:
    url, received = receiver
    emitter = OpenLineageEmitter(build_transport(url=url))
    assert emitter.emit(RECORD, "FAIL", error="out of memory")
    emitter.close()
    [got] = received
    assert got["path"] == "/api/v1/lineage"
    assert got["event"]["eventType"] == "FAIL"
    assert got["event"]["run"]["facets"]["errorMessage"]["message"] == "out of memory"


def test_unreachable_endpoint_does_not_fail_the_job() -> None:
    emitter = OpenLineageEmitter(build_transport(url="http://127.0.0.1:9/api/v1/lineage", timeout=0.5))
    assert emitter.emit(RECORD, "START") is False
    emitter.close()


def test_configuration_rules() -> None:
    assert not OpenLineageEmitter(build_transport()).enabled
    with pytest.raises(ConfigurationError):
        build_transport(url="http://marquez.example/api/v1/lineage")
    with pytest.raises(ConfigurationError):
        build_transport(url="https://m/api", file="/tmp/x")
