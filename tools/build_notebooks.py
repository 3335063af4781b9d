"""Writes the workshop notebooks shipped in ``strongroom/demo/notebooks`` (run after editing).

    .venv/bin/python tools/build_notebooks.py
"""

from __future__ import annotations

import json
from pathlib import Path

OUT = Path(__file__).parents[1] / "src" / "strongroom" / "demo" / "notebooks"


def md(text: str) -> dict:
    return {"cell_type": "markdown", "metadata": {}, "source": text.strip("\n")}


def code(text: str) -> dict:
    return {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [], "source": text.strip("\n")}


def notebook(cells: list[dict]) -> dict:
    return {
        "cells": cells,
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


DATA_SCIENTIST = [
    md("""
# 01 · Data scientist workflow: credit-card default

You are a data scientist in team **risk**. This notebook runs in a Strongroom notebook: a JupyterLab
server inside a sandbox with **no network**, your team's rights only, and every byte you store
encrypted with your team's key. It follows the workshop: explore, preprocess (here and as a
processing job), track the work in an experiment, train XGBoost as a spot training job, read the
analytics, explain the model with SHAP, and push this notebook to the team's git repository.
"""),
    md("## 1. There is no internet here"),
    code("""
import os, socket, urllib.request

for target in ("https://pypi.org/simple/", "https://example.com/"):
    try:
        urllib.request.urlopen(target, timeout=5)
        print("REACHED", target)
    except Exception as exc:
        print(f"no route to {target}: {type(exc).__name__}: {exc}")
try:
    socket.create_connection(("1.1.1.1", 443), timeout=5)
    print("REACHED 1.1.1.1")
except OSError as exc:
    print(f"no route to 1.1.1.1:443: {exc}")
print("running as uid", os.getuid())
"""),
    md("## 2. Who am I here? The execution role and its limits"),
    code("""
import strongroom
import strongroom_environment as env

session = strongroom.Session()            # no arguments: the notebook knows its platform and role
me = session.whoami()
print("user:", me.user, "| acting as:", me.grants, "| token kind:", me.token_kind)
print("this notebook:", me.scope)
print("team:", env.TEAM, "| data bucket:", env.DATA_BUCKET, "| model bucket:", env.MODEL_BUCKET)
print("team key:", env.KMS_KEY_ID, "| git remote:", env.GIT_REMOTE)
"""),
    code("""
from strongroom.core.errors import Forbidden

# The execution role is the intersection of you, your team and this notebook: no IAM changes...
try:
    session.teams.add_member(env.TEAM, "someone", "DataScientist")
except Exception as exc:
    print("refused:", exc)
# ...and no other team's data.
try:
    session.buckets.list("fraud")
except Exception as exc:
    print("refused:", exc)
"""),
    md("## 3. Raw data into the team bucket (encrypted with the team key)"),
    code("""
import pandas as pd
from strongroom.demo.data import credit_default, load_uci

incoming = [k for k in session.list_objects(env.DATA_BUCKET, "incoming/")]
if incoming:
    local = "/tmp/" + incoming[0].rsplit("/", 1)[-1]     # /tmp is memory, not disk
    session.buckets.download(env.DATA_BUCKET, incoming[0], local)
    df = load_uci(local)
    print("using the real UCI file", incoming[0])
else:
    df = credit_default(n=30000, seed=0)
    print("using the synthetic credit-default data (same schema as the UCI file)")
df.to_csv("/tmp/credit_default.csv")
raw_uri = session.upload_data("/tmp/credit_default.csv", bucket=env.DATA_BUCKET, key_prefix="raw")
os.remove("/tmp/credit_default.csv")
print(raw_uri, df.shape)
"""),
    md("## 4. Explore"),
    code("""
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
from IPython.display import Image, display
import io

LABEL = "default payment next month"

def show(fig):
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
    plt.close(fig)
    display(Image(buffer.getvalue()))

df = pd.read_csv(raw_uri, index_col=0)     # straight from the encrypted bucket (sr:// filesystem)
counts = df[LABEL].value_counts().sort_index()
print("label balance:", (counts / counts.sum()).round(3).to_dict())
fig, ax = plt.subplots(figsize=(4, 3))
counts.plot.bar(ax=ax, color=["#4c72b0", "#dd8452"])
ax.set_title("default payment next month")
show(fig)
"""),
    code("""
corr = df.corr()
fig, ax = plt.subplots(figsize=(9, 7))
im = ax.imshow(corr, cmap="RdBu_r", vmin=-1, vmax=1)
ax.set_xticks(range(len(corr)), corr.columns, rotation=90, fontsize=7)
ax.set_yticks(range(len(corr)), corr.columns, fontsize=7)
fig.colorbar(im)
ax.set_title("correlation matrix")
show(fig)
"""),
    code("""
from pandas.plotting import scatter_matrix

sample = df.sample(1000, random_state=0)
axes = scatter_matrix(sample[["LIMIT_BAL", "AGE", "PAY_0", "BILL_AMT1", "PAY_AMT1"]], figsize=(8, 8), s=4, alpha=0.4)
show(axes[0, 0].get_figure())
"""),
    md("## 5. Preprocess in the notebook"),
    code("""
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

y, X = df[LABEL], df.drop(columns=[LABEL])
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=0, stratify=y)
scaler = StandardScaler().fit(X_train)
print("train", X_train.shape, "test", X_test.shape, "scaled mean ~0:", abs(scaler.transform(X_train).mean()).round(6))
"""),
    md("## 6. The same preprocessing as a processing job (team key on the scratch volume)"),
    code("""
script = '''
import argparse, os
import pandas as pd
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

parser = argparse.ArgumentParser()
parser.add_argument("--test-size", type=float, default=0.2)
args = parser.parse_args()
label = "default payment next month"
df = pd.read_csv("/opt/ml/processing/input/raw/credit_default.csv", index_col=0)
y, X = df[label], df.drop(columns=[label])
X_train, X_rest, y_train, y_rest = train_test_split(X, y, test_size=2 * args.test_size, random_state=0, stratify=y)
X_val, X_test, y_val, y_test = train_test_split(X_rest, y_rest, test_size=0.5, random_state=0, stratify=y_rest)
scaler = StandardScaler().fit(X_train)
for name, features, target in (("train", X_train, y_train), ("validation", X_val, y_val), ("test", X_test, y_test)):
    out = pd.concat([target.reset_index(drop=True), pd.DataFrame(scaler.transform(features), columns=X.columns)], axis=1)
    os.makedirs(f"/opt/ml/processing/output/{name}", exist_ok=True)
    out.to_csv(f"/opt/ml/processing/output/{name}/{name}.csv", header=False, index=False)
    print(name, out.shape)
'''
os.makedirs("code", exist_ok=True)
with open("code/preprocessing.py", "w") as handle:
    handle.write(script)
"""),
    code("""
from strongroom.sdk.jobs import Processor, ProcessingInput, ProcessingOutput, Estimator, TrainingInput
from strongroom.experiments import Experiment, Trial, Tracker, ExperimentAnalytics

Experiment.create(experiment_name="credit-default", description="workshop: predict next month's default")
trial = Trial.create(trial_name="xgboost-spot-1", experiment_name="credit-default")

processor = Processor(volume_kms_key=env.KMS_KEY_ID, code_location=f"sr://{env.DATA_BUCKET}", base_job_name="preprocess")
outputs = {n: f"sr://{env.DATA_BUCKET}/processed/{n}" for n in ("train", "validation", "test")}
processor.run(
    code="code/preprocessing.py",
    inputs=[ProcessingInput(source=raw_uri, destination="/opt/ml/processing/input/raw", input_name="raw")],
    outputs=[ProcessingOutput(source=f"/opt/ml/processing/output/{n}", destination=uri, output_name=n)
             for n, uri in outputs.items()],
    arguments=["--test-size", "0.2"],
    experiment_config={"ExperimentName": "credit-default", "TrialName": trial.trial_name,
                       "TrialComponentDisplayName": "Preprocessing"},
    logs=False,
)
job = processor.jobs[-1].describe()
print(job["name"], job["status"], "| scratch volume encrypted with", job["spec"]["security"]["volume_kms_key"])
print([o["uri"] for o in job["outputs_produced"]])
"""),
    md("## 7. Track what was decided (a Tracker, as in the workshop)"),
    code("""
with Tracker.create(display_name="Preprocessing decisions", trial=trial) as tracker:
    tracker.log_parameters({"test_size": 0.2, "validation_size": 0.2, "scaler": "StandardScaler", "random_state": 0})
    tracker.log_input(name="raw", value=raw_uri)
    for n, uri in outputs.items():
        tracker.log_output(name=n, value=uri)
session.experiments.flush()
print("tracked")
"""),
    md("## 8. Train XGBoost as a managed spot training job"),
    code("""
xgb_estimator = Estimator(
    "xgboost",
    volume_kms_key=env.KMS_KEY_ID,
    output_path=f"sr://{env.MODEL_BUCKET}/training",
    use_spot_instances=True, max_wait=7200, max_runtime_in_seconds=3600,
    checkpoint_s3_uri=f"sr://{env.MODEL_BUCKET}/checkpoints/credit-default",
    metric_definitions=[{"Name": "validation:auc", "Regex": "validation-auc:([0-9\\\\.]+)"}],
    cpus=2,
)
xgb_estimator.set_hyperparameters(num_round=100, max_depth=5, eta=0.2, gamma=4, min_child_weight=6,
                                  subsample=0.8, objective="binary:logistic", eval_metric="auc", seed=1)
xgb_estimator.fit(
    {"train": TrainingInput(outputs["train"], content_type="text/csv"),
     "validation": TrainingInput(outputs["validation"], content_type="text/csv")},
    experiment_config={"ExperimentName": "credit-default", "TrialName": trial.trial_name,
                       "TrialComponentDisplayName": "Training"},
    logs=False,
)
training = xgb_estimator.latest_training_job.job()
print(training.name, training.status, "| billable", training.billable_seconds, "s of", training.total_seconds, "s")
print("model:", xgb_estimator.model_data())
"""),
    md("## 9. Experiment analytics"),
    code("""
analytics = ExperimentAnalytics(
    experiment_name="credit-default",
    search_expression={"Filters": [{"Name": "Parents.TrialName", "Operator": "Equals", "Value": trial.trial_name}]},
    sort_by="CreationTime", sort_order="Ascending",
)
frame = analytics.dataframe()
columns = [c for c in ("TrialComponentName", "DisplayName", "max_depth", "eta", "validation:auc - Last") if c in frame]
frame[columns]
"""),
    md("## 10. The model: feature importance and SHAP"),
    code("""
from strongroom.explain import Explainer
from strongroom.explain import plots
from strongroom.explain.importance import xgboost_importance
from sklearn.metrics import roc_auc_score
import xgboost as xgb

bucket, key = xgb_estimator.model_data()[len("sr://"):].split("/", 1)
session.buckets.download(bucket, key, "/tmp/model.tar.gz")
explainer = Explainer.from_model_tar("/tmp/model.tar.gz")     # checked archive, XGBoost's own format only
test = pd.read_csv(outputs["test"] + "/test.csv", header=None)
test.columns = ["label"] + list(X.columns)
features = test.drop(columns=["label"])
explainer.booster.feature_names = list(X.columns)
auc = roc_auc_score(test["label"], explainer.booster.predict(xgb.DMatrix(features)))
print(f"test AUC: {auc:.4f}")
display(Image(plots.importance_png(xgboost_importance(explainer.booster), "gain")))
"""),
    code("""
explanation = explainer.explain(features.sample(2000, random_state=0))
top = explanation.global_importance().head(5)
print(top)
print("top SHAP features:", ", ".join(top.index))
display(Image(plots.summary_bar_png(explanation)))
display(Image(plots.beeswarm_png(explanation)))
os.remove("/tmp/model.tar.gz")
"""),
    md("## 11. Commit and push this notebook to the team's git repository"),
    code("""
import subprocess

def git(*args, cwd):
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    print(done.stdout.strip() or done.stderr.strip())
    done.check_returncode()
    return done.stdout.strip()

# The platform cloned the team repository into the home when the notebook first started;
# its remote goes through the sandbox's socket, with the notebook's execution role as credential.
repo = getattr(env, "GIT_REPOSITORY", "") or "repo"
if not os.path.isdir(os.path.join(repo, ".git")):
    git("clone", env.GIT_REMOTE, repo, cwd=".")
os.makedirs(f"{repo}/notebooks", exist_ok=True)
subprocess.run(["jupyter", "nbconvert", "--clear-output", "--to", "notebook",
                "--output-dir", f"{repo}/notebooks", "01_DataScientist-Workflow.ipynb"], check=True, capture_output=True)
subprocess.run(["cp", "code/preprocessing.py", repo], check=True)
git("add", "-A", cwd=repo)
git("-c", "user.name=" + me.user, "-c", f"user.email={me.user}@{env.TEAM}.example", "commit", "-m",
    "Workshop: preprocessing and XGBoost training for credit default", cwd=repo)
git("push", "origin", "HEAD:main", cwd=repo)
commit = git("rev-parse", "HEAD", cwd=repo)
print("pushed", commit)
"""),
    code("""
# The commit becomes a Commit artifact associated with the training job its code fed, so the
# model's lineage reaches the data scientist's commit.
session.lineage.log_commit(repo, commit, associate_with=[training.srn])
model_entity = next(e for e in session.lineage.list_entities(uri=xgb_estimator.model_data()))
upstream = session.lineage.upstream(model_entity.srn, depth=10)
for node in sorted(upstream.nodes, key=lambda n: str(getattr(n, "type", ""))):
    print(f"{getattr(node, 'type', ''):12} {getattr(node, 'uri', '') or node.srn}")
"""),
]

PLATFORM_ADMIN = [
    md("""
# 00 · Platform admin workflow: guardrails and detective controls

This notebook runs in the platform administrator's own notebook, whose kernels act with the
**PlatformAdmin** role (and, being an execution role, still cannot change identities or policies).
Preventive guardrails deny what must never happen; detective controls catch what an exemption let
through; every call, allowed or denied, is in the tamper-evident audit log.
"""),
    code("""
import strongroom

admin = strongroom.Session()
me = admin.whoami()
print("user:", me.user, "| acting as:", me.grants, "| token kind:", me.token_kind)
"""),
    md("## 1. A guardrail denied a job without network isolation"),
    code("""
denied = [e for e in admin.audit.query(decision="Deny", limit=1000) if e.action.startswith("Create") and "Job" in e.action]
for event in denied:
    print(event.time.isoformat(timespec="seconds"), event.principal, event.action, event.resource)
    print("   determined by:", ", ".join(event.policies))
assert any("guardrail-network-isolation" in e.policies for e in denied), "no guardrail denial recorded"
"""),
    code("""
result = admin.policies.simulate(
    "alice", "CreateTrainingJob", "srn:strongroom:risk:job/exfiltrate",
    {"network_isolation": False, "volume_kms_key": "default"},
)
print(result.decision, "|", result.explanation, "|", result.determining_policies)
"""),
    md("## 2. `policy simulate`: who may do what"),
    code("""
checks = [
    ("alice", "CreateTrainingJob", {"network_isolation": True, "volume_kms_key": "default"}),
    ("alice", "CreateTrainingJob", {"network_isolation": True}),
    ("alice", "CreateEndpoint", {}),
    ("omar", "CreateEndpoint", {}),
    ("alice", "GetObject", {}),
]
for principal, action, context in checks:
    r = admin.policies.simulate(principal, action, "srn:strongroom:risk:thing/x", context)
    print(f"{principal:6} {action:18} {str(context):58} {r.decision:5} {', '.join(r.determining_policies)}")
"""),
    md("## 3. A detective control stopped an exempted team's job"),
    code("""
lab = admin.teams.describe("sandbox-lab")["team"]
print("team sandbox-lab is exempted from:", lab["guardrail_exemptions"])
alerts = admin.audit.query(action="RaiseAlert", limit=100)
for alert in alerts:
    print(alert.time.isoformat(timespec="seconds"), alert.params["rule"], alert.params["resource"])
    print("   ", alert.params["message"])
stops = [e for e in admin.audit.query(action="StopJob", principal="system", limit=100)]
print(len(stops), "job(s) stopped by the platform's detective controls")
assert alerts and stops, "the detective control did not fire"
"""),
    md("## 4. The audit log is complete and untampered"),
    code("""
report = admin.audit.verify()
print("audit chain:", "OK" if report.ok else report.problem)
print(report.events, "events,", report.checkpoints, "signed checkpoints, head", report.head_hash[:16])
denials = admin.audit.query(decision="Deny", limit=1000)
print(len(denials), "denied calls recorded")
assert report.ok
"""),
]


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, cells in (("00_PlatformAdmin-Workflow.ipynb", PLATFORM_ADMIN),
                        ("01_DataScientist-Workflow.ipynb", DATA_SCIENTIST)):
        (OUT / name).write_text(json.dumps(notebook(cells), indent=1) + "\n")
        print("wrote", OUT / name)


if __name__ == "__main__":
    main()
