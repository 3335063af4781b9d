"""`strongroom demo` end to end: the workshop notebooks executed in sandboxed kernels, the faithful
notebooks 01 and 02, and the report a user keeps (checked in headless Chromium)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from strongroom.cli.main import app
from strongroom.demo.data import FEATURES, credit_default
from tests.e2e.browser import chromium, needs_chromium

NOTEBOOK_01 = "01_DataScientist-Workflow.ipynb"
NOTEBOOK_00 = "00_PlatformAdmin-Workflow.ipynb"
NOTEBOOK_02 = "02_MLOps-Workflow.ipynb"
# The workshop's training hyperparameters, exactly: nothing added, nothing changed.
WORKSHOP_HYPERPARAMETERS = {
    "max_depth": 5,
    "eta": 0.2,
    "gamma": 4,
    "min_child_weight": 6,
    "subsample": 0.8,
    "verbosity": 0,
    "objective": "binary:logistic",
    "num_round": 100,
}
# Label, the two scaled columns, then the other 21 features in their UCI order.
WORKSHOP_ORDER = ["Label", "PAY_AMT1", "BILL_AMT1", *(f for f in FEATURES if f not in ("PAY_AMT1", "BILL_AMT1"))]


def _workshop_test_rows() -> tuple[list[str], list[str]]:
    """The requests notebook 02 sends, rebuilt from the synthetic data as notebook 01's processing job
    and notebook 02 make them: the first 510 test rows as they are (label stripped), then 500 rows of
    the workshop's drift (LIMIT_BAL / 1000 on a random half, EDUCATION negated on three quarters)."""
    import pandas as pd
    from sklearn.compose import make_column_transformer
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import MinMaxScaler, StandardScaler

    df = credit_default(n=30000, seed=0).reset_index(drop=True)
    df = df.rename(columns={"default payment next month": "Label"})
    df = df[["Label"] + [c for c in df.columns if c != "Label"]]
    X, y = df.drop(columns="Label"), df["Label"]
    X_train, X_test, _, y_test = train_test_split(X, y, test_size=0.2, random_state=0)
    scale = make_column_transformer(
        (StandardScaler(), ["PAY_AMT1"]), (MinMaxScaler(), ["BILL_AMT1"]), remainder="passthrough"
    ).fit(X_train)
    columns = ["PAY_AMT1", "BILL_AMT1"] + [c for c in X.columns if c not in ("PAY_AMT1", "BILL_AMT1")]
    test = pd.concat([y_test.reset_index(drop=True), pd.DataFrame(scale.transform(X_test), columns=columns)], axis=1)
    lines = test.to_csv(header=False, index=False).splitlines()
    clean = [line.split(",", 1)[1] for line in lines[:510]]
    drift = pd.read_csv(io.StringIO("\n".join(lines)), header=None, names=["Label", *columns]).drop(columns="Label")
    drift["LIMIT_BAL"] = drift["LIMIT_BAL"].astype(float)
    half = drift.sample(frac=0.5, random_state=0).index
    drift.loc[half, "LIMIT_BAL"] = drift.loc[half, "LIMIT_BAL"] / 1000
    three_quarters = drift.sample(frac=0.75, random_state=1).index
    drift.loc[three_quarters, "EDUCATION"] = -drift.loc[three_quarters, "EDUCATION"]
    return clean, drift.iloc[510:1010].to_csv(header=False, index=False).splitlines()


def _cells(path: Path) -> list[dict[str, Any]]:
    return [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]


def _text(cell: dict[str, Any]) -> str:
    parts = []
    for output in cell.get("outputs", []):
        text = output.get("text", "") or output.get("data", {}).get("text/plain", "")
        parts.append("".join(text) if isinstance(text, list) else text)
    return "".join(parts)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """One demo run (about a minute): the platform home comes from STRONGROOM_HOME, as the help says."""
    root = tmp_path_factory.mktemp("demo")
    home, report = root / "home", root / "report"
    result = CliRunner().invoke(app, ["demo", "--report-dir", str(report)], env={"STRONGROOM_HOME": str(home)})
    assert result.exit_code == 0, result.output
    assert f"platform initialised in {home}" in " ".join(result.output.split())
    return home, report


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_demo_runs_the_workshop_in_sandboxed_notebooks(demo: tuple[Path, Path]) -> None:
    home, report = demo
    assert (home / "strongroom.db").exists()  # STRONGROOM_HOME was honoured, not a temporary directory
    assert not (home / "run" / "server.json").exists()  # the platform was stopped

    for name in (NOTEBOOK_00, NOTEBOOK_01, NOTEBOOK_02):
        cells = _cells(report / name)
        assert cells and all(c["execution_count"] for c in cells), name
        assert not any(o.get("output_type") == "error" for c in cells for o in c.get("outputs", [])), name

    data_scientist = _cells(report / NOTEBOOK_01)
    no_internet = _text(data_scientist[0])
    assert "no route to https://pypi.org/simple/" in no_internet and "REACHED" not in no_internet
    assert "running as uid 1000" in no_internet  # non-root, inside the sandbox
    assert "token kind: execution" in _text(data_scientist[1])

    summary = json.loads((report / "summary.json").read_text())
    assert 0.75 <= float(summary["test_auc"]) <= 0.85
    assert summary["top_shap_features"][0].startswith("PAY_")
    lineage = "\n".join(summary["lineage"])
    assert (
        "sr://risk-data/secure-strongroom-demo/raw/rawdata.csv" in lineage
    )  # the model's lineage reaches the raw data...
    commit = summary["commit"]
    assert re.fullmatch(r"https://[^/]+/api/v1/teams/risk/repositories/risk/commits/[0-9a-f]{40}", commit["url"])
    assert f"Commit: {commit['url']}" in lineage and "127.0.0.1:8750" not in lineage  # ...and the commit, openable
    assert "network isolation" in summary["guardrail"]
    assert summary["detective"]["status"] == "Stopped" and "detective control" in summary["detective"]["reason"]
    assert summary["audit"]["ok"] is True
    admin = "\n".join(_text(c) for c in _cells(report / NOTEBOOK_00))
    assert "guardrail-network-isolation" in admin and "enforce-network-isolation" in admin
    assert "audit chain: OK" in admin


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_notebook_01_is_the_workshops(demo: tuple[Path, Path]) -> None:
    _, report = demo
    cells = _cells(report / NOTEBOOK_01)
    source = "\n".join("".join(c["source"]) for c in cells)
    out = "\n".join(_text(c) for c in cells)

    # Exploration on the workshop's frame: ID dropped, Label first; the same scatter-matrix columns.
    assert "(30000, 24)" in out and "Name: count" in out  # the frame, then SEX.value_counts()
    assert 'df[["BILL_AMT1", "BILL_AMT2", "PAY_AMT1", "PAY_AMT2"]]' in source
    # Preprocessing: 80/20 without stratification; only PAY_AMT1 and BILL_AMT1 scaled; Label first.
    assert "stratify" not in source
    assert "train_data.csv (24000, 24) | test_data.csv (6000, 24)" in out
    assert "columns: " + ", ".join(WORKSHOP_ORDER) in out
    # The processing job: --train-test-split-ratio 0.2; headerless train/test and train_headers with its header.
    assert '"--train-test-split-ratio", "0.2"' in source
    assert "train (24000, 24) | test (6000, 24) | train_headers (24000, 24)" in out
    assert "train_headers header: " + ",".join(WORKSHOP_ORDER) in out
    assert "the job's train set equals the notebook's: True" in out
    # The experiment, with the Preprocessing tracker's ratio; analytics newest first.
    assert re.search(
        r"CreditCardDefault-\d{8}-\d{6} \| cc-xgboost-training-job-\S+ \| \{'train_test_split_ratio': 0.2\}", out
    )
    assert "components: Training, Preprocessing" in out
    # The detective control: alice's launch denied, beside the exempted team's job stopped.
    assert re.search(r"risk: .*jobs and models must run with network isolation", out)
    assert re.search(r"detective control: Stopped after [0-9.]+ s", out)
    # Training: the train channel only, the workshop's hyperparameters exactly, spot, max_run = max_wait = 3600.
    summary = json.loads((report / "summary.json").read_text())
    assert summary["hyperparameters"] == WORKSHOP_HYPERPARAMETERS
    assert summary["channels"] == ["train"]
    assert "use_spot_instances=True, max_runtime_in_seconds=3600, max_wait=3600" in source
    # The model: importance by weight, SHAP over the full training set; no feature names set by hand.
    assert "feature_names =" not in source and ".feature_names=" not in source
    assert re.search(r"importance \(weight\): \w+", out)
    assert "SHAP values for 24000 training rows x 23 features" in out
    # The hand-off to notebook 02.
    handoff = json.loads(out[out.index("stored for notebook 02:") :].split("\n", 1)[1])
    assert set(handoff) >= {"experiment_name", "trial_name", "training_job_name", "train_headers", "test_data"}
    assert handoff["training_job_name"] == summary["training_job"]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_notebook_02_is_the_workshops(demo: tuple[Path, Path]) -> None:
    _, report = demo
    cells = _cells(report / NOTEBOOK_02)
    source = "\n".join("".join(c["source"]) for c in cells)
    out = "\n".join(_text(c) for c in cells)
    summary = json.loads((report / "summary.json").read_text())
    job = summary["training_job"]

    # Omar's own notebook, acting as his MLOpsEngineer role; 01's hand-off and trial.
    assert "user: omar | acting as: ['MLOpsEngineer@risk'] | token kind: execution" in out
    assert "trial: cc-xgboost-training-job-" in out and "| components: Preprocessing, Training" in out
    assert f"training job: {job} | the one notebook 01 handed over: True" in out
    # The model, the capture config (100 %, Input and Output, CSV and JSON) and the endpoint.
    assert f"{job}-model | sr://risk-models/" in out
    capture_config = json.loads(out[out.index('{\n "EnableCapture"') :].split("\n}\n", 1)[0] + "\n}")
    assert capture_config["InitialSamplingPercentage"] == 100
    assert capture_config["DestinationS3Uri"] == "sr://risk-data/secure-strongroom-demo/monitoring/datacapture"
    assert [o["CaptureMode"] for o in capture_config["CaptureOptions"]] == ["Input", "Output"]
    assert capture_config["CaptureContentTypeHeader"] == {
        "CsvContentTypes": ["text/csv"],
        "JsonContentTypes": ["application/json"],
    }
    assert f"Endpoint: srn:strongroom:risk:endpoint/{job}-endpoint" in out and "Status: InService" in out
    assert (
        '"InitialInstanceCount": 1, "InitialVariantWeight": 1.0' in source and '"VariantName": "AllTraffic"' in source
    )
    # The first 10 test rows, one request each, 0.5 s apart; the capture files and one record.
    assert len(re.findall(r"^label [01] -> score 0\.\d+$", out, re.MULTILINE)) == 10
    assert "time.sleep(0.5)" in source
    assert re.search(
        rf"sr://risk-data/secure-strongroom-demo/monitoring/datacapture/{job}-endpoint/AllTraffic/"
        r"\d{4}/\d{2}/\d{2}/\d{2}/[^/\s]+\.jsonl",
        out,
    )
    record = json.loads(out[out.index('{\n  "captureData"') :].split("\n}\n", 1)[0] + "\n}")
    assert record["captureData"]["endpointInput"]["mode"] == "INPUT"
    assert record["captureData"]["endpointInput"]["encoding"] == "CSV"
    assert record["captureData"]["endpointOutput"]["observedContentType"] == "text/csv; charset=utf-8"
    assert record["eventVersion"] == "0" and record["eventMetadata"]["inferenceTime"].endswith("Z")
    # Baseline on train_headers (label excluded), an hourly schedule, one execution run now per window.
    assert re.search(r"baseline: 24000 rows x 2[34] features \| \d+ constraints \| sr://risk-models/", out)
    assert 'excluded_columns=["Label"]' in source and "DatasetFormat.csv(header=True)" in source
    assert re.search(
        r"Schedule status: Scheduled \| xgb-credit-score-model-monitor-schedule-\S+ \| cron\(0 \* \? \* \* \*\)", out
    )
    assert "CronExpressionGenerator.hourly()" in source and "run_now(" in source
    assert "Latest execution status: CompletedWithViolations" in out
    # Violations: exactly LIMIT_BAL and EDUCATION on the drifted traffic, nothing on the clean traffic.
    assert "violations on the drifted traffic: EDUCATION, LIMIT_BAL" in out
    assert "violations on the clean traffic: none" in out
    monitoring = summary["monitoring"]
    assert {v["feature_name"] for v in monitoring["drifted"]["violations"]} == {"LIMIT_BAL", "EDUCATION"}
    assert monitoring["clean"]["violations"] == []
    assert (report / monitoring["drifted"]["report_file"]).read_text().lstrip().lower().startswith("<!doctype html")
    # The two commits, as trial components with the workshop's parameters, and the lineage DataFrame.
    alice_sha = summary["commit"]["sha"]
    assert re.search(
        rf"training code \(notebook 01\): {alice_sha} \| alice <alice@risk.example> \| \S+ \| Workshop", out
    )
    omar_sha = re.search(r"deployment code \(notebook 02\): ([0-9a-f]{40}) \| omar <omar@risk.example> \|", out)
    assert omar_sha and omar_sha[1] != alice_sha
    assert "trial components: Preprocessing, Training, source-control-lineage, prod-endpoint-lineage" in out
    assert 'log_input(name="endpoint-name", value=endpoint_name)' in source
    assert f"{job}-endpoint" in out[out.index("trial components:") :]
    # The endpoint's lineage reaches the raw data and both commits.
    endpoint = summary["endpoint"]
    lineage = "\n".join(endpoint["lineage"])
    assert "DataSet: sr://risk-data/secure-strongroom-demo/raw/rawdata.csv" in lineage
    assert {c["sha"] for c in endpoint["commits"]} == {alice_sha, omar_sha[1]}
    assert "reaches both commits: True" in out
    # The capture holds exactly the requests sent: the notebook's own count, and the rows this test
    # rebuilds from the data against what the platform's capture holds (read back by the demo).
    clean, drift = _workshop_test_rows()
    sent = clean + drift
    assert endpoint["sent"] == len(sent) == 1010 and endpoint["capture_equals_sent"] is True
    assert summary["capture"]["records"] == len(sent)
    assert summary["capture"]["inputs_sha256"] == hashlib.sha256("\n".join(sorted(sent)).encode()).hexdigest()
    assert endpoint["p50_ms"] > 0 and endpoint["requests"] == len(sent)
    # Capture: the team reads it, the platform admin is refused; a data scientist may not deploy.
    assert summary["capture"]["team_reads"] is True
    assert (
        "platform administrators and auditors manage keys and buckets but never read"
        in summary["capture"]["admin_denied"]
    )
    assert endpoint["guardrail"] == "alice CreateEndpoint: denied by guardrail-no-endpoint-by-data-scientist"
    data_scientist = "\n".join(_text(c) for c in _cells(report / NOTEBOOK_01))
    assert "refused (create an endpoint): " in data_scientist
    assert "data scientists cannot create or delete endpoints" in data_scientist
    # Clean-up: the schedule, then the endpoint.
    assert (
        "monitoring schedule xgb-credit-score-model-monitor-schedule-" in out
        and f"endpoint {job}-endpoint Deleting" in out
    )
    assert summary["audit"]["ok"] is True


@pytest.mark.slow
@pytest.mark.timeout(900)
@needs_chromium
def test_the_report_opens_in_a_browser(demo: tuple[Path, Path], tmp_path: Path) -> None:
    _, report = demo
    summary = report / "summary.html"
    dom = chromium(tmp_path, "--dump-dom", summary.as_uri()).stdout.decode()
    plots = re.findall(r"<figcaption>([^<]+)</figcaption><img alt=\"[^\"]+\" src=\"data:image/png;base64,", dom)
    assert [p.split(":")[0].split(" (")[0] for p in plots] == [
        "Label balance",
        "Correlations",
        "Feature importance",
        "SHAP",
        "SHAP",
        "Drift",
    ]
    expected = {
        "00_PlatformAdmin-Workflow.html": "audit chain: OK",
        "01_DataScientist-Workflow.html": "SHAP values for 24000 training rows",
        "02_MLOps-Workflow.html": "violations on the drifted traffic: EDUCATION, LIMIT_BAL",
        "drift-report.html": "LIMIT_BAL",
    }
    for name, text in expected.items():
        assert f'href="{name}"' in dom
        rendered = chromium(tmp_path, "--dump-dom", (report / name).as_uri()).stdout.decode()
        assert text in rendered, name
    assert re.search(r'id="flagged">clean traffic: none; drifted traffic:\s+EDUCATION, LIMIT_BAL<', dom)
    commit = json.loads((report / "summary.json").read_text())["commit"]["url"]
    assert f'href="{commit}"' in dom
    detective = json.loads((report / "summary.json").read_text())["detective"]["reason"]
    assert detective in dom  # not cut

    shot = report / "summary.png"
    chromium(tmp_path, "--window-size=1200,4000", "--hide-scrollbars", f"--screenshot={shot}", summary.as_uri())
    image = Image.open(io.BytesIO(shot.read_bytes())).convert("RGB")
    assert image.size == (1200, 4000)
    # The images are on screen, not just in the DOM: shap's bar plot draws in its blue (#008bfb), the
    # beeswarm's high values in its red (#ff0051).
    pixels = np.asarray(image).astype(int)
    r, g, b = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    assert int(((r < 30) & (g > 120) & (g < 160) & (b > 230)).sum()) > 20000
    assert int(((r > 230) & (g < 40) & (b > 40) & (b < 120)).sum()) > 2000


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_no_input_row_is_on_disk_in_plaintext(demo: tuple[Path, Path]) -> None:
    # DESIGN invariant 1: after the whole workflow no input row and no captured request is on disk in
    # plaintext anywhere in the platform home (buckets, capture spools, job scratch, notebook volumes,
    # git, logs, the database).
    home, _ = demo
    assert not any(os.path.ismount(p) for p in home.rglob("home"))  # everything was unmounted
    table = credit_default(n=30000, seed=0)
    label_first = table.reset_index(drop=True)[[table.columns[-1], *table.columns[:-1]]]  # as rawdata.csv has it
    rows = [
        line.encode()
        for text in (table.to_csv(), label_first.to_csv(index=False))
        for line in text.splitlines()[1::1500]  # 20 rows spread over each file
    ]
    clean, drift = _workshop_test_rows()  # what notebook 02 sent, so what the endpoint captured
    rows += [row.encode() for row in clean[::25] + drift[::25]]
    for path in (p for p in home.rglob("*") if p.is_file()):
        data = path.read_bytes()
        assert not any(row in data for row in rows), f"an input row in plaintext in {path}"


def test_a_headerless_training_file_alone_is_refused_before_anything_starts(tmp_path: Path) -> None:
    train = tmp_path / "train_data.csv"
    train.write_text("\n".join(",".join(["0"] + ["1"] * 23) for _ in range(5)) + "\n")
    home = tmp_path / "home"
    runner = CliRunner()
    result = runner.invoke(app, ["demo", "--data", str(train)], env={"STRONGROOM_HOME": str(home)})
    assert result.exit_code == 1
    assert "give its test_data.csv too" in " ".join(result.output.split())
    assert not home.exists()  # nothing was initialised
    result = runner.invoke(app, ["demo", "--test", str(train)], env={"STRONGROOM_HOME": str(home)})
    assert result.exit_code == 2 and "--test needs --data" in " ".join(result.output.split())
