"""A platform with a team environment shared by the job tests of a module (jobs take seconds;
starting a platform per test would dominate)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from strongroom.core.config import Config
from strongroom.jobs.models import Job as JobInfo
from strongroom.platform import initialize
from strongroom.sdk.session import Session
from tests.support import RunningServer, start_server


@dataclass
class TeamEnv:
    server: RunningServer
    admin: Session
    alice: Session
    alice_token: str
    team: str = "risk"
    key: str = "risk-key"
    data: str = "risk-data"
    models: str = "risk-models"


def build_team(server: RunningServer, team: str = "risk", user: str = "alice") -> TeamEnv:
    admin = server.session()
    admin.teams.create(team)
    admin.users.create(user)
    admin.teams.add_member(team, user, "DataScientist")
    admin.users.create(f"{team}-admin")
    admin.teams.add_member(team, f"{team}-admin", "DataScienceAdmin")
    token = admin.tokens.create("jobs", user=user).secret
    alice = server.session(token)
    team_admin = server.session(admin.tokens.create("jobs", user=f"{team}-admin").secret)
    team_admin.keys.create(team, f"{team}-key")
    for bucket in (f"{team}-data", f"{team}-models"):
        alice.buckets.create(bucket, team, key=f"{team}-key")
    return TeamEnv(server, admin, alice, token, team, f"{team}-key", f"{team}-data", f"{team}-models")


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TeamEnv]:
    home = tmp_path_factory.mktemp("jobs") / "home"
    config = Config(home=home, port=0)
    token = initialize(config).token.secret
    server = start_server(config, token)
    try:
        yield build_team(server)
    finally:
        server.stop()


def add_mlops_engineer(env: TeamEnv, user: str = "mo") -> tuple[str, Session]:
    """Add ``user`` to the team as MLOpsEngineer (the role that deploys): its token and session."""
    env.admin.users.create(user)
    env.admin.teams.add_member(env.team, user, "MLOpsEngineer")
    token = env.admin.tokens.create("deploy", user=user).secret
    return token, env.server.session(token)


def train_builtin_xgboost(env: TeamEnv, job: str, train_csv: bytes, hyperparameters: dict[str, object]) -> JobInfo:
    """Run the built-in XGBoost as alice's training job on a headerless CSV (label first), as the workshop does."""
    env.alice.buckets.put_object(env.data, "train/train.csv", train_csv)
    env.alice.jobs.create(
        job_spec(
            env,
            job,
            kind="training",
            code={"algorithm": "xgboost"},
            hyperparameters=hyperparameters,
            inputs=[{"name": "train", "source": f"sr://{env.data}/train", "content_type": "text/csv"}],
            outputs=[{"name": "model", "destination": f"sr://{env.models}/training"}],
        )
    )
    return env.alice.jobs.wait(env.team, job, logs=False, timeout=300)


def credit_like(rows: int, seed: int = 0) -> pd.DataFrame:
    """A small table with the workshop's label name and a learnable signal."""
    rng = np.random.default_rng(seed)
    pay = rng.integers(-2, 9, size=rows)
    limit = rng.integers(10, 500, size=rows) * 1000
    age = rng.integers(21, 80, size=rows)
    bill = rng.normal(50_000, 20_000, size=rows).round()
    logit = -1.6 + 0.8 * np.clip(pay, -1, 4) - limit / 400_000 + rng.normal(0, 0.8, size=rows)
    label = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
    return pd.DataFrame(
        {"LIMIT_BAL": limit, "AGE": age, "PAY_0": pay, "BILL_AMT1": bill, "default payment next month": label}
    )


def csv_bytes(frame: pd.DataFrame, header: bool = True) -> bytes:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, header=header)
    return buffer.getvalue().encode()


def upload_script(env: TeamEnv, name: str, text: str) -> str:
    version = env.alice.buckets.put_object(env.data, f"code/{name}", text.encode())
    return version.uri


def job_spec(env: TeamEnv, name: str, **overrides: object) -> dict[str, object]:
    spec: dict[str, object] = {
        "name": name,
        "team": env.team,
        "kind": "processing",
        "security": {"network_isolation": True, "volume_kms_key": env.key},
        "resources": {"scratch_mb": 256, "max_runtime_seconds": 300},
    }
    spec.update(overrides)
    return spec


def read_home(path: Path) -> list[bytes]:
    return [p.read_bytes() for p in path.rglob("*") if p.is_file()]
