"""The explainability job (the managed "clarify" analog): ``code.algorithm = "explain"``.

Inside the job's sandbox: reads the ``model`` channel (a training job's ``model.tar.gz``,
checked and never unpickled) and the ``dataset`` channel (one CSV, with a header or not, or Parquet;
a label column is ignored), computes exact TreeSHAP over every row in bounded memory (on the
job's Dask cluster when ``instance_count > 1``), and writes ``analysis.json`` and a
self-contained ``report.html`` to the ``report`` output. Hyperparameters: ``label``,
``chunk_rows``, ``sample_rows``, ``dependence`` (how many dependence plots), ``title``, and
``feature_names`` (comma-separated) for a model trained on headerless data. A headerless CSV
dataset is read by position: the model's features, optionally after the label in the first column.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from strongroom.core.errors import InvalidInput
from strongroom.core.job_entry import job_main

INPUT = Path(os.environ.get("SM_INPUT_DIR", "/opt/ml/input/data"))
OUTPUT = Path("/opt/ml/processing/output/report")


def _one_file(channel: str, suffixes: tuple[str, ...]) -> Path:
    folder = Path(os.environ.get(f"SM_CHANNEL_{channel.upper()}", INPUT / channel))
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)
    if len(files) != 1:
        raise InvalidInput(
            f"the {channel!r} channel must hold exactly one {'/'.join(suffixes)} file, found {len(files)}",
            field=f"inputs.{channel}",
        )
    return files[0]


def run(hyperparameters: dict[str, Any], output: Path = OUTPUT) -> dict[str, Any]:
    from strongroom.explain import report as reports
    from strongroom.explain import stream
    from strongroom.explain.importance import xgboost_importance
    from strongroom.explain.model import load_booster_from_tar, name_features

    model_path = _one_file("model", (".gz", ".tgz"))
    dataset = _one_file("dataset", (".csv", ".parquet", ".pq"))
    chunk_rows = int(hyperparameters.get("chunk_rows", 50_000))
    sample_rows = int(hyperparameters.get("sample_rows", 2_000))
    names = hyperparameters.get("feature_names")
    booster = name_features(load_booster_from_tar(model_path), str(names) if names else None)
    started = time.monotonic()
    scheduler = os.environ.get("STRONGROOM_DASK_SCHEDULER")
    if scheduler:
        from strongroom.sandbox.inside.cluster import dask_client

        with dask_client() as client:
            print(
                f"[strongroom] explaining {dataset.name} on {len(client.scheduler_info()['workers'])} Dask workers",
                flush=True,
            )
            explanation = stream.explain_distributed(
                booster, dataset, client, chunk_rows=chunk_rows, sample_rows=sample_rows
            )
    else:
        print(f"[strongroom] explaining {dataset.name} in chunks of {chunk_rows} rows", flush=True)
        explanation = stream.explain_stream(booster, dataset, chunk_rows=chunk_rows, sample_rows=sample_rows)
    seconds = time.monotonic() - started
    print(f"[strongroom] exact SHAP for {explanation.row_count} rows in {seconds:.2f} s", flush=True)
    output.mkdir(parents=True, exist_ok=True)
    label = str(hyperparameters.get("label", "label"))
    reports.write_analysis(explanation, output / "analysis.json", label=label)
    importance = xgboost_importance(booster)
    details = {
        "model": os.environ.get("STRONGROOM_MODEL_URI", model_path.name),
        "dataset": dataset.name,
        "rows": str(explanation.row_count),
        "job": os.environ.get("STRONGROOM_JOB", ""),
    }
    figures = reports.report_figures(explanation, importance, dependence=int(hyperparameters.get("dependence", 3)))
    html = reports.build_report(
        explanation,
        title=str(hyperparameters.get("title", "Explainability report")),
        importance=importance,
        details=details,
        figures=figures,
    )
    reports.write_report(html, output / "report.html")
    top = explanation.importance().head(5)
    for rank, (name, row) in enumerate(top.iterrows(), 1):
        print(f"top feature {rank}: {name} mean|SHAP|={row['mean_abs_shap']:.5f}", flush=True)
    return {"rows": explanation.row_count, "seconds": seconds, "top": list(top.index)}


def main() -> int:
    return job_main(run)


if __name__ == "__main__":
    sys.exit(main())
