"""Every benchmark runs in smoke mode and prints its figures in the agreed format."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

# explain.py has its own smoke test, which also checks its figures (tests/e2e/test_benchmark_explain_smoke.py)
CHECKED_ELSEWHERE = {"explain.py"}
BENCHMARKS = sorted(
    p
    for p in (Path(__file__).parents[2] / "benchmarks").glob("*.py")
    if not p.name.startswith("_") and p.name not in CHECKED_ELSEWHERE
)
LINE = re.compile(r"^[a-z0-9_.-]+: ours=\S+ \S+ peer=\S+ \S+ ratio=\S+$", re.M)


@pytest.mark.slow
@pytest.mark.timeout(600)  # a smoke run starts servers and peers: over the suite's 120 s on a busy machine
@pytest.mark.parametrize("script", BENCHMARKS, ids=lambda p: p.stem)
def test_benchmark_smoke(script: Path) -> None:
    done = subprocess.run([sys.executable, str(script), "--smoke"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert LINE.search(done.stdout), done.stdout
