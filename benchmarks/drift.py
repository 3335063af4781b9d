"""Drift benchmark: our statistics + drift check against Evidently's DataDriftPreset on the same data.

Figures (one line each, `<name>: ours=<x> <unit> peer=<y> <unit> ratio=<x/y>`):

- drift_1m_time / drift_1m_cpu: wall-clock and CPU seconds to read a 1,000,000 x 23 baseline
  (CSV with a header) and a 1,000,000 x 23 window (headerless capture rows), compute both sides'
  statistics and check the window for drift. Ours: `strongroom.monitor` (`read_csv_statistics`,
  `suggest_constraints`, `check_window`); peer: `pandas.read_csv` + Evidently 0.7
  `Report([DataDriftPreset()])`. The window is notebook 02's drifted traffic (LIMIT_BAL / 1000 on a
  random half of the rows, EDUCATION negated on three quarters); both sides must flag exactly
  LIMIT_BAL and EDUCATION, or the benchmark fails. Runs alternate (ours, peer, ours, ...); the
  figure is each side's median, with min and max beside it.
- drift_1m_peak_rss: each side's peak resident set size (VmHWM of its own subprocess), worst run.
- stream_10m_peak_rss / stream_10m_time: ours on a 10,000,000-row window (ten copies of the 1M
  window's rows) against the 1 GiB goal (the "peer" column holds the goal, not a program).

Evidently 0.7 needs pandas < 3, so it lives in its own virtualenv, `benchmarks/.peer-venv`
(gitignored), created on first use (`pip install "evidently>=0.7,<0.8" "pandas<3"`), never in the
product's environment. Telemetry is off (`DO_NOT_TRACK=1`).

Run: `.venv/bin/python benchmarks/drift.py` (full size: about 10 minutes, most of it Evidently) or
`--smoke` (20,000 rows; runs the peer only if its virtualenv already exists, or with `--setup-peer`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PEER_VENV = HERE / ".peer-venv"
PEER_REQUIREMENTS = ["evidently>=0.7,<0.8", "pandas<3"]
RESULTS = HERE / "results" / "drift.json"
SMOKE_RESULTS = HERE / "results" / "drift.smoke.json"
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


def summary(runs: list[dict[str, Any]], key: str) -> dict[str, float]:
    values = [r[key] for r in runs]
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def line(name: str, ours_value: float, peer_value: float, unit: str, **extra: Any) -> dict[str, Any]:
    ratio = ours_value / peer_value if peer_value else float("nan")
    print(f"{name}: ours={ours_value:.4g} {unit} peer={peer_value:.4g} {unit} ratio={ratio:.4g}", flush=True)
    return {"ours": ours_value, "peer": peer_value, "unit": unit, "ratio": ratio, **extra}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="20,000 rows, one run (CI)")
    parser.add_argument("--setup-peer", action="store_true", help="create benchmarks/.peer-venv if missing")
    parser.add_argument("--rows", type=int, help="rows per side (default 1,000,000; smoke 20,000)")
    parser.add_argument("--repeats", type=int, help="alternating runs per side (default 3; smoke 1)")
    parser.add_argument("--stream-copies", type=int, help="copies of the window for the streaming figure (default 10)")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    rows = args.rows or (20_000 if args.smoke else 1_000_000)
    repeats = args.repeats or (1 if args.smoke else 3)
    copies = args.stream_copies or (2 if args.smoke else 10)
    with_peer = ensure_peer(create=args.setup_peer or not args.smoke)
    if not with_peer:
        print(f"peer skipped: {PEER_VENV} does not exist (add --setup-peer to create it)", flush=True)
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="sr-bench-drift-") as tmp:
        folder = Path(tmp)
        baseline, window, features = write_data(folder, rows)
        runs: dict[str, list[dict[str, Any]]] = {"ours": [], "peer": []}
        loads = []
        for _ in range(repeats):
            for side in ("ours", "peer") if with_peer else ("ours",):
                loads.append(os.getloadavg()[0])
                runs[side].append(run_side(side, baseline, window, features))
                print(
                    f"  {side}: {runs[side][-1]['seconds']:.2f} s, {runs[side][-1]['peak_rss_mib']:.0f} MiB", flush=True
                )
        for side, side_runs in runs.items():
            for run in side_runs:
                if run["drifted"] != EXPECTED:
                    raise SystemExit(f"{side} flagged {run['drifted']} on the workshop scenario, not {EXPECTED}")
        label = f"{rows // 1_000_000}m" if rows >= 1_000_000 else f"{rows // 1000}k"
        context = {"rows": rows, "features": len(features), "repeats": repeats, "load_average": summary(
            [{"l": x} for x in loads], "l")}  # fmt: skip
        if with_peer:
            wall_ours, wall_peer = summary(runs["ours"], "seconds"), summary(runs["peer"], "seconds")
            cpu_ours, cpu_peer = summary(runs["ours"], "cpu_seconds"), summary(runs["peer"], "cpu_seconds")
            figures["time"] = line(
                f"drift_{label}_time", wall_ours["median"], wall_peer["median"], "s",
                ours_spread=wall_ours, peer_spread=wall_peer, speedup=wall_peer["median"] / wall_ours["median"],
                peer_import_seconds=statistics.median(r["import_seconds"] for r in runs["peer"]), **context,
            )  # fmt: skip
            figures["cpu"] = line(
                f"drift_{label}_cpu", cpu_ours["median"], cpu_peer["median"], "s",
                ours_spread=cpu_ours, peer_spread=cpu_peer, speedup=cpu_peer["median"] / cpu_ours["median"], **context,
            )  # fmt: skip
            figures["peak_rss"] = line(
                f"drift_{label}_peak_rss",
                max(r["peak_rss_mib"] for r in runs["ours"]),
                max(r["peak_rss_mib"] for r in runs["peer"]),
                "MiB",
                **context,
            )
            figures["verdicts"] = {"ours": runs["ours"][0]["drifted"], "peer": runs["peer"][0]["drifted"]}
        else:
            figures["time"] = {"ours": summary(runs["ours"], "seconds"), "unit": "s", **context}

        big = folder / "window-big.csv"
        with big.open("wb") as out:
            for _ in range(copies):
                with window.open("rb") as part:
                    shutil.copyfileobj(part, out)
        window.unlink()
        streamed = run_side("ours", baseline, big, features)
        big_label = f"{rows * copies // 1_000_000}m" if rows * copies >= 1_000_000 else f"{rows * copies // 1000}k"
        if streamed["rows"] != rows * copies or streamed["drifted"] != EXPECTED:
            raise SystemExit(f"streaming run read {streamed['rows']} rows and flagged {streamed['drifted']}")
        figures["stream_peak_rss"] = line(
            f"stream_{big_label}_peak_rss", streamed["peak_rss_mib"], 1024.0, "MiB",
            peer_is="the 1 GiB goal", rows=rows * copies, csv_mib=big.stat().st_size / 2**20,
        )  # fmt: skip
        figures["stream_time"] = {
            "ours": streamed["seconds"],
            "unit": "s",
            "rows_per_second": rows * copies / streamed["seconds"],
        }
        speed = rows * copies / streamed["seconds"]
        print(f"stream_{big_label}_time: ours={streamed['seconds']:.4g} s ({speed:.3g} rows/s)", flush=True)
    out = SMOKE_RESULTS if args.smoke else RESULTS
    out.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "benchmark": "drift",
        "smoke": args.smoke,
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": len(os.sched_getaffinity(0)), "python": platform.python_version()},
        "peer": "evidently " + _peer_version() if with_peer else None,
        "figures": figures,
        "runs": runs,
    }
    out.write_text(json.dumps(document, indent=2) + "\n")
    print(f"results: {out}")


_VERSIONS = "import evidently, pandas; print(evidently.__version__, 'pandas', pandas.__version__)"


def _peer_version() -> str:
    done = subprocess.run(
        [str(PEER_VENV / "bin" / "python"), "-c", _VERSIONS],
        capture_output=True, text=True, check=True, env={**os.environ, **QUIET},
    )  # fmt: skip
    return done.stdout.strip()


if __name__ == "__main__":
    main()
