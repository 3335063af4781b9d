"""Drift benchmark: our statistics + drift check against Evidently's DataDriftPreset on the same data.

Figures (one line each, `<name>: ours=<x> <unit> peer=<y> <unit> ratio=<x/y>`), through the shared
harness (`_common.alternate`: ours and the peer alternate, at least 3 runs each, each in a fresh
subprocess; medians, min-max and the load average are recorded):

- drift_1m_time / drift_1m_cpu: wall-clock and CPU seconds to read a 1,000,000 x 23 baseline
  (CSV with a header) and a 1,000,000 x 23 window (headerless capture rows), compute both sides'
  statistics and check the window for drift. Ours: `strongroom.monitor` (`read_csv_statistics`,
  `suggest_constraints`, `check_window`); peer: `pandas.read_csv` + Evidently 0.7
  `Report([DataDriftPreset()])`. The window is notebook 02's drifted traffic (LIMIT_BAL / 1000 on a
  random half of the rows, EDUCATION negated on three quarters); both sides must flag exactly
  LIMIT_BAL and EDUCATION in every run, or the benchmark fails. Times exclude each side's imports.
- drift_1m_peak_rss: each side's peak resident set size (VmHWM of its own subprocess).
- stream_10m_peak_rss / stream_10m_time: ours on a 10,000,000-row window (ten copies of the 1M
  window's rows) against the 1 GiB goal (the "peer" column holds the goal, not a program).

Evidently 0.7 needs pandas < 3, so it lives in its own virtualenv, `benchmarks/.peer-venv`
(gitignored), created on first use (`pip install "evidently>=0.7,<0.8" "pandas<3"`), never in the
product's environment. Telemetry is off (`DO_NOT_TRACK=1`).

Run: `nice .venv/bin/python benchmarks/drift.py` (full size: 13 minutes on the shared 2 cores at
a load average of 12, most of it Evidently) or `--smoke` (20,000 rows, ours only: three Evidently
runs take longer than the smoke test allows; add `--setup-peer` to include the peer, creating its
virtualenv if missing). Then `.venv/bin/python tools/perf_table.py`.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import alternate, figure, repeats, save, version
from _common import parser as harness_parser

HERE = Path(__file__).resolve().parent
PEER_VENV = HERE / ".peer-venv"
PEER_REQUIREMENTS = ["evidently>=0.7,<0.8", "pandas<3"]
EXPECTED = ["EDUCATION", "LIMIT_BAL"]
QUIET = {"DO_NOT_TRACK": "1", "EVIDENTLY_DISABLE_TELEMETRY": "1"}


def peak_rss_mib() -> float:
    """This process's peak resident set size (VmHWM: getrusage's ru_maxrss can carry the parent's
    peak over a fork)."""
    for entry in Path("/proc/self/status").read_text().splitlines():
        if entry.startswith("VmHWM:"):
            return int(entry.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# --- the two sides, each run in a fresh subprocess -------------------------------------------------


def ours(baseline: Path, window: Path, features: list[str]) -> dict[str, Any]:
    start_import = time.perf_counter()
    from strongroom.monitor import ColumnRule, check_window, read_csv_statistics, suggest_constraints

    imported = time.perf_counter() - start_import
    cpu, start = _cpu_seconds(), time.perf_counter()
    reference = read_csv_statistics(baseline)
    rule = ColumnRule(tuple(features))
    current = read_csv_statistics(window, feature_names=rule.feature_names)
    result = check_window(current, reference, suggest_constraints(reference), window_name=window.name)
    drifted = sorted({v.feature_name for v in result.violations if v.constraint_check_type == "baseline_drift_check"})
    return {
        "seconds": time.perf_counter() - start,
        "cpu_seconds": _cpu_seconds() - cpu,
        "import_seconds": imported,
        "rows": current.item_count,
        "drifted": drifted,
        "flagged": sorted(result.flagged_features),
    }


def peer(baseline: Path, window: Path, features: list[str]) -> dict[str, Any]:
    start_import = time.perf_counter()
    import pandas as pd
    from evidently import Report
    from evidently.presets import DataDriftPreset

    imported = time.perf_counter() - start_import
    cpu, start = _cpu_seconds(), time.perf_counter()
    reference = pd.read_csv(baseline)
    current = pd.read_csv(window, header=None, names=features)
    snapshot = Report([DataDriftPreset()]).run(current_data=current, reference_data=reference)
    drifted = []
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        if not config.get("type", "").endswith("ValueDrift"):
            continue
        method, value, threshold = config["method"], metric["value"], config["threshold"]
        # Evidently's tests give p-values (drift below the threshold), its distances the reverse.
        is_p_value = "p_value" in method or "test" in method.lower()
        if (value < threshold) if is_p_value else (value >= threshold):
            drifted.append(config["column"])
    return {
        "seconds": time.perf_counter() - start,
        "cpu_seconds": _cpu_seconds() - cpu,
        "import_seconds": imported,
        "rows": len(current),
        "drifted": sorted(drifted),
        "flagged": sorted(drifted),
    }


def child(side: str, baseline: str, window: str, features: str) -> None:
    names = features.split(",")
    result = (ours if side == "ours" else peer)(Path(baseline), Path(window), names)
    result["peak_rss_mib"] = peak_rss_mib()
    print(json.dumps(result))


def run_side(side: str, baseline: Path, window: Path, features: list[str]) -> dict[str, Any]:
    python = sys.executable if side == "ours" else str(PEER_VENV / "bin" / "python")
    command = [python, str(Path(__file__).resolve()), "--child", side, str(baseline), str(window), ",".join(features)]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, **QUIET}, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{side} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


# --- the parent: data, peer environment, alternation, report ---------------------------------------


def ensure_peer(create: bool) -> bool:
    python = PEER_VENV / "bin" / "python"
    if python.exists():
        return True
    if not create:
        return False
    print(f"creating {PEER_VENV} with {' '.join(PEER_REQUIREMENTS)} (once)", flush=True)
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", str(PEER_VENV)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", *PEER_REQUIREMENTS], check=True, env={**os.environ, **QUIET}
    )
    return True


def write_data(folder: Path, rows: int) -> tuple[Path, Path, list[str]]:
    """A baseline (header) and notebook 02's drifted window (headerless), from the synthetic generator."""
    import numpy as np

    from strongroom.demo.data import FEATURES, credit_default

    baseline, window = folder / "baseline.csv", folder / "window.csv"
    credit_default(rows, seed=1)[FEATURES].to_csv(baseline, index=False)
    current = credit_default(rows, seed=2)[FEATURES]
    rng = np.random.default_rng(0)
    half = rng.random(rows) < 0.5
    current["LIMIT_BAL"] = current["LIMIT_BAL"].astype(float)
    current.loc[half, "LIMIT_BAL"] = current.loc[half, "LIMIT_BAL"] / 1000
    three_quarters = rng.random(rows) < 0.75
    current.loc[three_quarters, "EDUCATION"] = -current.loc[three_quarters, "EDUCATION"]
    current.to_csv(window, index=False, header=False)
    return baseline, window, list(FEATURES)


def main() -> None:
    parser = harness_parser(__doc__ or "")
    parser.add_argument(
        "--setup-peer", action="store_true", help="create benchmarks/.peer-venv if missing; run the peer in smoke mode"
    )
    parser.add_argument("--rows", type=int, help="rows per side (default 1,000,000; smoke 20,000)")
    parser.add_argument("--stream-copies", type=int, help="copies of the window for the streaming figure (default 10)")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    rows = args.rows or (20_000 if args.smoke else 1_000_000)
    runs = repeats(args)
    copies = args.stream_copies or (2 if args.smoke else 10)
    with_peer = ensure_peer(create=True) if args.setup_peer or not args.smoke else False
    if not with_peer:
        print("peer skipped in smoke mode (add --setup-peer to run it)", flush=True)
    peer_name = "Evidently " + _peer_version().split()[0] + " DataDriftPreset" if with_peer else "Evidently"
    label = _label(rows)
    verdicts: dict[str, list[list[str]]] = {"ours": [], "peer": []}
    raw: dict[str, list[dict[str, Any]]] = {"ours": [], "peer": [], "stream": []}
    with tempfile.TemporaryDirectory(prefix="sr-bench-drift-") as tmp:
        folder = Path(tmp)
        baseline, window, features = write_data(folder, rows)

        def measure(side: str, target: Path) -> dict[str, float]:
            result = run_side(side, baseline, target, features)
            raw["stream" if target != window else side].append(result)
            if target == window:
                verdicts[side].append(result["drifted"])
            elif result["rows"] != rows * copies or result["drifted"] != EXPECTED:
                raise SystemExit(f"streaming run read {result['rows']} rows and flagged {result['drifted']}")
            return {k: float(result[k]) for k in ("seconds", "cpu_seconds", "peak_rss_mib")}

        measured = alternate(
            lambda: measure("ours", window), (lambda: measure("peer", window)) if with_peer else None, runs
        )
        for side, seen in verdicts.items():
            for drifted in seen:
                if drifted != EXPECTED:
                    raise SystemExit(f"{side} flagged {drifted} on the workshop scenario, not {EXPECTED}")
        what = f"statistics + drift check, {rows:,} x {len(features)} baseline vs {rows:,} x {len(features)} window"
        figures = [
            figure(f"drift_{label}_time", "s", measured, "seconds", better="lower", what=f"{what}, wall time",
                   peer_name=peer_name),
            figure(f"drift_{label}_cpu", "s", measured, "cpu_seconds", better="lower", what=f"{what}, CPU time",
                   peer_name=peer_name),
            figure(f"drift_{label}_peak_rss", "MiB", measured, "peak_rss_mib", better="lower",
                   what=f"{what}, peak RSS", peer_name=peer_name),
        ]  # fmt: skip
        for item in figures:
            if item["ratio"] == item["ratio"] and item["ratio"]:  # not NaN, not 0
                item["peer_over_ours"] = 1 / item["ratio"]

        big = folder / "window-big.csv"
        with big.open("wb") as out:
            for _ in range(copies):
                with window.open("rb") as part:
                    shutil.copyfileobj(part, out)
        csv_mib = big.stat().st_size / 2**20
        streamed = alternate(lambda: measure("ours", big), None, runs)
        big_label = _label(rows * copies)
        stream_seconds = statistics.median(streamed.values("ours", "seconds"))
        stream_what = f"statistics + drift check of a {rows * copies:,}-row window ({csv_mib:,.0f} MiB of CSV)"
        figures += [
            figure(f"stream_{big_label}_peak_rss", "MiB", streamed, "peak_rss_mib", better="lower", goal=1024.0,
                   what=f"{stream_what}, peak RSS against the 1 GiB goal", peer_name="goal", csv_mib=csv_mib),
            figure(f"stream_{big_label}_time", "s", streamed, "seconds", better="lower",
                   what=f"{stream_what}, wall time", rows_per_second=rows * copies / stream_seconds),
        ]  # fmt: skip
    path = save(
        "drift",
        figures,
        args.smoke,
        compared={
            "ours": "strongroom.monitor: read_csv_statistics (baseline with header, headerless window), "
            "suggest_constraints, check_window",
            "peer": f"pandas.read_csv + {peer_name}" + (f" ({_peer_version()})" if with_peer else " (not run)"),
            "scenario": "notebook 02's drift: LIMIT_BAL / 1000 on half the rows, EDUCATION negated on three quarters",
            "verdicts": {side: seen[0] if seen else None for side, seen in verdicts.items()},
            "expected": EXPECTED,
            "rows": rows,
            "features": len(features),
            "stream_rows": rows * copies,
            "each side": "its own subprocess; times exclude imports",
            "durability": "not applicable: both sides read the same CSV files and keep their results in memory",
            "versions": {"strongroom": version("strongroom"), "peer": _peer_version() if with_peer else "not run"},
        },
        runs=raw,
    )
    print(f"results: {path}")


def _label(rows: int) -> str:
    return f"{rows // 1_000_000}m" if rows >= 1_000_000 else f"{rows // 1000}k"


_VERSIONS = "import evidently, pandas; print(evidently.__version__, 'pandas', pandas.__version__)"


def _peer_version() -> str:
    done = subprocess.run(
        [str(PEER_VENV / "bin" / "python"), "-c", _VERSIONS],
        capture_output=True, text=True, check=True, env={**os.environ, **QUIET},
    )  # fmt: skip
    return done.stdout.strip()


if __name__ == "__main__":
    main()
