"""Shared benchmark plumbing: the one-line report format and the JSON summary."""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--smoke", action="store_true", help="tiny sizes (CI): checks the benchmark runs, not the figure")
    return p


def report(name: str, ours: float, peer: float, unit: str, **extra: Any) -> dict[str, Any]:
    ratio = ours / peer if peer else float("inf")
    print(f"{name}: ours={ours:.4g} {unit} peer={peer:.4g} {unit} ratio={ratio:.3f}", flush=True)
    return {"name": name, "ours": ours, "peer": peer, "unit": unit, "ratio": ratio, **extra}


def save(benchmark: str, figures: list[dict[str, Any]], smoke: bool, **context: Any) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / (f"{benchmark}.smoke.raw.json" if smoke else f"{benchmark}.json")
    payload = {
        "benchmark": benchmark,
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": __import__("os").cpu_count(), "python": platform.python_version()},
        "smoke": smoke,
        "figures": figures,
        **context,
    }
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path
