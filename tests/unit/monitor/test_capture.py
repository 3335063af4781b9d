"""Captured requests back into rows, and the monitor job run on a window as the sandbox runs it."""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
from pathlib import Path

import pandas as pd
import pytest

from strongroom.demo.data import FEATURES, LABEL, credit_default
from strongroom.monitor.capture import window_rows
from strongroom.monitor.inside import job

UTC = dt.UTC


def _record(when: str, data: str, encoding: str = "CSV", content_type: str = "text/csv") -> str:
    part = {"observedContentType": content_type, "mode": "INPUT", "data": data, "encoding": encoding}
    return json.dumps({"captureData": {"endpointInput": part}, "eventMetadata": {"inferenceTime": when}})


def test_rows_of_every_encoding_inside_the_half_open_window(tmp_path: Path) -> None:
    capture = tmp_path / "a.jsonl"
    capture.write_text(
        "\n".join(
            [
                _record("2026-12-06T10:59:59.999Z", "1,2\n3,4"),
                _record("2026-12-06T11:00:00.000Z", json.dumps({"instances": [[5, 6.5]]}), "JSON", "application/json"),
                _record("2026-12-06T11:00:01.000Z", base64.b64encode(b"7,8").decode(), "BASE64"),
                _record("2026-12-06T11:01:00.000Z", "9,10"),  # the window's end: outside
                "not json",
            ]
        )
    )
    out = io.BytesIO()
    seen = window_rows(
        [capture], dt.datetime(2026, 12, 6, 10, 59, tzinfo=UTC), dt.datetime(2026, 12, 6, 11, 1, tzinfo=UTC), out
    )
    assert out.getvalue().decode().splitlines() == ["1,2", "3,4", "5,6.5", "7,8"]
    assert (seen.records, seen.rows, seen.outside) == (3, 4, 1)


def _write_capture(folder: Path, frame: pd.DataFrame, when: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rows = frame.to_csv(header=False, index=False).strip()
    (folder / "c.jsonl").write_text(_record(when, rows) + "\n")


def test_the_job_baselines_then_flags_a_drifted_window(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = credit_default(3000, seed=0)
    dataset = tmp_path / "in" / "baseline"
    dataset.mkdir(parents=True)
    data.rename(columns={LABEL: "Label"})[["Label", *FEATURES]].to_csv(dataset / "train.csv", index=False)
    monkeypatch.setenv("SM_CHANNEL_BASELINE", str(dataset))
    baseline_out = tmp_path / "baseline-out"
    job.run({"mode": "baseline", "header": "true", "excluded_columns": '["Label"]'}, baseline_out)
    statistics = json.loads((baseline_out / "statistics.json").read_text())
    assert [f["name"] for f in statistics["features"]] == FEATURES

    monkeypatch.setenv("SM_CHANNEL_BASELINE_STATISTICS", str(baseline_out / "statistics.json"))
    monkeypatch.setenv("SM_CHANNEL_BASELINE_CONSTRAINTS", str(baseline_out / "constraints.json"))
    monkeypatch.setattr(job, "INPUT", tmp_path / "in")
    drifted = credit_default(1000, seed=1)[FEATURES].astype(float)
    drifted["LIMIT_BAL"] /= 1000
    _write_capture(tmp_path / "in" / "capture" / "AllTraffic" / "2026/12/06/10", drifted, "2026-12-06T10:30:00.000Z")
    window = {"mode": "analysis", "window_start": "2026-12-06T10:00:00Z", "window_end": "2026-12-06T11:00:00Z"}
    result = job.run(window, tmp_path / "out")
    assert result["status"] == "CompletedWithViolations"
    violations = json.loads((tmp_path / "out" / "constraint_violations.json").read_text())["violations"]
    assert {v["feature_name"] for v in violations} == {"LIMIT_BAL"}
    assert (tmp_path / "out" / "report.html").read_text().startswith("<!DOCTYPE html>")

    empty = job.run(
        {**window, "window_start": "2026-12-06T11:00:00Z", "window_end": "2026-12-06T12:00:00Z"}, tmp_path / "e"
    )
    assert empty["status"] == "NoData"
    assert json.loads((tmp_path / "e" / "constraint_violations.json").read_text()) == {"violations": []}
