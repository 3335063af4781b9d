"""The monitoring scheduler's windows, run in-process against a real platform with a fake clock:
every N minutes, hourly cron, a stopped schedule, and what a bad schedule is refused for."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest
import xgboost as xgb

from strongroom.algorithms.xgboost.archive import archive_bytes
from strongroom.core.context import Grant, RequestContext
from strongroom.core.errors import InvalidInput, NotFound, StrongroomError
from strongroom.demo.data import FEATURES, credit_default
from strongroom.monitor import compute_statistics, suggest_constraints
from strongroom.monitor.models import Execution, ScheduleSpec
from strongroom.platform import Platform
from strongroom.serving.models import EndpointConfigSpec, EndpointSpec, ModelSpec
from tests.support import context_for

MO = context_for("mo", Grant("MLOpsEngineer", "risk"))
DANA = context_for("dana", Grant("DataScientist", "risk"))


@pytest.fixture
def endpoint(teams: Platform, admin: RequestContext) -> Platform:
    p = teams
    p.kms.create_key(admin, "risk", "default", "risk key")
    for bucket in ("risk-data", "risk-models"):
        p.storage.create_bucket(DANA, "risk", bucket)
    frame = credit_default(500, seed=0)[FEATURES]
    booster = xgb.train(
        {"objective": "binary:logistic"}, xgb.DMatrix(frame.to_numpy(np.float32), label=np.zeros(500)), 2
    )
    p.storage.put_object(DANA, "risk-models", "m/model.tar.gz", [archive_bytes(bytes(booster.save_raw("ubj")))])
    statistics = compute_statistics([frame])
    for name, document in (
        ("statistics", statistics.to_json()),
        ("constraints", suggest_constraints(statistics).to_json()),
    ):
        p.storage.put_object(DANA, "risk-models", f"b/{name}.json", [json.dumps(document).encode()])
    p.serving.create_model(MO, "risk", ModelSpec(name="m", model_data="sr://risk-models/m/model.tar.gz"))
    config = {
        "name": "c",
        "ProductionVariants": [{"VariantName": "AllTraffic", "ModelName": "m"}],
        "DataCaptureConfig": {"EnableCapture": True, "DestinationS3Uri": "sr://risk-data/capture"},
    }
    p.serving.create_endpoint_config(MO, "risk", EndpointConfigSpec.model_validate(config))
    p.serving.create_endpoint(MO, "risk", EndpointSpec.model_validate({"name": "e", "EndpointConfigName": "c"}))
    return p


def _spec(**timing: object) -> ScheduleSpec:
    return ScheduleSpec.model_validate(
        {
            "name": "s",
            "endpoint": "e",
            "output_uri": "sr://risk-models/reports",
            "statistics_uri": "sr://risk-models/b/statistics.json",
            "constraints_uri": "sr://risk-models/b/constraints.json",
            **timing,
        }
    )


def _windows(p: Platform) -> list[Execution]:
    return sorted(p.monitoring.list_executions(MO, "risk", "s"), key=lambda e: e.window_start)


def test_every_n_minutes_windows_are_back_to_back_and_catch_up_once(endpoint: Platform) -> None:
    p = endpoint
    created = p.monitoring.create_schedule(MO, "risk", _spec(every_minutes=5)).created_at
    runner = p.monitoring_runner
    runner.tick(created + dt.timedelta(minutes=4))
    assert _windows(p) == []
    runner.tick(created + dt.timedelta(minutes=5, seconds=1))
    first = _windows(p)
    assert [(e.window_start, e.window_end, e.trigger) for e in first] == [
        (created, created + dt.timedelta(minutes=5), "interval")
    ]
    # the platform was down for 12 minutes: one window up to the latest boundary, not three
    runner.tick(created + dt.timedelta(minutes=17))
    second = _windows(p)[-1]
    assert (second.window_start, second.window_end) == (
        created + dt.timedelta(minutes=5),
        created + dt.timedelta(minutes=15),
    )
    # an execution waits for the window's capture to be uploaded, then runs as a monitoring job
    assert first[0].status in ("Pending", "InProgress")
    job = p.jobs.describe(MO, "risk", _windows(p)[0].job_name)
    assert job.kind == "monitoring" and job.spec.code.algorithm == "model-monitor"
    assert {c.name for c in job.spec.inputs} == {"baseline-statistics", "baseline-constraints"}  # no capture yet


def test_an_hourly_schedule_reads_the_hour_that_ended_and_a_stopped_one_reads_nothing(endpoint: Platform) -> None:
    p = endpoint
    schedule = p.monitoring.create_schedule(MO, "risk", _spec(schedule_cron_expression="cron(0 * ? * * *)"))
    assert schedule.next_run is not None and schedule.next_run.minute == 0
    p.monitoring_runner.tick(schedule.next_run + dt.timedelta(seconds=1))
    [window] = _windows(p)
    assert (window.window_start, window.window_end) == (schedule.next_run - dt.timedelta(hours=1), schedule.next_run)
    assert window.trigger == "cron"
    p.monitoring.set_schedule_status(MO, "risk", "s", running=False)
    p.monitoring_runner.tick(schedule.next_run + dt.timedelta(hours=3))
    assert len(_windows(p)) == 1


def test_a_bad_schedule_is_refused_before_anything_exists(endpoint: Platform) -> None:
    p = endpoint
    with pytest.raises(NotFound) as missing:
        p.monitoring.create_schedule(MO, "risk", _spec(every_minutes=5).model_copy(update={"endpoint": "nope"}))
    assert missing.value.field == "endpoint"
    with pytest.raises(StrongroomError) as no_stats:
        p.monitoring.create_schedule(
            MO, "risk", _spec(every_minutes=5).model_copy(update={"statistics_uri": "sr://risk-models/b/none.json"})
        )
    assert no_stats.value.field == "statistics_uri"
    with pytest.raises(InvalidInput) as not_a_column:
        p.monitoring.create_schedule(MO, "risk", _spec(every_minutes=5, excluded_columns=["Label"]))
    assert not_a_column.value.field == "excluded_columns"
    assert p.monitoring.list_schedules(MO, "risk") == []


def test_the_every_n_records_count_survives_a_restart(endpoint: Platform) -> None:
    """15 of 20 records counted, the platform restarts (its capture counter starts again at 0):
    5 more records open the window."""
    from strongroom.monitor.executions import ExecutionRunner

    p = endpoint
    p.monitoring.create_schedule(MO, "risk", _spec(every_records=20))
    captured = {"e": 15}
    p.monitoring_runner.captured = lambda team, endpoint: captured.get(endpoint)
    p.monitoring_runner.tick()  # first look at a schedule created by this process: counts from here
    captured["e"] = 30
    p.monitoring_runner.tick()
    assert _windows(p) == []
    assert p.monitoring.describe_schedule(MO, "risk", "s").records_counted == 15

    restarted = ExecutionRunner(
        p.db, p.guard, p.jobs, p.storage, p.alerts, captured=lambda team, endpoint: captured.get(endpoint)
    )
    captured["e"] = 4  # the restarted endpoint's counter
    restarted.tick()
    assert _windows(p) == []
    assert p.monitoring.describe_schedule(MO, "risk", "s").records_counted == 19
    captured["e"] = 5
    restarted.tick()
    [window] = _windows(p)
    assert window.trigger == "records"
    assert p.monitoring.describe_schedule(MO, "risk", "s").records_counted == 0


def test_an_explainability_schedule_explains_the_window_with_the_endpoints_model(endpoint: Platform) -> None:
    p = endpoint
    analysis = {"explanations": {"tree_shap": {"label0": {"global_shap_values": {"PAY_0": 0.5, "AGE": 0.1}}}}}
    p.storage.put_object(DANA, "risk-models", "x/analysis.json", [json.dumps(analysis).encode()])
    spec = {
        "name": "s",
        "endpoint": "e",
        "output_uri": "sr://risk-models/attribution",
        "monitoring_type": "ModelExplainability",
        "analysis_uri": "sr://risk-models/x/analysis.json",
        "every_minutes": 5,
    }
    with pytest.raises(InvalidInput) as mixed:  # statistics belong to data-quality schedules
        ScheduleSpec.model_validate({**spec, "statistics_uri": "sr://risk-models/b/statistics.json"})
    assert mixed.value.field == "monitoring_type"
    with pytest.raises(InvalidInput) as without:
        ScheduleSpec.model_validate({**spec, "analysis_uri": ""})
    assert without.value.field == "analysis_uri"
    with pytest.raises(StrongroomError) as refused:  # the same rule as data-quality schedules
        p.monitoring.create_schedule(DANA, "risk", ScheduleSpec.model_validate(spec))
    assert refused.value.status == 403
    p.storage.put_object(DANA, "risk-models", "x/bad.json", [json.dumps({"explanations": {}}).encode()])
    with pytest.raises(InvalidInput) as bad:
        p.monitoring.create_schedule(
            MO, "risk", ScheduleSpec.model_validate({**spec, "analysis_uri": "sr://risk-models/x/bad.json"})
        )
    assert bad.value.field == "analysis_uri"

    created = p.monitoring.create_schedule(MO, "risk", ScheduleSpec.model_validate(spec))
    assert (created.monitoring_type, created.feature_names, created.attribution_threshold) == (
        "ModelExplainability",
        ["PAY_0", "AGE"],
        0.9,
    )
    p.monitoring_runner.tick(created.created_at + dt.timedelta(minutes=5, seconds=1))
    p.monitoring_runner.tick(created.created_at + dt.timedelta(minutes=6))  # past the capture lag: it starts
    [window] = _windows(p)
    assert window.status == "InProgress", window.exit_message
    job = p.jobs.describe(MO, "risk", window.job_name)
    assert job.kind == "monitoring" and job.spec.hyperparameters["mode"] == "attribution"
    model = next(c for c in job.spec.inputs if c.name == "model")
    served = p.serving.describe_model(MO, "risk", "m")
    assert (model.source, model.version_id) == (served.model_data, served.version_id)
    assert {c.name for c in job.spec.inputs} == {"baseline-analysis", "model"}  # no capture yet
