"""The explain benchmark runs end to end at smoke size and reports in the house format."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "explain.py"
LINE = re.compile(r"^(?P<name>[a-z0-9_]+): ours=\S+ (?P<unit>\S+) peer=\S+ (?P=unit) ratio=\S+$")


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_explain_benchmark_smoke() -> None:
    out = SCRIPT.parent / "results" / "explain.smoke.raw.json"  # where the harness writes a smoke run
    run = subprocess.run(
        [sys.executable, str(SCRIPT), "--smoke"],
        capture_output=True,
        text=True,
        timeout=280,
        check=True,
    )
    figures = [m.group("name") for m in map(LINE.match, run.stdout.splitlines()) if m]
    assert figures == [
        "exact_shap_2k",
        "per_row_vs_kernel",
        "stream_20k_peak_rss",
        "stream_20k_time",
        "dask_2_workers",
    ]
    summary = json.loads(out.read_text())
    assert summary["smoke"] is True
    by_name = {f["name"]: f for f in summary["figures"]}
    assert by_name["exact_shap_2k"]["max_abs_difference"] <= 1e-4
    assert by_name["stream_20k_peak_rss"]["top_feature"] == "PAY_0"
