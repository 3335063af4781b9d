"""Shared benchmark harness: alternate ours and the peer, repeat, summarise, report, save.

Every benchmark measures through ``alternate``: it runs ours and the peer in turns (ABBA order,
so neither side always runs first on a warm or a cold machine), at least ``MIN_REPEATS`` times
each, while a sampler records the 1-minute load average. ``figure`` turns the runs into one
figure: the median of each side, their spread (min, max, interquartile range), the ratio of the
medians and the load during the runs; it prints the agreed line
``<name>: ours=<x> <unit> peer=<y> <unit> ratio=<x/y>`` and a second line with the spread.
``save`` writes the figures and what was compared (versions, modes, durability, sizes) to
``benchmarks/results/<benchmark>.json``, the file ``tools/perf_table.py`` renders into README.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"
MIN_REPEATS = 3
HARNESS = 2
Measure = Callable[[], "Mapping[str, float] | float"]


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--smoke", action="store_true", help="tiny sizes (CI): checks the benchmark runs, not the figure")
    p.add_argument("--repeats", type=int, default=MIN_REPEATS, help=f"runs per side (at least {MIN_REPEATS})")
    return p


def repeats(args: argparse.Namespace) -> int:
    """Runs per side: ``--repeats``, never fewer than ``MIN_REPEATS`` for a figure.

    A smoke run (CI) checks that the benchmark runs end to end and prints its line; it produces
    no figure (its JSON is ``*.smoke.raw.json``, never committed or rendered), so one run per side.
    """
    if getattr(args, "smoke", False):
        return 1
    return max(MIN_REPEATS, int(getattr(args, "repeats", MIN_REPEATS)))


def version(package: str) -> str:
    """The installed version of ``package``, or ``"not installed"``."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _load() -> float:
    return os.getloadavg()[0]


@dataclass
class Runs:
    """The samples of both sides (one mapping per run) and the load average seen meanwhile."""

    ours: list[dict[str, float]] = field(default_factory=list)
    peer: list[dict[str, float]] = field(default_factory=list)
    load: list[float] = field(default_factory=list)

    def values(self, side: str, key: str) -> list[float]:
        return [run[key] for run in getattr(self, side) if key in run]


@contextmanager
def sampling_load(into: list[float], every: float = 1.0) -> Iterator[None]:
    """Sample the 1-minute load average every ``every`` seconds while the block runs."""
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(every):
            into.append(_load())

    into.append(_load())
    thread = threading.Thread(target=sample, name="load-sampler", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        into.append(_load())


def _as_sample(result: Mapping[str, float] | float) -> dict[str, float]:
    if isinstance(result, Mapping):
        return {k: float(v) for k, v in result.items()}
    return {"value": float(result)}


def alternate(ours: Measure, peer: Measure | None, runs: int, *, runs_into: Runs | None = None) -> Runs:
    """Run ``ours`` and ``peer`` in turns, ``runs`` times each (ABBA order), sampling the load.

    Each callable returns one number (key ``"value"``) or a mapping of named numbers (one per
    figure it measures). ``peer=None`` measures ours alone (a figure against a goal).
    """
    if runs < 1:
        raise ValueError("runs must be at least 1")
    out = runs_into or Runs()
    sides: list[tuple[str, Measure]] = [("ours", ours)] + ([("peer", peer)] if peer is not None else [])
    with sampling_load(out.load):
        for i in range(runs):
            for side, measure in sides if i % 2 == 0 else list(reversed(sides)):
                getattr(out, side).append(_as_sample(measure()))
    return out


def alternate_sides(
    sides: Sequence[tuple[str, Measure]], runs: int, load: list[float]
) -> dict[str, list[dict[str, float]]]:
    """``alternate`` over more than two sides: each in turn, forward on even rounds and backward
    on odd ones, ``runs`` times each, sampling the load into ``load``.

    For figures that compare sides of different pairs with each other (e.g. our 2 processes
    against our 1): measured in the same rounds, no side always runs before the other on a
    machine whose load drifts. ``Runs(ours=out[a], peer=out[b], load=load)`` makes a figure.
    """
    if runs < 1:
        raise ValueError("runs must be at least 1")
    out: dict[str, list[dict[str, float]]] = {name: [] for name, _ in sides}
    with sampling_load(load):
        for i in range(runs):
            for name, measure in sides if i % 2 == 0 else list(reversed(sides)):
                out[name].append(_as_sample(measure()))
    return out


def _spread(values: list[float]) -> dict[str, float | int | None]:
    if not values:
        return {"median": None, "min": None, "max": None, "q1": None, "q3": None, "n": 0}
    ordered = sorted(values)
    q1, q3 = (
        (statistics.quantiles(ordered, n=4, method="inclusive")[i] for i in (0, 2))
        if len(values) > 1
        else (
            ordered[0],
            ordered[0],
        )
    )
    return {
        "median": statistics.median(ordered),
        "min": ordered[0],
        "max": ordered[-1],
        "q1": q1,
        "q3": q3,
        "n": len(values),
    }


def _fmt(value: float | int | None) -> str:
    return "nan" if value is None else f"{value:.4g}"


def report(name: str, ours: float, peer: float, unit: str, **extra: Any) -> dict[str, Any]:
    """Print the agreed one-line figure and return it as a dict (no spread: prefer ``figure``)."""
    ratio = ours / peer if peer else float("inf")
    print(f"{name}: ours={ours:.4g} {unit} peer={peer:.4g} {unit} ratio={ratio:.3f}", flush=True)
    return {"name": name, "ours": ours, "peer": peer, "unit": unit, "ratio": ratio, **extra}


def figure(
    name: str,
    unit: str,
    runs: Runs,
    key: str = "value",
    *,
    better: str = "higher",
    goal: float | None = None,
    what: str = "",
    peer_name: str = "",
    **extra: Any,
) -> dict[str, Any]:
    """One figure from ``runs[key]``: medians, spread, ratio of medians, load; printed and returned.

    ``better`` says which way is good ("higher" for throughput, "lower" for time). Without peer
    runs, ``goal`` stands in for the peer and the figure says so (``peer_kind = "goal"``).
    """
    if better not in ("higher", "lower"):
        raise ValueError("better is 'higher' or 'lower'")
    ours = _spread(runs.values("ours", key))
    peer = _spread(runs.values("peer", key))
    peer_kind = "measured"
    if peer["n"] == 0:
        if goal is None:
            peer_kind = "not run"
        else:
            peer_kind = "goal"
            peer = {"median": goal, "min": goal, "max": goal, "q1": goal, "q3": goal, "n": 0}
    o, p = ours["median"], peer["median"]
    ratio = (o / p) if (o is not None and p) else None
    nan = float("nan")
    print(
        f"{name}: ours={_fmt(o)} {unit} peer={_fmt(p)} {unit} ratio={'nan' if ratio is None else f'{ratio:.3f}'}",
        flush=True,
    )
    load = _spread(runs.load)
    print(
        f"  {name}: ours min/max {_fmt(ours['min'])}/{_fmt(ours['max'])}, peer min/max "
        f"{_fmt(peer['min'])}/{_fmt(peer['max'])} ({ours['n']} + {peer['n']} runs, {peer_kind} peer); "
        f"load average {_fmt(load['min'])}-{_fmt(load['max'])}",
        flush=True,
    )
    return {
        "name": name,
        "unit": unit,
        "better": better,
        "what": what or name,
        "peer_name": peer_name,
        "peer_kind": peer_kind,
        "ours": o if o is not None else nan,
        "peer": p if p is not None else nan,
        "ratio": ratio if ratio is not None else nan,
        "ours_spread": ours,
        "peer_spread": peer,
        "ours_runs": runs.values("ours", key),
        "peer_runs": runs.values("peer", key),
        "load_average": load,
        **extra,
    }


def save(
    benchmark: str,
    figures: list[dict[str, Any]],
    smoke: bool,
    *,
    compared: Mapping[str, Any] | None = None,
    **context: Any,
) -> Path:
    """Write the summary; smoke runs go to ``<benchmark>.smoke.raw.json`` (not committed)."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / (f"{benchmark}.smoke.raw.json" if smoke else f"{benchmark}.json")
    loads = [v for f in figures for v in (f.get("load_average") or {}).values() if isinstance(v, float)]
    payload = {
        "benchmark": benchmark,
        "harness": HARNESS,
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": " ".join([".venv/bin/python", f"benchmarks/{Path(sys.argv[0]).name}", *sys.argv[1:]]),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "strongroom": version("strongroom"),
            "load_average_min": min(loads) if loads else None,
            "load_average_max": max(loads) if loads else None,
        },
        "smoke": smoke,
        "compared": dict(compared or {}),
        "figures": figures,
        **context,
    }
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    return path
