"""The explainability job: exact SHAP in the sandbox, analysis.json + report.html to the bucket,
lineage and a trial component recorded with no user code."""

from __future__ import annotations

import json

import xgboost as xgb
from typer.testing import CliRunner

from strongroom.algorithms.xgboost.archive import archive_bytes
from strongroom.cli.main import app
from strongroom.demo.data import credit_default
from tests.integration.jobs.conftest import TeamEnv, csv_bytes

LABEL = "default payment next month"


def _model_tar(frame: object) -> bytes:
    features = frame.drop(columns=[LABEL])  # type: ignore[attr-defined]
    dtrain = xgb.DMatrix(features, label=frame[LABEL])  # type: ignore[index]
    booster = xgb.train({"max_depth": 4, "eta": 0.3, "objective": "binary:logistic", "seed": 0}, dtrain, 30)
    return archive_bytes(booster.save_raw("ubj"))


def test_explainability_job_writes_analysis_and_report(env: TeamEnv) -> None:
    frame = credit_default(n=4000, seed=3)
    env.alice.buckets.put_object(env.models, "explain/model.tar.gz", _model_tar(frame))
    env.alice.buckets.put_object(env.data, "explain/test.csv", csv_bytes(frame.iloc[:2000]))
    env_vars = {"STRONGROOM_HOME": str(env.server.config.home), "STRONGROOM_TOKEN": env.alice_token}
    result = CliRunner().invoke(
        app,
        [
            "explain",
            f"sr://{env.models}/explain/model.tar.gz",
            f"sr://{env.data}/explain/test.csv",
            "--team",
            env.team,
            "--output",
            f"sr://{env.data}/reports",
            "--volume-kms-key",
            env.key,
            "--label",
            LABEL,
        ],
        env=env_vars,
    )
    assert result.exit_code == 0, result.output
    assert "top feature 1: PAY_0" in result.output
    [job] = [j for j in env.alice.jobs.list(env.team) if j.kind == "explainability"]
    uris = {o.uri.rsplit("/", 1)[-1]: o.uri for o in job.outputs_produced}
    assert set(uris) == {"analysis.json", "report.html"}
    bucket, key = uris["analysis.json"][len("sr://") :].split("/", 1)
    analysis = json.loads(env.alice.buckets.get_object(bucket, key))
    method = analysis["method"]["name"]
    assert analysis["method"]["exact"] is True and analysis["row_count"] == 2000
    shap_values = analysis["explanations"][method][LABEL]["global_shap_values"]
    assert max(shap_values, key=shap_values.get) == "PAY_0"
    bucket, key = uris["report.html"][len("sr://") :].split("/", 1)
    html = env.alice.buckets.get_object(bucket, key).decode()
    assert "<img" in html and "data:image/png;base64," in html
    model = next(e for e in env.alice.lineage.list_entities(uri=uris["report.html"]))
    upstream = env.alice.lineage.upstream(model.srn, depth=3)
    assert f"sr://{env.models}/explain/model.tar.gz" in {getattr(n, "uri", "") for n in upstream.nodes}
