"""`strongroom demo` end to end: the workshop notebooks executed in sandboxed kernels."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from strongroom.cli.main import app
from strongroom.demo.data import credit_default


def _cells(path: Path) -> list[dict]:
    return [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]


def _text(cell: dict) -> str:
    parts = []
    for output in cell.get("outputs", []):
        text = output.get("text", "")
        parts.append("".join(text) if isinstance(text, list) else text)
    return "".join(parts)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_demo_runs_the_workshop_in_sandboxed_notebooks(tmp_path: Path) -> None:
    report = tmp_path / "report"
    result = CliRunner().invoke(app, ["demo", "--home", str(tmp_path / "home"), "--report-dir", str(report)])
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "home" / "run" / "server.json").exists()  # the platform was stopped

    for name in ("00_PlatformAdmin-Workflow.ipynb", "01_DataScientist-Workflow.ipynb"):
        cells = _cells(report / name)
        assert cells and all(c["execution_count"] for c in cells), name
        assert not any(o.get("output_type") == "error" for c in cells for o in c.get("outputs", [])), name

    data_scientist = _cells(report / "01_DataScientist-Workflow.ipynb")
    no_internet = _text(data_scientist[0])
    assert "no route to https://pypi.org/simple/" in no_internet and "REACHED" not in no_internet
    assert "running as uid 1000" in no_internet  # non-root, inside the sandbox
    assert "token kind: execution" in _text(data_scientist[1])

    summary = json.loads((report / "summary.json").read_text())
    assert 0.75 <= float(summary["test_auc"]) <= 0.85
    assert summary["top_shap_features"][0].startswith("PAY_")
    lineage = "\n".join(summary["lineage"])
    assert "sr://risk-data/raw/credit_default.csv" in lineage  # the model's lineage reaches the raw data...
    assert "Commit: git+" in lineage  # ...and the data scientist's commit
    assert "network isolation" in summary["guardrail"]
    assert summary["detective"]["status"] == "Stopped" and "detective control" in summary["detective"]["reason"]
    assert summary["audit"]["ok"] is True
    admin = "\n".join(_text(c) for c in _cells(report / "00_PlatformAdmin-Workflow.ipynb"))
    assert "guardrail-network-isolation" in admin and "enforce-network-isolation" in admin
    assert "audit chain: OK" in admin
    assert "<h1>" in (report / "summary.html").read_text()

    # DESIGN invariant 1: after the whole workflow no input row is on disk in plaintext anywhere
    # in the platform home (buckets, job scratch, notebook volumes, git, logs, the database).
    home = tmp_path / "home"
    assert not any(os.path.ismount(p) for p in home.rglob("home"))  # everything was unmounted
    raw_lines = credit_default(n=30000, seed=0).to_csv().splitlines()
    rows = [line.encode() for line in raw_lines[1::1500]]  # 20 rows spread over the file
    for path in (p for p in home.rglob("*") if p.is_file()):
        data = path.read_bytes()
        assert not any(row in data for row in rows), f"an input row in plaintext in {path}"
