"""The model monitor job (``code.algorithm = "model-monitor"``), run inside the job's sandbox.

Two modes (hyperparameter ``mode``):

- ``baseline`` (``suggest_baseline``): the ``baseline`` channel holds one CSV file (with a header
  unless ``header`` is false, then ``feature_names`` names its columns); columns listed in
  ``excluded_columns`` (the label) are left out; writes ``statistics.json`` and ``constraints.json``.
- ``analysis`` (one execution of a monitoring schedule): the ``baseline-statistics`` and
  ``baseline-constraints`` channels hold the baseline's files; the ``capture-*`` channels hold the
  endpoint's capture files of every hour the window ``[window_start, window_end)`` touches. The
  records inside the window are read as headerless rows whose field ``i`` is the ``i``-th feature of
  the baseline (less ``excluded_columns``); writes ``statistics.json``,
  ``constraint_violations.json`` and ``report.html``.

Two more for ``ModelExplainability`` schedules (feature-attribution drift):

- ``attribution-baseline``: the ``baseline`` channel as above and the ``model`` channel (the
  endpoint's ``model.tar.gz``); writes ``analysis.json``, the model's exact global SHAP values
  (mean |TreeSHAP| per feature, XGBoost ``pred_contribs``) over the dataset.
- ``attribution``: the ``baseline-analysis`` channel (that ``analysis.json``), the ``model`` channel
  and the ``capture-*`` channels; the window's rows (field ``i`` is ``feature_names[i]``) are
  explained with the same TreeSHAP, their mean |SHAP| ranking compared with the baseline's by nDCG;
  writes ``analysis.json`` (the window's attributions), ``constraint_violations.json``
  (``feature_attribution_drift_check`` when nDCG < ``threshold``) and ``report.html``.

Decrypted inputs live only on the sandbox's tmpfs; results are printed as
``[strongroom] monitor <name>=<value>`` lines, which the platform's metric definitions pick up.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from strongroom.core.errors import InvalidInput
from strongroom.core.job_entry import job_main

INPUT = Path("/opt/ml/processing/input")
OUTPUT = Path("/opt/ml/processing/output/results")
METRIC = "[strongroom] monitor"


def _channel(name: str) -> Path:
    return Path(os.environ.get(f"SM_CHANNEL_{name.upper().replace('-', '_')}", INPUT / name))


def _one_file(name: str) -> Path:
    folder = _channel(name)
    files = sorted(p for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else []
    if folder.is_file():
        files = [folder]
    if len(files) != 1:
        raise InvalidInput(f"the {name!r} channel must hold exactly one file, found {len(files)}", field=name)
    return files[0]


def _names(value: Any) -> list[str]:
    if not value:
        return []
    found = json.loads(value) if isinstance(value, str) else value
    if not isinstance(found, list) or not all(isinstance(n, str) for n in found):
        raise InvalidInput("expected a JSON list of column names", field="hyperparameters")
    return found


def baseline(hyper: dict[str, Any], output: Path) -> dict[str, Any]:
    from strongroom.monitor.constraints import suggest_constraints
    from strongroom.monitor.sources import read_csv_statistics
    from strongroom.monitor.statistics import DatasetStatistics

    dataset = _one_file("baseline")
    header = str(hyper.get("header", "true")).lower() != "false"
    names = None if header else _names(hyper.get("feature_names"))
    if not header and not names:
        raise InvalidInput("a headerless baseline needs feature_names", field="dataset_format")
    excluded = set(_names(hyper.get("excluded_columns")))
    statistics = read_csv_statistics(dataset, feature_names=names)
    unknown = sorted(excluded - set(statistics.names))
    if unknown:
        raise InvalidInput(
            f"excluded_columns {unknown} are not columns of the baseline (its columns: {', '.join(statistics.names)})",
            field="excluded_columns",
        )
    kept = DatasetStatistics(statistics.item_count, tuple(f for f in statistics.features if f.name not in excluded))
    constraints = suggest_constraints(kept)
    output.mkdir(parents=True, exist_ok=True)
    kept.write(output / "statistics.json")
    constraints.write(output / "constraints.json")
    print(f"{METRIC} rows={kept.item_count}", flush=True)
    print(f"[strongroom] baseline of {len(kept.features)} features over {kept.item_count} rows", flush=True)
    return {"rows": kept.item_count, "features": kept.names}


def analysis(hyper: dict[str, Any], output: Path) -> dict[str, Any]:
    import tempfile

    from strongroom.monitor.capture import parse_time, window_rows
    from strongroom.monitor.constraints import Constraints
    from strongroom.monitor.sources import ColumnRule, read_csv_statistics
    from strongroom.monitor.statistics import DatasetStatistics
    from strongroom.monitor.violations import check_window

    reference = DatasetStatistics.read(_one_file("baseline-statistics"))
    constraints = Constraints.read(_one_file("baseline-constraints"))
    excluded = [n for n in _names(hyper.get("excluded_columns")) if n in reference.names]
    rule = ColumnRule(tuple(n for n in reference.names if n not in excluded), tuple(excluded))
    start, end = parse_time(str(hyper["window_start"])), parse_time(str(hyper["window_end"]))
    window_name = f"{hyper['window_start']} .. {hyper['window_end']}"
    files = sorted(p for p in INPUT.glob("capture*/**/*.jsonl") if p.is_file())
    with tempfile.NamedTemporaryFile(dir=str(INPUT.parent), suffix=".csv") as rows_file:
        seen = window_rows(files, start, end, rows_file)
        rows_file.flush()
        print(
            f"[strongroom] {len(files)} capture files: {seen.records} records ({seen.rows} rows) in the window, "
            f"{seen.outside} outside it" + (f", skipped {seen.skipped}" if seen.skipped else ""),
            flush=True,
        )
        window = read_csv_statistics(rows_file.name, feature_names=rule.feature_names)
    result = check_window(window, reference, constraints, excluded=rule.excluded, window_name=window_name)
    output.mkdir(parents=True, exist_ok=True)
    window.write(output / "statistics.json")
    result.write(output / "constraint_violations.json")
    _report(reference, window, result, str(hyper.get("title", "Model monitor report")), output)
    print(f"{METRIC} rows={window.item_count}", flush=True)
    print(f"{METRIC} violations={len(result.violations)}", flush=True)
    for index, name in enumerate(reference.names):
        if name in result.distances:
            print(f"{METRIC} distance[{index}]={result.distances[name]:.6g}", flush=True)
    print(f"[strongroom] {result.status}: {result.message}", flush=True)
    return {"status": result.status, "violations": len(result.violations)}


def _window_file(hyper: dict[str, Any], rows_file: Any) -> str:
    """Write the window's request rows (headerless CSV) to ``rows_file``; its time range as text."""
    from strongroom.monitor.capture import parse_time, window_rows

    start, end = parse_time(str(hyper["window_start"])), parse_time(str(hyper["window_end"]))
    files = sorted(p for p in INPUT.glob("capture*/**/*.jsonl") if p.is_file())
    seen = window_rows(files, start, end, rows_file)
    rows_file.flush()
    print(
        f"[strongroom] {len(files)} capture files: {seen.records} records ({seen.rows} rows) in the window, "
        f"{seen.outside} outside it" + (f", skipped {seen.skipped}" if seen.skipped else ""),
        flush=True,
    )
    return f"{hyper['window_start']} .. {hyper['window_end']}"


def _model(names: list[str]) -> Any:
    from strongroom.explain.model import load_booster_from_tar, name_features

    folder = _channel("model")
    archives = sorted(p for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else [folder]
    if len(archives) != 1:
        raise InvalidInput(f"the 'model' channel must hold one model.tar.gz, found {len(archives)}", field="model")
    return name_features(load_booster_from_tar(archives[0]), names)


def _analysis_document(label: str, attributions: dict[str, float], rows: int) -> dict[str, Any]:
    from strongroom.explain.models import TREE_SHAP_XGBOOST

    method = TREE_SHAP_XGBOOST
    return {
        "version": "1.0",
        "explanations": {method.name: {label: {"global_shap_values": attributions}}},
        "method": {"name": method.name, "exact": method.exact, "engine": method.engine},
        "output": "margin",
        "row_count": rows,
        "feature_count": len(attributions),
    }


def _attribute(booster: Any, source: Any, names: list[str], header: bool) -> Any:
    """Mean |SHAP| over a CSV's rows, streamed in blocks (rows of another width are skipped)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    from strongroom.explain.compute import explain_booster
    from strongroom.monitor.attribution import AttributionAccumulator

    accumulator = AttributionAccumulator(names)
    skipped = 0

    def invalid(row: Any) -> str:
        nonlocal skipped
        skipped += 1
        return "skip"

    try:
        reader = pacsv.open_csv(
            source,
            read_options=pacsv.ReadOptions(block_size=4 << 20, column_names=None if header else names),
            convert_options=pacsv.ConvertOptions(
                include_columns=names, column_types=dict.fromkeys(names, pa.float64())
            ),
            parse_options=pacsv.ParseOptions(invalid_row_handler=invalid),
        )
        for batch in reader:
            if batch.num_rows:
                accumulator.update(explain_booster(booster, batch.to_pandas()).values)
    except pa.ArrowInvalid as exc:
        if "Empty CSV file" in str(exc):
            return accumulator
        raise InvalidInput(f"the rows are not all numbers the model can explain: {exc}", field="dataset") from exc
    if skipped:
        print(f"[strongroom] skipped {skipped} rows without exactly {len(names)} fields", flush=True)
    return accumulator


def attribution_baseline(hyper: dict[str, Any], output: Path) -> dict[str, Any]:
    import pyarrow.csv as pacsv

    dataset = _one_file("baseline")
    header = str(hyper.get("header", "true")).lower() != "false"
    excluded = set(_names(hyper.get("excluded_columns")))
    if header:
        reader = pacsv.open_csv(str(dataset))
        columns = list(reader.schema.names)
        reader.close()
    else:
        columns = _names(hyper.get("feature_names"))
    unknown = sorted(excluded - set(columns))
    if unknown:
        raise InvalidInput(f"excluded_columns {unknown} are not columns of the baseline", field="excluded_columns")
    names = [n for n in columns if n not in excluded]
    booster = _model(names)
    accumulator = _attribute(booster, str(dataset), names, header)
    if accumulator.rows == 0:
        raise InvalidInput("the baseline dataset has no rows to explain", field="baseline_dataset")
    output.mkdir(parents=True, exist_ok=True)
    document = _analysis_document("label0", accumulator.mean_abs(), accumulator.rows)
    (output / "analysis.json").write_text(json.dumps(document, indent=2) + "\n")
    print(f"{METRIC} rows={accumulator.rows}", flush=True)
    top = sorted(document["explanations"]["tree_shap"]["label0"]["global_shap_values"].items(), key=lambda x: -x[1])
    print(f"[strongroom] attribution baseline over {accumulator.rows} rows; top: {top[:3]}", flush=True)
    return {"rows": accumulator.rows}


def attribution(hyper: dict[str, Any], output: Path) -> dict[str, Any]:
    import tempfile

    from strongroom.monitor.attribution import check_attribution_drift
    from strongroom.monitor.report import render_attribution_report

    baseline_document = json.loads(_one_file("baseline-analysis").read_text())
    names = _names(hyper.get("feature_names"))
    threshold = float(hyper.get("threshold", 0.9))
    booster = _model(names)
    with tempfile.NamedTemporaryFile(dir=str(INPUT.parent), suffix=".csv") as rows_file:
        window_name = _window_file(hyper, rows_file)
        accumulator = _attribute(booster, rows_file.name, names, header=False)
    label = next(iter(next(iter(baseline_document["explanations"].values()))))
    result = check_attribution_drift(
        baseline_document, accumulator, threshold=threshold, label=label, window_name=window_name
    )
    output.mkdir(parents=True, exist_ok=True)
    result.write(output / "constraint_violations.json")
    if accumulator.rows:
        document = _analysis_document(label, accumulator.mean_abs(), accumulator.rows)
        (output / "analysis.json").write_text(json.dumps(document, indent=2) + "\n")
    title = str(hyper.get("title", "Model monitor report"))
    (output / "report.html").write_text(render_attribution_report(result, title=title), encoding="utf-8")
    print(f"{METRIC} rows={accumulator.rows}", flush=True)
    print(f"{METRIC} violations={len(result.violations)}", flush=True)
    if result.score is not None:
        print(f"{METRIC} ndcg={result.score:.6f}", flush=True)
    print(f"[strongroom] {result.status}: {result.message}", flush=True)
    return {"status": result.status, "violations": len(result.violations)}


def _report(reference: Any, window: Any, result: Any, title: str, output: Path) -> None:
    """``report.html`` beside the violations: baseline vs window per feature, distances, violations."""
    from strongroom.monitor.report import render_report

    html = render_report(reference, window, result, title=title)
    (output / "report.html").write_text(html, encoding="utf-8")


def run(hyper: dict[str, Any], output: Path = OUTPUT) -> dict[str, Any]:
    mode = str(hyper.get("mode", ""))
    if mode == "baseline":
        return baseline(hyper, output)
    if mode == "analysis":
        return analysis(hyper, output)
    if mode == "attribution-baseline":
        return attribution_baseline(hyper, output)
    if mode == "attribution":
        return attribution(hyper, output)
    raise InvalidInput(
        f"mode must be 'baseline', 'analysis', 'attribution-baseline' or 'attribution', not {mode!r}",
        field="hyperparameters.mode",
    )


def main() -> int:
    return job_main(run)


if __name__ == "__main__":
    sys.exit(main())
