"""Managed spot (interrupt, checkpoint, resume), detective controls, restart recovery."""

from __future__ import annotations

import io
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb

from strongroom.core import pki
from strongroom.core.config import Config
from strongroom.platform import initialize
from tests.integration.jobs.conftest import TeamEnv, build_team, credit_like, csv_bytes, job_spec, upload_script
from tests.support import AlertReceiver, alert_receiver, start_server

SPOT_HYPER = {
    "num_round": 120,
    "max_depth": 6,
    "eta": 0.1,
    "objective": "binary:logistic",
    "eval_metric": "auc",
    "seed": 11,
}


def _training(env: TeamEnv, name: str, *, spot: bool, rounds: int = 120) -> dict[str, object]:
    spec = job_spec(
        env,
        name,
        kind="training",
        code={"algorithm": "xgboost"},
        hyperparameters={**SPOT_HYPER, "num_round": rounds},
        inputs=[{"name": "train", "source": f"sr://{env.data}/spot/train.csv", "content_type": "text/csv"}],
        outputs=[{"name": "model", "destination": f"sr://{env.models}/spot"}],
        metric_definitions=[{"name": "train:auc", "regex": r"train-auc:([0-9.]+)"}],
    )
    if spot:
        spec["spot"] = {
            "use_spot": True,
            "max_wait_seconds": 3600,
            "checkpoint_uri": f"sr://{env.models}/checkpoints/{name}",
        }
    return spec


def _booster(env: TeamEnv, uri: str) -> xgb.Booster:
    bucket, key = uri[len("sr://") :].split("/", 1)
    with tarfile.open(fileobj=io.BytesIO(env.alice.buckets.get_object(bucket, key)), mode="r:gz") as tar:
        raw = tar.extractfile("xgboost-model").read()  # type: ignore[union-attr]
    booster = xgb.Booster()
    booster.load_model(bytearray(raw))
    return booster


def _wait_for(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_interrupted_spot_job_resumes_and_equals_an_uninterrupted_one(env: TeamEnv) -> None:
    frame = credit_like(40_000, seed=3)
    label = frame.pop("default payment next month")
    frame.insert(0, "label", label)
    env.alice.buckets.put_object(env.data, "spot/train.csv", csv_bytes(frame, header=False))

    env.alice.jobs.create(_training(env, "spot-1", spot=True, rounds=400))
    _wait_for(lambda: len(env.alice.jobs.metrics(env.team, "spot-1")) >= 25, 180, "25 rounds")
    env.alice.jobs.interrupt(env.team, "spot-1", "test preemption")
    spot = env.alice.jobs.wait(env.team, "spot-1", logs=False, timeout=300)
    assert spot.attempts == 2
    statuses = [t.status for t in spot.status_transitions]
    assert "Interrupted" in statuses
    log = "\n".join(line.text for line in env.alice.jobs.logs(env.team, "spot-1", limit=10_000))
    assert "interruption notice" in log and "resuming from checkpoint" in log
    assert spot.billable_seconds <= spot.total_seconds and spot.spot_savings_percent is not None

    env.alice.jobs.create(_training(env, "plain-1", spot=False, rounds=400))
    plain = env.alice.jobs.wait(env.team, "plain-1", logs=False, timeout=300)
    rows = xgb.DMatrix(frame.iloc[:2000, 1:].to_numpy())
    resumed = _booster(env, spot.outputs_produced[0].uri).predict(rows)
    straight = _booster(env, plain.outputs_produced[0].uri).predict(rows)
    np.testing.assert_allclose(resumed, straight, atol=1e-6)


def test_stop_request_ends_a_running_job(env: TeamEnv) -> None:
    script = upload_script(
        env, "forever.py", "import time\nwhile True:\n    print('tick', flush=True)\n    time.sleep(1)\n"
    )
    env.alice.jobs.create(job_spec(env, "forever", code={"source": script}))
    _wait_for(lambda: env.alice.jobs.describe(env.team, "forever").secondary_status == "Processing", 60, "start")
    env.alice.jobs.stop(env.team, "forever", "no longer needed")
    with pytest.raises(Exception, match="no longer needed"):
        env.alice.jobs.wait(env.team, "forever", logs=False, timeout=90)
    assert env.alice.jobs.describe(env.team, "forever").status == "Stopped"


@pytest.fixture
def webhook(tmp_path: Path) -> Iterator[tuple[AlertReceiver, Path, Config, str]]:
    """A platform whose alerts go to an HTTPS webhook with a certificate from the platform CA."""
    config = Config(home=tmp_path / "home", port=0)
    token = initialize(config).token.secret
    with alert_receiver(config, tmp_path) as receiver:
        yield receiver, pki.TlsFiles.in_dir(config.tls_dir).ca_cert, config, token


def test_detective_control_stops_an_exempted_job_within_seconds(
    webhook: tuple[AlertReceiver, Path, Config, str],
) -> None:
    receiver, ca, config, token = webhook
    url = receiver.url
    server = start_server(
        config, token, env={"STRONGROOM_ALERT_WEBHOOK_URL": url, "STRONGROOM_ALERT_WEBHOOK_CA": str(ca)}
    )
    try:
        env = build_team(server)
        env.admin.teams.set_guardrail_exemptions(env.team, ["network-isolation"])
        script = upload_script(
            env, "exfil.py", "import time\nprint('running with the network', flush=True)\ntime.sleep(300)\n"
        )
        spec = job_spec(env, "exfil", code={"source": script})
        spec["security"] = {"network_isolation": False, "volume_kms_key": env.key}
        created = env.alice.jobs.create(spec)  # allowed: the team is exempted from the preventive guardrail
        _wait_for(lambda: env.alice.jobs.describe(env.team, "exfil").status == "Stopped", 60, "the detective stop")
        job = env.alice.jobs.describe(env.team, "exfil")
        assert job.started_at is not None and job.ended_at is not None
        assert (job.ended_at - job.started_at).total_seconds() < 10
        assert "enforce-network-isolation" in job.failure_reason
        [alert] = env.admin.audit.query(action="RaiseAlert")
        assert alert.resource.endswith("alert/enforce-network-isolation") and alert.params["resource"] == created.srn
        _wait_for(lambda: bool(receiver.received), 15, "the webhook")
        assert receiver.received[0]["rule"] == "enforce-network-isolation"
        assert receiver.received[0]["resource"] == created.srn
    finally:
        server.stop()


# 120 steps of 0.25 s: the run outlasts the wait for its first complete checkpoint upload (the agent
# syncs every 5 s) on a loaded machine, so the platform is killed while it still has steps to do.
STEPS = 120
STEPPER = f"""
import time
from strongroom.algorithms import checkpoint
found = checkpoint.load("/opt/ml/checkpoints", name="steps")
start = found[0] + 1 if found else 0
print(f"resuming from checkpoint step {{found[0]}}" if found else "starting fresh", flush=True)
for step in range(start, {STEPS}):
    time.sleep(0.25)
    checkpoint.save("/opt/ml/checkpoints", step, str(step).encode(), name="steps")
    print(f"step {{step}}", flush=True)
open("/opt/ml/model/steps.txt", "w").write("done")
"""


@pytest.mark.slow
@pytest.mark.timeout(400)  # waits up to 120 s + 60 s + 120 s, plus two server starts
def test_restart_fails_plain_jobs_and_resumes_checkpointed_spot_jobs(tmp_path: Path) -> None:
    import signal

    config = Config(home=tmp_path / "home", port=0)
    token = initialize(config).token.secret
    server = start_server(config, token)
    env = build_team(server)
    script = upload_script(env, "long.py", "import time\nprint('working', flush=True)\ntime.sleep(600)\n")
    env.alice.jobs.create(job_spec(env, "plain-long", code={"source": script}))
    spot = job_spec(
        env,
        "spot-long",
        kind="training",
        code={"source": upload_script(env, "stepper.py", STEPPER)},
        outputs=[{"name": "model", "destination": f"sr://{env.models}/steps"}],
        spot={"use_spot": True, "checkpoint_uri": f"sr://{env.models}/checkpoints/spot-long"},
    )
    env.alice.jobs.create(spot)
    # A checkpoint is complete once its manifest is uploaded (after its bytes): killing the platform
    # between the two leaves only an incomplete one, which the resumed attempt rightly ignores.
    _wait_for(
        lambda: any(key.endswith(".json") for key in env.alice.list_objects(env.models, "checkpoints/spot-long")),
        120,
        "a complete checkpoint upload",
    )
    server.stop(signal.SIGKILL)
    restarted = start_server(config, token)
    try:
        alice = restarted.session(env.alice_token)
        _wait_for(lambda: alice.jobs.describe("risk", "plain-long").status == "Failed", 60, "reconcile")
        assert "platform restarted" in alice.jobs.describe("risk", "plain-long").failure_reason
        job = alice.jobs.wait("risk", "spot-long", logs=False, timeout=120)
        assert job.status == "Completed" and job.attempts == 2
        text = "\n".join(line.text for line in alice.jobs.logs("risk", "spot-long", limit=10_000))
        assert "resuming from checkpoint step" in text and f"step {STEPS - 1}" in text
        lines = text.splitlines()
        marker = next(i for i, line in enumerate(lines) if line.startswith("resuming from checkpoint step "))
        resumed_at = int(lines[marker].rsplit(" ", 1)[1])
        after = [int(line.split()[1]) for line in lines[marker:] if line.startswith("step ")]
        # The second attempt does exactly the steps after the checkpoint: nothing is redone, none skipped.
        assert after == list(range(resumed_at + 1, STEPS))
        assert resumed_at < STEPS - 1, "the run had ended before the platform was killed"
        assert lines.count("step 0") == 1
    finally:
        restarted.stop()
