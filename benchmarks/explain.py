"""Explainability benchmark: our exact SHAP against shap's explainers on the same booster.

Figures (one line each, `<name>: ours=<x> <unit> peer=<y> <unit> ratio=<x/y>`):

- exact_shap_30k: exact SHAP for 30,000 rows x 23 features, ours (the booster's native TreeSHAP
  through `strongroom.explain`) against `shap.TreeExplainer(booster).shap_values`; the values
  must agree to 1e-4.
- per_row_vs_kernel: cost per explained row against shap's model-agnostic `KernelExplainer` on a
  200-row sample (small background and nsamples, so it finishes; real Kernel SHAP jobs use more).
- stream_1m_peak_rss / stream_1m_time: 1,000,000 rows read from CSV, ours streamed in chunks in a
  fresh process, against the in-memory way (read the whole CSV, `TreeExplainer.shap_values`).
- dask_2_workers: rows per second with a local Dask cluster of 2 single-threaded workers against 1.

Every figure alternates ours and the peer (``_common.alternate``), at least 3 runs each.

Run: `.venv/bin/python benchmarks/explain.py` (full size, several minutes) or with `--smoke`.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import xgboost as xgb
from _common import Runs, alternate, figure, parser, repeats, save, version

from strongroom.demo.data import FEATURES, LABEL, credit_default
from strongroom.explain import explain_booster, explain_distributed, explain_stream, load_booster, local_cluster

# The workshop's XGBoost hyperparameters.
PARAMS = {
    "objective": "binary:logistic",
    "max_depth": 5,
    "eta": 0.2,
    "gamma": 4,
    "min_child_weight": 6,
    "subsample": 0.8,
    "seed": 0,
}


def _seconds(function: Any, into: list[Any]) -> float:
    start = time.perf_counter()
    into.append(function())
    return time.perf_counter() - start


def exact_figure(booster: xgb.Booster, rows: int, runs: int) -> dict[str, Any]:
    import shap

    frame = credit_default(rows, seed=1)[FEATURES]
    explain_booster(booster, frame.head(100))  # warm both paths up once
    shap.TreeExplainer(booster).shap_values(frame.head(100))
    ours: list[Any] = []
    peer: list[Any] = []
    measured = alternate(
        lambda: _seconds(lambda: explain_booster(booster, frame), ours),
        lambda: _seconds(lambda: shap.TreeExplainer(booster).shap_values(frame), peer),
        runs,
    )
    difference = float(np.max(np.abs(ours[-1].values.to_numpy() - np.asarray(peer[-1]))))
    if difference > 1e-4:
        raise SystemExit(f"exact_shap: values differ from shap.TreeExplainer by {difference} (> 1e-4)")
    return figure(
        f"exact_shap_{rows // 1000}k",
        "s",
        measured,
        better="lower",
        what=f"exact SHAP, {rows:,} rows x {len(FEATURES)} features",
        peer_name="shap.TreeExplainer",
        rows=rows,
        features=len(FEATURES),
        max_abs_difference=difference,
    )


def kernel_figure(booster: xgb.Booster, rows: int, background: int, nsamples: int, runs: int) -> dict[str, Any]:
    import shap

    frame = credit_default(rows, seed=3)[FEATURES]
    back = credit_default(background, seed=4)[FEATURES].to_numpy(dtype=np.float64)

    def margin(array: np.ndarray) -> np.ndarray:
        return booster.predict(xgb.DMatrix(array, feature_names=FEATURES), output_margin=True)

    kernel = shap.KernelExplainer(margin, back)
    ours: list[Any] = []
    peer: list[Any] = []
    measured = alternate(
        lambda: _seconds(lambda: explain_booster(booster, frame), ours) / rows * 1e3,
        lambda: (
            _seconds(lambda: kernel.shap_values(frame.to_numpy(dtype=np.float64), nsamples=nsamples, silent=True), peer)
            / rows
            * 1e3
        ),
        runs,
    )
    exact = ours[-1].values.to_numpy()
    estimate = np.asarray(peer[-1])
    result = figure(
        "per_row_vs_kernel",
        "ms/row",
        measured,
        better="lower",
        what="SHAP per explained row",
        peer_name=f"shap.KernelExplainer (background {background}, nsamples {nsamples})",
        rows=rows,
        kernel_mean_abs_error=float(np.mean(np.abs(estimate - exact))),
        kernel_correlation_with_exact=float(np.corrcoef(estimate.ravel(), exact.ravel())[0, 1]),
    )
    result["speedup"] = 1 / result["ratio"] if result["ratio"] else float("nan")
    return result


def child(mode: str, model: str, data: str, chunk_rows: int) -> None:
    """Run one memory measurement in this fresh process and print its JSON result."""
    booster = load_booster(Path(model).read_bytes())
    start = time.perf_counter()
    if mode == "stream":
        result = explain_stream(booster, data, chunk_rows=chunk_rows, sample_rows=1000)
        rows, top = result.row_count, result.importance().index[0]
    else:
        import pandas as pd
        import shap

        frame = pd.read_csv(data)
        values = np.asarray(shap.TreeExplainer(booster).shap_values(frame[FEATURES]))
        rows, top = len(values), FEATURES[int(np.abs(values).mean(axis=0).argmax())]
    elapsed = time.perf_counter() - start
    print(json.dumps({"seconds": elapsed, "peak_rss_mib": _peak_rss_mib(), "rows": rows, "top": top}))


def _peak_rss_mib() -> float:
    """This process's peak resident set size. Not getrusage's ru_maxrss: Linux carries that over
    from the parent across fork and exec, so a child would report the benchmark's own peak."""
    for entry in Path("/proc/self/status").read_text().splitlines():
        if entry.startswith("VmHWM:"):
            return int(entry.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # not Linux: best effort


def run_child(mode: str, model: Path, data: Path, chunk_rows: int) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", mode, str(model), str(data), "--chunk-rows", str(chunk_rows)]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return dict(json.loads(output.strip().splitlines()[-1]))


def stream_figures(booster: xgb.Booster, rows: int, chunk_rows: int, folder: Path, runs: int) -> list[dict[str, Any]]:
    model = folder / "model.ubj"
    booster.save_model(model)
    data = folder / "rows.csv"
    credit_default(rows, seed=5).to_csv(data, index=False)
    tops: list[str] = []

    def measure(mode: str) -> dict[str, float]:
        result = run_child(mode, model, data, chunk_rows)
        tops.append(str(result["top"]))
        return {"seconds": float(result["seconds"]), "peak_rss_mib": float(result["peak_rss_mib"])}

    measured = alternate(lambda: measure("stream"), lambda: measure("memory"), runs)
    label = f"{rows // 1_000_000}m" if rows >= 1_000_000 else f"{rows // 1000}k"
    peer_name = "pandas.read_csv + TreeExplainer.shap_values, in memory"
    memory = figure(
        f"stream_{label}_peak_rss",
        "MiB",
        measured,
        "peak_rss_mib",
        better="lower",
        what=f"peak RSS explaining {rows:,} CSV rows, streamed in chunks of {chunk_rows:,}",
        peer_name=peer_name,
        csv_mib=data.stat().st_size / 2**20,
        top_feature=tops[0],
    )
    speed = figure(
        f"stream_{label}_time",
        "s",
        measured,
        "seconds",
        better="lower",
        what=f"time explaining {rows:,} CSV rows, streamed",
        peer_name=peer_name,
    )
    if memory["ours"] >= 1024:
        print(f"warning: streaming peak RSS {memory['ours']:.0f} MiB is over the 1 GiB goal", file=sys.stderr)
    return [memory, speed]


def dask_figure(booster: xgb.Booster, rows: int, chunk_rows: int, folder: Path, runs: int) -> dict[str, Any]:
    data = folder / "dask-rows.csv"
    credit_default(rows, seed=6).to_csv(data, index=False)
    clients = {workers: local_cluster(n_workers=workers, threads_per_worker=1) for workers in (1, 2)}
    try:
        for client in clients.values():  # warm up: imports and the first model load in each worker
            explain_distributed(booster, data, client, parts=4, chunk_rows=chunk_rows, sample_rows=0)

        def rate(workers: int) -> float:
            start = time.perf_counter()
            result = explain_distributed(booster, data, clients[workers], chunk_rows=chunk_rows, sample_rows=100)
            assert result.row_count == rows
            return rows / (time.perf_counter() - start)

        measured: Runs = alternate(lambda: rate(2), lambda: rate(1), runs)
    finally:
        for client in clients.values():
            client.close()
            client.cluster.close()
    return figure(
        "dask_2_workers",
        "rows/s",
        measured,
        what=f"SHAP of {rows:,} CSV rows on a local Dask cluster of 2 single-threaded workers",
        peer_name="1 worker",
        # What two cores give right now on this shared machine, as a yardstick for the speed-up.
        machine_2_thread_speedup=_thread_scaling(booster, min(rows, 50_000)),
    )


def _thread_scaling(booster: xgb.Booster, rows: int) -> float:
    frame = credit_default(rows, seed=7)[FEATURES]
    one = _seconds(lambda: explain_booster(booster, frame, n_threads=1), [])
    two = _seconds(lambda: explain_booster(booster, frame, n_threads=2), [])
    return one / two


def main() -> None:
    # shap's import-time notice about matplotlib colour-map setters (see pyproject's filterwarnings).
    warnings.filterwarnings("ignore", "The set_", PendingDeprecationWarning)
    args_parser = parser(__doc__ or "")
    args_parser.add_argument("--child", nargs=3, metavar=("MODE", "MODEL", "DATA"), help=argparse.SUPPRESS)
    args_parser.add_argument("--chunk-rows", type=int, default=50_000)
    args = args_parser.parse_args()
    if args.child:
        child(*args.child, chunk_rows=args.chunk_rows)
        return
    runs = repeats(args)
    smoke = {"train": 3000, "rounds": 10, "exact": 2000, "kernel": 10, "background": 10, "nsamples": 60,
             "stream": 20_000, "dask": 10_000, "chunk": 5000}  # fmt: skip
    full = {"train": 30_000, "rounds": 100, "exact": 30_000, "kernel": 200, "background": 20, "nsamples": 200,
            "stream": 1_000_000, "dask": 200_000, "chunk": args.chunk_rows}  # fmt: skip
    sizes = smoke if args.smoke else full
    train = credit_default(sizes["train"], seed=0)
    booster = xgb.train(PARAMS, xgb.DMatrix(train[FEATURES], label=train[LABEL]), num_boost_round=sizes["rounds"])
    figures = [
        exact_figure(booster, sizes["exact"], runs),
        kernel_figure(booster, sizes["kernel"], sizes["background"], sizes["nsamples"], runs),
    ]
    with tempfile.TemporaryDirectory(prefix="sr-bench-explain-") as tmp:
        figures.extend(stream_figures(booster, sizes["stream"], sizes["chunk"], Path(tmp), runs))
        figures.append(dask_figure(booster, sizes["dask"], sizes["chunk"], Path(tmp), runs))
    compared = {
        "ours": "strongroom.explain (the booster's native TreeSHAP)",
        "peer": "shap's explainers on the same booster",
        "modes": "exact: both in process on the same in-memory rows; stream: ours chunked from the CSV in a fresh "
        "process vs the peer reading the whole CSV in a fresh process; dask: the same code on 2 workers vs 1",
        "file format": "stream figures: the same CSV file with a header row on both sides",
        "durability": "not applicable (nothing written but the SHAP values, in memory)",
        "tls": "none (Dask's local cluster without TLS on both sides of the dask figure)",
        "xgboost": xgb.__version__,
        "shap": version("shap"),
        "model": {**PARAMS, "num_boost_round": sizes["rounds"], "trees": booster.num_boosted_rounds()},
        "sizes": sizes,
        "cpus_usable": _cpus(),
    }
    print(f"results: {save('explain', figures, args.smoke, compared=compared)}")


def _cpus() -> int:
    return len(os.sched_getaffinity(0))


if __name__ == "__main__":
    main()
