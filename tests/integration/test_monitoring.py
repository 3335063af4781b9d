"""Notebook 02, steps 8-12, for real: a baseline job over the training data with headers, an hourly
schedule on a live endpoint with capture, the workshop's drifted traffic through HTTPS, and the
violations; plus clean traffic, an empty window, bad columns, an hour boundary, who may do what, and
an execution whose job dies with the platform."""

from __future__ import annotations

import datetime as dt
import io
import json
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from strongroom.algorithms.xgboost.archive import archive_bytes
from strongroom.core import pki
from strongroom.core.config import Config
from strongroom.core.errors import Forbidden, InvalidInput, StrongroomError
from strongroom.demo.data import FEATURES, LABEL, credit_default
from strongroom.platform import initialize
from strongroom.sdk.jobs import RunningJob
from strongroom.sdk.monitor import (
    CronExpressionGenerator,
    DatasetFormat,
    DefaultModelMonitor,
    ModelExplainabilityMonitor,
    MonitoringExecution,
)
from strongroom.sdk.serving import DataCaptureConfig, Model
from strongroom.sdk.session import Session
from tests.integration.jobs.conftest import TeamEnv, add_mlops_engineer, build_team
from tests.support import AlertReceiver, alert_receiver, start_server

# module fixtures start servers, train models and sandboxes: more than the suite's 120 s on a busy machine
pytestmark = pytest.mark.timeout(600)

ENDPOINT = "xgb-credit-endpoint"
SCHEDULE = "xgb-credit-score-model-monitor-schedule-1"
LAG = 6.0  # the endpoint uploads its capture every 5 s


@dataclass
class Monitored:
    env: TeamEnv
    mlops: Session
    mlops_token: str
    monitor: DefaultModelMonitor
    test: pd.DataFrame
    capture: str
    model_uri: str
    explainability: ModelExplainabilityMonitor
    attribution_baseline: RunningJob
    past: dict[str, MonitoringExecution] = field(default_factory=dict)


def _csv(frame: pd.DataFrame, header: bool) -> bytes:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, header=header)
    return buffer.getvalue().encode()


@pytest.fixture(scope="module")
def monitored(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Monitored]:
    home = tmp_path_factory.mktemp("monitoring") / "home"
    config = Config(home=home, port=0)
    token = initialize(config).token.secret
    settings = {
        "STRONGROOM_MONITOR_CAPTURE_LAG_SECONDS": str(LAG),
        # team webhooks: the test's receiver on this host, with a certificate of the platform CA
        "STRONGROOM_ALERT_TEAM_WEBHOOK_ALLOWED_HOSTS": '["localhost"]',
        "STRONGROOM_ALERT_WEBHOOK_CA": str(pki.TlsFiles.in_dir(config.tls_dir).ca_cert),
    }
    server = start_server(config, token, env=settings)
    try:
        env = build_team(server)
        mlops_token, mlops = add_mlops_engineer(env)
        data = credit_default(30000, seed=0)
        train, test = data.iloc[:24000], data.iloc[24000:].reset_index(drop=True)
        headers = train.rename(columns={LABEL: "Label"})[["Label", *FEATURES]]
        env.alice.buckets.put_object(env.data, "train_headers/train_data_with_headers.csv", _csv(headers, True))
        booster = xgb.train(
            {"max_depth": 3, "eta": 0.3, "objective": "binary:logistic", "verbosity": 0},
            xgb.DMatrix(train[FEATURES].to_numpy(np.float32)[:3000], label=train[LABEL].to_numpy()[:3000]),
            num_boost_round=10,
        )
        archive = env.alice.buckets.put_object(env.models, "model/model.tar.gz", archive_bytes(booster.save_raw("ubj")))
        monitor = DefaultModelMonitor(
            role="MLOpsEngineer",
            instance_count=1,
            volume_kms_key=env.key,
            max_runtime_in_seconds=3600,
            session=mlops,
            team=env.team,
        )
        job = monitor.suggest_baseline(
            baseline_dataset=f"sr://{env.data}/train_headers/train_data_with_headers.csv",
            dataset_format=DatasetFormat.csv(header=True),
            output_s3_uri=f"sr://{env.models}/credit-model/baselining/results",
            excluded_columns=["Label"],
            wait=False,  # the baseline job runs while the endpoint starts
        )
        explainability = ModelExplainabilityMonitor(volume_kms_key=env.key, session=mlops, team=env.team)
        attribution_baseline = explainability.suggest_baseline(
            baseline_dataset=f"sr://{env.data}/train_headers/train_data_with_headers.csv",
            model_uri=archive.uri,
            dataset_format=DatasetFormat.csv(header=True),
            output_s3_uri=f"sr://{env.models}/credit-model/explainability-baselining/results",
            excluded_columns=["Label"],
            wait=False,
        )
        capture = f"sr://{env.data}/secure-sagemaker-demo/monitoring/datacapture"
        Model(archive.uri, name="credit-model", session=mlops, team=env.team, kms_key=env.key).deploy(
            initial_instance_count=1, endpoint_name=ENDPOINT, data_capture_config=DataCaptureConfig(capture)
        )
        assert job.wait(logs=False).status == "Completed"
        monitor.create_monitoring_schedule(
            monitor_schedule_name=SCHEDULE,
            endpoint_input=ENDPOINT,
            output_s3_uri=f"sr://{env.models}/credit-model/reports",
            statistics=monitor.baseline_statistics(),
            constraints=monitor.suggested_constraints(),
            schedule_cron_expression=CronExpressionGenerator.hourly(),
            enable_cloudwatch_metrics=True,
        )
        monitored = Monitored(
            env, mlops, mlops_token, monitor, test, capture, archive.uri, explainability, attribution_baseline
        )
        _start_past_windows(monitored)  # their jobs run while the live tests wait for capture uploads
        yield monitored
    finally:
        server.stop()


def _send(m: Monitored, frame: pd.DataFrame, batch: int = 200) -> None:
    """Headerless feature rows through the live endpoint, as notebook 02 sends them (in batches)."""
    for start in range(0, len(frame), batch):
        m.mlops.endpoints.invoke(m.env.team, ENDPOINT, _csv(frame.iloc[start : start + batch], False), "text/csv")


def _put_capture(m: Monitored, hour: dt.datetime, records: list[tuple[dt.datetime, str]], name: str) -> None:
    """Capture records as the endpoint writes them, for windows in the past (the same object layout)."""
    lines = []
    for when, rows in records:
        record = {
            "captureData": {
                "endpointInput": {"observedContentType": "text/csv", "mode": "INPUT", "data": rows, "encoding": "CSV"},
                "endpointOutput": {
                    "observedContentType": "text/csv",
                    "mode": "OUTPUT",
                    "data": "0.5",
                    "encoding": "CSV",
                },
            },
            "eventMetadata": {"eventId": name, "inferenceTime": when.strftime("%Y-%m-%dT%H:%M:%S.000Z")},
            "eventVersion": "0",
        }
        lines.append(json.dumps(record))
    key = m.capture.split("/", 3)[3] + f"/{ENDPOINT}/AllTraffic/{hour.strftime('%Y/%m/%d/%H')}/{name}.jsonl"
    m.env.alice.buckets.put_object(m.env.data, key, ("\n".join(lines) + "\n").encode())


def _rows(frame: pd.DataFrame) -> str:
    return _csv(frame, False).decode().strip()


def test_the_baseline_leaves_out_the_label_and_reads_as_dataframes(monitored: Monitored) -> None:
    statistics = monitored.monitor.baseline_statistics()
    assert statistics.body_dict["dataset"]["item_count"] == 24000
    assert [f["name"] for f in statistics.body_dict["features"]] == FEATURES
    frame = statistics.frame()
    assert list(frame["name"]) == FEATURES and "numerical_statistics.mean" in frame.columns
    constraints = monitored.monitor.suggested_constraints()
    assert constraints.body_dict["monitoring_config"]["distribution_constraints"]["comparison_threshold"] == 0.1
    assert list(constraints.frame()["name"]) == FEATURES
    described = monitored.monitor.describe_schedule()
    assert described["MonitoringScheduleStatus"] == "Scheduled"
    assert described["schedule_expression"] == "cron(0 * ? * * *)"
    assert described["feature_names"] == FEATURES
    next_run = dt.datetime.fromisoformat(described["next_run"])
    assert next_run.minute == 0 and next_run > dt.datetime.now(dt.UTC)


def test_drifted_traffic_flags_exactly_limit_bal_and_education(monitored: Monitored) -> None:
    rng = np.random.default_rng(7)
    drifted = monitored.test[FEATURES].copy()
    drifted["LIMIT_BAL"] = drifted["LIMIT_BAL"].astype(float)
    half = rng.random(len(drifted)) < 0.5
    drifted.loc[half, "LIMIT_BAL"] = drifted.loc[half, "LIMIT_BAL"] / 1000
    three_quarters = rng.random(len(drifted)) < 0.75
    drifted.loc[three_quarters, "EDUCATION"] = -drifted.loc[three_quarters, "EDUCATION"]
    _send(monitored, drifted)

    execution = monitored.monitor.run_now(wait=True, timeout=120)
    described = execution.describe()
    assert described["MonitoringExecutionStatus"] == "CompletedWithViolations", described
    assert described["rows"] == len(drifted)
    violations = execution.constraint_violations()
    assert {v["feature_name"] for v in violations.body_dict["violations"]} == {"LIMIT_BAL", "EDUCATION"}
    checks = {(v["feature_name"], v["constraint_check_type"]) for v in violations.body_dict["violations"]}
    assert ("LIMIT_BAL", "baseline_drift_check") in checks and ("EDUCATION", "non_negative_check") in checks
    assert list(violations.frame().columns) == ["feature_name", "constraint_check_type", "description"]
    latest = monitored.monitor.latest_monitoring_constraint_violations()
    assert latest is not None and latest.body_dict == violations.body_dict
    assert "LIMIT_BAL" in described["exit_message"] and "EDUCATION" in described["exit_message"]
    assert described["distances"]["LIMIT_BAL"] > 0.4 and described["distances"]["AGE"] < 0.1
    report = execution.report()
    assert report.startswith("<!DOCTYPE html>") and "LIMIT_BAL" in report
    files = {
        o.key.rsplit("/", 1)[-1]
        for o in monitored.mlops.buckets.list_objects(
            monitored.env.models, described["output_uri"].split("/", 3)[3] + "/"
        ).objects
    }
    assert files == {"statistics.json", "constraint_violations.json", "report.html"}

    # the alert: an audit event, and the gauges per schedule and feature
    alerts = monitored.env.admin.audit.query(action="RaiseAlert")
    assert any("model-monitor-violations" in json.dumps(a.model_dump(mode="json")) for a in alerts)
    metrics = monitored.env.admin.request("GET", "/metrics").text
    line = next(
        x for x in metrics.splitlines() if x.startswith("strongroom_monitor_feature_distance") and "LIMIT_BAL" in x
    )
    assert float(line.rsplit(" ", 1)[1]) > 0.4
    assert 'strongroom_monitor_violations{check="non_negative_check"' in metrics


def test_unshifted_traffic_flags_nothing_hourly_or_every_n_records(monitored: Monitored) -> None:
    env = monitored.env
    near_real_time = {
        "name": "every-20-requests",
        "endpoint": ENDPOINT,
        "output_uri": f"sr://{env.models}/credit-model/near-real-time",
        "statistics_uri": monitored.monitor.baseline_statistics().file_s3_uri,
        "constraints_uri": monitored.monitor.suggested_constraints().file_s3_uri,
        "every_records": 20,
        "resources": {"volume_kms_key": env.key},
    }
    assert monitored.mlops.monitoring.create_schedule(env.team, near_real_time).schedule_expression == (
        "every 20 records"
    )
    _send(monitored, monitored.test[FEATURES])  # 30 requests of 200 rows
    execution = monitored.monitor.run_now(wait=True, timeout=120)
    described = execution.describe()
    assert described["MonitoringExecutionStatus"] == "Completed", described
    assert described["rows"] == len(monitored.test)
    assert execution.constraint_violations().body_dict == {"violations": []}
    assert max(described["distances"].values()) < 0.05

    deadline = time.monotonic() + 60
    while not (found := monitored.mlops.monitoring.list_executions(env.team, "every-20-requests")):
        assert time.monotonic() < deadline, "no window opened after 20 captured requests"
        time.sleep(0.5)
    by_records = monitored.mlops.monitoring.wait_execution(env.team, "every-20-requests", found[-1].id, timeout=120)
    assert by_records.trigger == "records"
    assert by_records.status == "Completed", by_records
    assert by_records.rows is not None and by_records.rows >= 20 * 200
    monitored.mlops.monitoring.delete_schedule(env.team, "every-20-requests")

    # captured rows, statistics (sketches hold values) and reports are encrypted at rest: no row on disk
    row = _rows(monitored.test[FEATURES].iloc[[7]]).encode()
    leaked = [p for p in env.server.config.home.rglob("*") if p.is_file() and row in p.read_bytes()]
    assert leaked == []


def test_an_empty_window_completes_with_a_clear_message(monitored: Monitored) -> None:
    described = monitored.past["empty"].wait(180).model_dump(mode="json")
    assert described["status"] == "Completed"
    assert described["exit_message"] == "no captured data between 2019-03-01T10:00:00Z and 2019-03-01T11:00:00Z"


def test_missing_extra_and_mistyped_columns_are_named(monitored: Monitored) -> None:
    execution = monitored.past["columns"]
    assert execution.wait(180).status == "CompletedWithViolations"
    found = {
        (v["feature_name"], v["constraint_check_type"])
        for v in execution.constraint_violations().body_dict["violations"]
    }
    assert ("PAY_AMT6", "missing_column_check") in found
    assert ("_c23", "extra_column_check") in found
    assert ("EDUCATION", "data_type_check") in found
    assert not any(name in ("LIMIT_BAL", "AGE") for name, _ in found)


def test_a_window_straddling_an_hour_boundary_reads_both_hours(monitored: Monitored) -> None:
    ended = monitored.past["straddle"].wait(180)
    assert ended.status == "Completed", ended
    assert ended.rows == 1000  # 400 before the hour, 600 after; the 10:20 records are outside


def _start_past_windows(m: Monitored) -> None:
    """Windows in the past over capture files laid out as the endpoint writes them: an empty one,
    one with rows of the wrong width and type, one straddling an hour boundary."""
    rows = m.test[FEATURES]
    nine = dt.datetime(2020, 1, 1, 9, tzinfo=dt.UTC)
    typed = rows.iloc[200:300].astype(object)
    typed["EDUCATION"] = "university"
    _put_capture(
        m,
        nine,
        [
            (nine + dt.timedelta(minutes=1), _rows(rows.iloc[:100, :-1])),  # 22 fields: PAY_AMT6 missing
            (nine + dt.timedelta(minutes=2), _rows(rows.iloc[100:200].assign(extra=1))),  # 24 fields
            (nine + dt.timedelta(minutes=3), _rows(typed)),
        ],
        "columns",
    )
    ten, eleven = dt.datetime(2020, 1, 2, 10, tzinfo=dt.UTC), dt.datetime(2020, 1, 2, 11, tzinfo=dt.UTC)
    _put_capture(
        m,
        ten,
        [
            (ten + dt.timedelta(minutes=20), _rows(rows.iloc[:500])),
            (ten + dt.timedelta(minutes=59, seconds=30), _rows(rows.iloc[500:900])),
        ],
        "ten",
    )
    _put_capture(m, eleven, [(eleven + dt.timedelta(seconds=30), _rows(rows.iloc[900:1500]))], "eleven")
    empty = dt.datetime(2019, 3, 1, 10, tzinfo=dt.UTC)
    m.past["empty"] = m.monitor.run_now(empty, empty + dt.timedelta(hours=1), wait=False)
    m.past["columns"] = m.monitor.run_now(nine, nine + dt.timedelta(hours=1), wait=False)
    m.past["straddle"] = m.monitor.run_now(ten + dt.timedelta(minutes=59), eleven + dt.timedelta(minutes=1), wait=False)


def test_feature_attribution_drift_flags_a_changed_ranking_not_clean_traffic(monitored: Monitored) -> None:
    """An explainability schedule on the live endpoint: exact TreeSHAP of the window's captured rows
    with the endpoint's model, ranked against the training data's. LIMIT_BAL sent in thousands on
    every row (the workshop's unit slip, on all rows) lifts it from third to first place."""
    env, explainability = monitored.env, monitored.explainability
    assert monitored.attribution_baseline.wait(logs=False).status == "Completed"
    ranking = explainability.baseline_analysis().frame()
    assert list(ranking["name"][:3]) == ["PAY_0", "PAY_2", "LIMIT_BAL"]
    spec = {
        "name": "credit-attribution",
        "endpoint": ENDPOINT,
        "output_uri": f"sr://{env.models}/credit-model/attribution",
        "monitoring_type": "ModelExplainability",
        "analysis_uri": explainability.baseline_analysis().file_s3_uri,
        "schedule_cron_expression": "cron(0 * ? * * *)",
        "resources": {"volume_kms_key": env.key},
    }
    with pytest.raises(Forbidden):  # the same rule as data-quality schedules
        env.alice.monitoring.create_schedule(env.team, spec)
    created = explainability.create_monitoring_schedule(
        monitor_schedule_name="credit-attribution",
        endpoint_input=ENDPOINT,
        output_s3_uri=f"sr://{env.models}/credit-model/attribution",
        analysis_config=explainability.baseline_analysis(),
        schedule_cron_expression=CronExpressionGenerator.hourly(),
    )
    assert created.monitoring_type == "ModelExplainability" and created.attribution_threshold == 0.9
    assert created.feature_names == FEATURES

    clean = monitored.test[FEATURES].iloc[:2000]
    drifted = monitored.test[FEATURES].iloc[2000:4000].astype(float)
    drifted["LIMIT_BAL"] = drifted["LIMIT_BAL"] / 1000
    t0 = dt.datetime.now(dt.UTC)
    _send(monitored, clean)
    time.sleep(0.05)
    t1 = dt.datetime.now(dt.UTC)
    _send(monitored, drifted)
    time.sleep(0.05)
    t2 = dt.datetime.now(dt.UTC)
    quiet = explainability.run_now(t0, t1, wait=False)
    moved = explainability.run_now(t1, t2, wait=False)

    assert quiet.wait(180).status == "Completed", quiet.execution
    assert quiet.execution.rows == len(clean)
    assert "nDCG" in quiet.execution.exit_message
    assert quiet.constraint_violations().body_dict == {"version": "1.0", "violations": []}

    ended = moved.wait(180)
    assert ended.status == "CompletedWithViolations", ended
    [violation] = moved.constraint_violations().body_dict["violations"]
    assert violation["constraint_check_type"] == "feature_attribution_drift_check"
    assert "LIMIT_BAL" in violation["description"]
    window = moved.analysis().frame()
    assert window["name"][0] == "LIMIT_BAL"
    assert "Feature attribution" in moved.report()
    assert explainability.latest_monitoring_analysis() is not None
    alerts = env.admin.audit.query(action="RaiseAlert")
    assert any("credit-attribution" in json.dumps(a.model_dump(mode="json")) for a in alerts)
    explainability.delete_monitoring_schedule()


@pytest.fixture
def receiver(monitored: Monitored, tmp_path: Path) -> Iterator[AlertReceiver]:
    with alert_receiver(monitored.env.server.config, tmp_path, "/risk/alerts") as found:
        yield found


def test_a_teams_monitoring_alerts_go_to_its_own_webhook(monitored: Monitored, receiver: AlertReceiver) -> None:
    url = receiver.url
    env = monitored.env
    team_admin = env.server.session(env.admin.tokens.create("hook", user=f"{env.team}-admin").secret)
    with pytest.raises(Forbidden):  # the team's DataScienceAdmin sets it, not a data scientist
        env.alice.monitoring.set_alert_webhook(env.team, url)
    with pytest.raises(InvalidInput) as private:  # not the platform's own network
        team_admin.monitoring.set_alert_webhook(env.team, url.replace("localhost", "127.0.0.1"))
    assert "not a public address" in private.value.detail
    with pytest.raises(InvalidInput):
        team_admin.monitoring.set_alert_webhook(env.team, url.replace("https://", "https://ops:pw@"))
    team_admin.monitoring.set_alert_webhook(env.team, url)
    assert monitored.mlops.monitoring.describe_alert_webhook(env.team).url == url
    assert len(env.admin.audit.query(action="PutTeamAlertWebhook")) == 4  # refusals included

    nine = dt.datetime(2020, 1, 1, 9, tzinfo=dt.UTC)  # the window of bad columns: violations
    execution = monitored.monitor.run_now(nine, nine + dt.timedelta(hours=1), wait=True, timeout=180)
    assert execution.execution.status == "CompletedWithViolations"

    def mine() -> list[dict[str, object]]:  # the module's other windows may raise alerts meanwhile
        return [a for a in receiver.received if isinstance(d := a["details"], dict) and d["execution"] == execution.id]

    deadline = time.monotonic() + 30
    while not mine():
        assert time.monotonic() < deadline, f"no alert of {execution.id} reached the team's webhook"
        time.sleep(0.2)
    [alert] = mine()
    assert alert["rule"] == "model-monitor-violations" and alert["team"] == env.team
    assert isinstance(details := alert["details"], dict) and details["schedule"] == SCHEDULE
    team_admin.monitoring.delete_alert_webhook(env.team)


def test_who_may_create_and_read_schedules(monitored: Monitored) -> None:
    env = monitored.env
    spec = {
        "name": "by-a-data-scientist",
        "endpoint": ENDPOINT,
        "output_uri": f"sr://{env.models}/reports",
        "statistics_uri": monitored.monitor.baseline_statistics().file_s3_uri,
        "constraints_uri": monitored.monitor.suggested_constraints().file_s3_uri,
        "schedule_cron_expression": "cron(0 * ? * * *)",
    }
    with pytest.raises(Forbidden):
        env.alice.monitoring.create_schedule(env.team, spec)
    assert env.alice.monitoring.describe_schedule(env.team, SCHEDULE).name == SCHEDULE  # the team reads it
    with pytest.raises(Forbidden):
        env.alice.monitoring.run_now(env.team, SCHEDULE)
    env.admin.teams.create("fraud")
    env.admin.users.create("eve")
    env.admin.teams.add_member("fraud", "eve", "MLOpsEngineer")
    eve = env.server.session(env.admin.tokens.create("eve", user="eve").secret)
    with pytest.raises(Forbidden):
        eve.monitoring.describe_schedule(env.team, SCHEDULE)
    with pytest.raises(Forbidden):
        eve.monitoring.create_schedule(env.team, {**spec, "name": "from-another-team"})
    with pytest.raises(InvalidInput) as bad:
        monitored.mlops.monitoring.create_schedule(env.team, {**spec, "schedule_cron_expression": "every hour"})
    assert bad.value.field == "schedule_cron_expression"
    with pytest.raises(StrongroomError) as no_key:  # refused now, not at the first window
        monitored.mlops.monitoring.create_schedule(env.team, {**spec, "name": "no-key"})
    assert no_key.value.field == "resources.volume_kms_key" and "default" in no_key.value.detail
    assert [s.name for s in monitored.mlops.monitoring.list_schedules(env.team)] == [SCHEDULE]  # the other deleted


def test_stop_start_and_the_cli(monitored: Monitored) -> None:
    assert monitored.monitor.stop_monitoring_schedule().status == "Stopped"
    assert monitored.monitor.start_monitoring_schedule().status == "Scheduled"
    executions = monitored.monitor.list_executions()
    assert executions[-1].execution.status in ("Completed", "CompletedWithViolations")
    assert executions[0].execution.trigger == "run-now"


def test_an_execution_whose_job_dies_with_the_platform_fails_with_the_reason(monitored: Monitored) -> None:
    """Last in the module: it kills the module's server and finishes on a restarted one."""
    env = monitored.env
    hour = dt.datetime(2020, 1, 3, 8, tzinfo=dt.UTC)
    _put_capture(monitored, hour, [(hour + dt.timedelta(minutes=5), _rows(monitored.test[FEATURES].iloc[:2000]))], "x")
    # an every-3-records schedule has counted 2 records when the platform dies
    counting = {
        "name": "every-3-requests",
        "endpoint": ENDPOINT,
        "output_uri": f"sr://{env.models}/credit-model/counted",
        "statistics_uri": monitored.monitor.baseline_statistics().file_s3_uri,
        "constraints_uri": monitored.monitor.suggested_constraints().file_s3_uri,
        "every_records": 3,
        "resources": {"volume_kms_key": env.key},
    }
    monitored.mlops.monitoring.create_schedule(env.team, counting)
    _send(monitored, monitored.test[FEATURES].iloc[:20], batch=10)
    deadline = time.monotonic() + 30
    while monitored.mlops.monitoring.describe_schedule(env.team, "every-3-requests").records_counted != 2:
        assert time.monotonic() < deadline, "the 2 records were not counted"
        time.sleep(0.2)
    # then the execution, killed as soon as its job runs (a quiet machine finishes it in seconds)
    execution = monitored.monitor.run_now(hour, hour + dt.timedelta(hours=1), wait=False)
    deadline = time.monotonic() + 60
    while True:
        job = execution.refresh().job_name
        state = env.alice.jobs.describe(env.team, job).status if execution.execution.status == "InProgress" else ""
        if state == "InProgress":
            break
        assert time.monotonic() < deadline, execution.execution
        time.sleep(0.2)
    env.server.stop(signal.SIGKILL)
    restarted = start_server(env.server.config, env.server.admin_token)
    try:
        mlops = restarted.session(monitored.mlops_token)
        ended = mlops.monitoring.wait_execution(env.team, SCHEDULE, execution.id, timeout=60)
        assert ended.status == "Failed"
        assert "platform restarted while the job was running" in ended.exit_message
        assert mlops.monitoring.describe_schedule(env.team, SCHEDULE).status == "Scheduled"

        # the count carries on: one more record after the restart is the third
        assert mlops.monitoring.describe_schedule(env.team, "every-3-requests").records_counted == 2
        deadline = time.monotonic() + 120
        while True:  # once the endpoint's workers are back
            try:
                mlops.endpoints.invoke(env.team, ENDPOINT, _csv(monitored.test[FEATURES].iloc[:5], False), "text/csv")
                break
            except StrongroomError:
                assert time.monotonic() < deadline, mlops.endpoints.describe(env.team, ENDPOINT)
                time.sleep(0.5)
        deadline = time.monotonic() + 60
        while not (windows := mlops.monitoring.list_executions(env.team, "every-3-requests")):
            assert time.monotonic() < deadline, "no window after the third record"
            time.sleep(0.5)
        assert windows[0].trigger == "records"
    finally:
        restarted.stop()
