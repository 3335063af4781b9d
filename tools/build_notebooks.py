"""Writes the workshop notebooks shipped in ``strongroom/demo/notebooks`` (run after editing).

    .venv/bin/python tools/build_notebooks.py
"""

from __future__ import annotations

import json
from pathlib import Path

OUT = Path(__file__).parents[1] / "src" / "strongroom" / "demo" / "notebooks"


def md(text: str) -> dict:
    return {"cell_type": "markdown", "metadata": {}, "source": text.strip("\n")}


def code(text: str, tags: list[str] | None = None) -> dict:
    """A code cell; ``tags`` (``plot:<name>``) let the demo report find the cell's figure."""
    metadata = {"tags": tags} if tags else {}
    return {"cell_type": "code", "metadata": metadata, "execution_count": None, "outputs": [], "source": text.strip("\n")}


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
encrypted with your team's key. It is the workshop's notebook 01, step by step, with the same
parameters and outputs; where Strongroom differs (the security model requires it) the cell says so.
`docs/workshop.md` lists every workshop cell next to this notebook's.
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
    md("## 2. Who am I here? The execution role and its limits, and the provisioned environment"),
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
# The execution role is the intersection of you, your team and this notebook: no IAM changes,
# no endpoints (that is the MLOps engineer's), and no other team's data.
for attempt, call in (
    ("add a team member", lambda: session.teams.add_member(env.TEAM, "someone", "DataScientist")),
    ("list team fraud's buckets", lambda: session.buckets.list("fraud")),
    ("create an endpoint", lambda: session.endpoints.create(env.TEAM, "alice-endpoint", "any-config")),
):
    try:
        call()
        print("ALLOWED:", attempt)
    except Exception as exc:
        print(f"refused ({attempt}): {exc}")
"""),
    md("""
## 3. Packages: only the team's approved index

The workshop installs `shap` through the team's private mirror. Here `pip` reaches only the index the
platform admin approved: `PIP_INDEX_URL` is the sandbox's forwarder to the platform's `/pypi` route.
This demo platform approves no upstream index, so `shap` comes with the platform's runtime.
"""),
    code("""
import warnings
warnings.filterwarnings("ignore", message="IProgress not found")   # shap's progress bar wants ipywidgets
import shap
print("PIP_INDEX_URL:", os.environ.get("PIP_INDEX_URL", "(none)"), "| shap", shap.__version__, "from the runtime")
"""),
    md("## 4. Buckets and prefix"),
    code("""
prefix = "secure-strongroom-demo"
raw_bucket = processed_bucket = env.DATA_BUCKET      # one encrypted data bucket per team, two prefixes
model_bucket = env.MODEL_BUCKET
print(f"raw: sr://{raw_bucket}/{prefix}/raw | processed: sr://{processed_bucket}/{prefix}/processed"
      f" | models: sr://{model_bucket}/{prefix}/output")
"""),
    md("## 5. Load and explore the data"),
    code("""
import pandas as pd
from strongroom.demo.data import credit_default, load_uci

incoming = session.list_objects(env.DATA_BUCKET, "incoming/")
if incoming:
    local = "/tmp/" + incoming[0].rsplit("/", 1)[-1]     # /tmp is memory, not disk
    session.buckets.download(env.DATA_BUCKET, incoming[0], local)
    df = load_uci(local)
    os.remove(local)
    print("using your data file", incoming[0])
else:
    df = credit_default(n=30000, seed=0)
    print("using the synthetic credit-default data (same schema as the UCI file)")

df = df.reset_index(drop=True)                                   # drop ID
df = df.rename(columns={"default payment next month": "Label"})
df = df[["Label"] + [c for c in df.columns if c != "Label"]]     # the label first
print(df.shape)
df.head()
"""),
    code("""
df.SEX.value_counts()
"""),
    code("""
import io
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
from IPython.display import Image, display

def show(fig):
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
    plt.close(fig)
    display(Image(buffer.getvalue()))

counts = df["Label"].value_counts().sort_index()
print("label balance:", (counts / counts.sum()).round(3).to_dict())
fig, ax = plt.subplots(figsize=(4, 3))
counts.plot.bar(ax=ax, color=["#4c72b0", "#dd8452"])
ax.set_xlabel("Label"); ax.set_ylabel("count"); ax.set_title("Label count")
show(fig)
""", tags=["plot:label-balance"]),
    code("""
corr = df.corr()
fig, ax = plt.subplots(figsize=(9, 7))
im = ax.imshow(corr, cmap="RdBu_r", vmin=-1, vmax=1)
ax.set_xticks(range(len(corr)), corr.columns, rotation=90, fontsize=7)
ax.set_yticks(range(len(corr)), corr.columns, fontsize=7)
fig.colorbar(im)
ax.set_title("correlation heatmap")
show(fig)
""", tags=["plot:correlations"]),
    code("""
from pandas.plotting import scatter_matrix

axes = scatter_matrix(df[["BILL_AMT1", "BILL_AMT2", "PAY_AMT1", "PAY_AMT2"]], figsize=(8, 8), s=4, alpha=0.3)
show(axes[0, 0].get_figure())
""", tags=["plot:scatter-matrix"]),
    md("## 6. The raw data into the raw prefix (encrypted with the team key)"),
    code("""
df.to_csv("/tmp/rawdata.csv", index=False)
raw_uri = session.upload_data("/tmp/rawdata.csv", bucket=raw_bucket, key_prefix=f"{prefix}/raw")
os.remove("/tmp/rawdata.csv")
print(raw_uri)
"""),
    md("## 7. Preprocess in the notebook (to show the logic)"),
    code("""
from sklearn.compose import make_column_transformer
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import MinMaxScaler, StandardScaler

X, y = df.drop(columns="Label"), df["Label"]
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=0)
preprocess = make_column_transformer(
    (StandardScaler(), ["PAY_AMT1"]),
    (MinMaxScaler(), ["BILL_AMT1"]),
    remainder="passthrough",
)
columns = ["PAY_AMT1", "BILL_AMT1"] + [c for c in X.columns if c not in ("PAY_AMT1", "BILL_AMT1")]
train_features = pd.DataFrame(preprocess.fit_transform(X_train), columns=columns)
test_features = pd.DataFrame(preprocess.transform(X_test), columns=columns)
train_data = pd.concat([y_train.reset_index(drop=True), train_features], axis=1)
test_data = pd.concat([y_test.reset_index(drop=True), test_features], axis=1)
train_data.to_csv("/tmp/train_data.csv", header=False, index=False)
test_data.to_csv("/tmp/test_data.csv", header=False, index=False)
print("train_data.csv", train_data.shape, "| test_data.csv", test_data.shape)
print("columns:", ", ".join(train_data.columns))
"""),
    md("## 8. The same preprocessing as a script, run as a processing job (team key on the scratch volume)"),
    code("""
%%writefile preprocessing.py
import argparse
import os

import pandas as pd
from sklearn.compose import make_column_transformer
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import MinMaxScaler, StandardScaler

parser = argparse.ArgumentParser()
parser.add_argument("--train-test-split-ratio", type=float, default=0.3)
args = parser.parse_args()
print("Received arguments", args)

df = pd.read_csv("/opt/ml/processing/input/rawdata.csv")
X, y = df.drop(columns="Label"), df["Label"]
split_ratio = args.train_test_split_ratio
print(f"Splitting data into train and test sets with ratio {split_ratio}")
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=split_ratio, random_state=0)

preprocess = make_column_transformer(
    (StandardScaler(), ["PAY_AMT1"]),
    (MinMaxScaler(), ["BILL_AMT1"]),
    remainder="passthrough",
)
columns = ["PAY_AMT1", "BILL_AMT1"] + [c for c in X.columns if c not in ("PAY_AMT1", "BILL_AMT1")]
train = pd.concat([y_train.reset_index(drop=True),
                   pd.DataFrame(preprocess.fit_transform(X_train), columns=columns)], axis=1)
test = pd.concat([y_test.reset_index(drop=True),
                  pd.DataFrame(preprocess.transform(X_test), columns=columns)], axis=1)

for output, file, frame, header in (
    ("train", "train_data.csv", train, False),
    ("test", "test_data.csv", test, False),
    ("train_headers", "train_data_with_headers.csv", train, True),
):
    os.makedirs(f"/opt/ml/processing/{output}", exist_ok=True)
    frame.to_csv(f"/opt/ml/processing/{output}/{file}", header=header, index=False)
    print(f"Saved {output}/{file}: {frame.shape}")
"""),
    code("""
from strongroom.sdk.jobs import Processor, ProcessingInput, ProcessingOutput, Estimator, TrainingInput

processor = Processor(volume_kms_key=env.KMS_KEY_ID, instance_count=1, code_location=f"sr://{env.DATA_BUCKET}/{prefix}",
                      base_job_name="preprocessing")
processed = f"sr://{processed_bucket}/{prefix}/processed"
processor.run(
    code="preprocessing.py",
    inputs=[ProcessingInput(source=raw_uri, destination="/opt/ml/processing/input")],
    outputs=[ProcessingOutput(output_name=name, source=f"/opt/ml/processing/{name}", destination=f"{processed}/{name}")
             for name in ("train", "test", "train_headers")],
    arguments=["--train-test-split-ratio", "0.2"],
    logs=False,
)
preprocessing_job = processor.jobs[-1].describe()
print(preprocessing_job["name"], preprocessing_job["status"],
      "| scratch volume encrypted with", preprocessing_job["spec"]["security"]["volume_kms_key"],
      "| network isolation:", preprocessing_job["spec"]["security"]["network_isolation"])
outputs = {o["name"]: o["destination"] for o in preprocessing_job["spec"]["outputs"]}
for produced in preprocessing_job["outputs_produced"]:
    print(produced["uri"])
"""),
    code("""
train_uri = outputs["train"] + "/train_data.csv"
test_uri = outputs["test"] + "/test_data.csv"
train_headers_uri = outputs["train_headers"] + "/train_data_with_headers.csv"
job_train = pd.read_csv(train_uri, header=None)
job_train_headers = pd.read_csv(train_headers_uri)
print("train", job_train.shape, "| test", pd.read_csv(test_uri, header=None).shape,
      "| train_headers", job_train_headers.shape)
print("train_headers header:", ",".join(job_train_headers.columns))
print("the job's train set equals the notebook's:",
      bool(((job_train.to_numpy() - train_data.to_numpy()) == 0).all()))
"""),
    md("## 9. Track the preprocessing in an experiment"),
    code("""
import time
from strongroom.experiments import Experiment, Trial, Tracker, ExperimentAnalytics

timestamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
# Strongroom names are lower-case (srn:strongroom:<team>:<type>/<name>); the display name is the workshop's.
experiment = Experiment.create(experiment_name=f"creditcarddefault-{timestamp}",
                               display_name=f"CreditCardDefault-{timestamp}",
                               description="Predict credit-card default (UCI credit-card clients)")
with Tracker.create(display_name="Preprocessing") as tracker:
    tracker.log_parameters({"train_test_split_ratio": 0.2})
    tracker.log_input(name="ccdefault-raw-dataset", value=raw_uri, media_type="text/csv")
    tracker.log_output(name="ccdefault-train-dataset", value=train_uri, media_type="text/csv")
    tracker.log_output(name="ccdefault-test-dataset", value=test_uri, media_type="text/csv")
trial = Trial.create(trial_name=f"cc-xgboost-training-job-{timestamp}", experiment_name=experiment.experiment_name)
trial.add_trial_component(tracker.trial_component)
print(experiment.entity.display_name, "|", trial.trial_name, "|", tracker.trial_component.parameters)
"""),
    md("""
## 10. Detective control: a training job without network isolation

The workshop launches a training job without a VPC and watches the platform's detective control stop
it. Strongroom's guardrail is **preventive**: in team `risk` the same launch is refused before anything
runs. The detective control stops jobs only where an admin exempted a team from the guardrail: the
demo launched the same kind of job in team `sandbox-lab` (exempted) as its data scientist, who
published the platform's record of it as a `shared=true` object, the only way one team may show
another anything. Below, the two side by side.
"""),
    code("""
from strongroom.core.errors import Forbidden

hyperparameters = {"max_depth": 5, "eta": 0.2, "gamma": 4, "min_child_weight": 6, "subsample": 0.8,
                   "verbosity": 0, "objective": "binary:logistic", "num_round": 100}
no_isolation = Estimator("xgboost", network_isolation=False, volume_kms_key=env.KMS_KEY_ID,
                         output_path=f"sr://{model_bucket}/{prefix}/output", base_job_name="no-network-isolation")
no_isolation.set_hyperparameters(**hyperparameters)
try:
    no_isolation.fit({"train": TrainingInput(train_uri, content_type="text/csv")}, logs=False)
    denial = "ACCEPTED (the guardrail did not fire)"
except Forbidden as exc:
    denial = exc.detail
print("risk:", denial)
"""),
    code("""
import json
try:
    record = json.loads(session.buckets.get_object("sandbox-lab-data", "shared/detective-control.json"))
except Exception as exc:
    record = {"team": "sandbox-lab", "job": "-", "status": "no record", "reason": str(exc), "stopped_after_seconds": None}
side_by_side = pd.DataFrame([
    {"team": env.TEAM, "guardrail": "enforced", "control": "preventive (guardrail-network-isolation)",
     "job": "no-network-isolation", "outcome": "denied before it ran", "detail": denial, "seconds": 0.0},
    {"team": record["team"], "guardrail": "exempted", "control": "detective (enforce-network-isolation)",
     "job": record["job"], "outcome": record["status"], "detail": record["reason"],
     "seconds": record["stopped_after_seconds"]},
])
print("detective control:", record["status"], "after", record["stopped_after_seconds"], "s")
with pd.option_context("display.max_colwidth", None):
    display(side_by_side)
"""),
    md("## 11. Train XGBoost with network isolation, as a spot training job"),
    code("""
xgb_estimator = Estimator(
    "xgboost",
    instance_count=1, cpus=2,
    volume_kms_key=env.KMS_KEY_ID,
    output_path=f"sr://{model_bucket}/{prefix}/output",
    use_spot_instances=True, max_runtime_in_seconds=3600, max_wait=3600,
    base_job_name="cc-xgboost",
)
xgb_estimator.set_hyperparameters(**hyperparameters)
xgb_estimator.fit(
    {"train": TrainingInput(train_uri, content_type="text/csv")},
    experiment_config={"ExperimentName": experiment.experiment_name, "TrialName": trial.trial_name,
                       "TrialComponentDisplayName": "Training"},
    logs=False,
)
training = xgb_estimator.latest_training_job.job()
print(training.name, training.status, "| billable", training.billable_seconds, "s of", training.total_seconds, "s")
print("hyperparameters:", json.dumps(training.spec.hyperparameters, sort_keys=True))
print("channels:", [c.name for c in training.spec.inputs])
"""),
    md("## 12. Experiment analytics and the training trial component"),
    code("""
search_expression = {"Filters": [{"Name": "Parents.TrialName", "Operator": "Equals", "Value": trial.trial_name}]}
trial_component_analytics = ExperimentAnalytics(
    experiment_name=experiment.experiment_name,
    search_expression=search_expression,
    sort_by="CreationTime",
    sort_order="Descending",
)
analytic_table = trial_component_analytics.dataframe()
print("components:", ", ".join(analytic_table["DisplayName"]))
analytic_table
"""),
    code("""
training_component = next(c for c in trial.list_trial_components() if c.display_name == "Training")
for _ in range(50):       # the job's component is closed when the job's outputs are recorded
    model_artifact = next((a.value for a in training_component.output_artifacts.values()
                           if a.value.endswith("model.tar.gz")), None)
    if model_artifact:
        break
    time.sleep(0.2)
    training_component.refresh()
print(json.dumps(session.experiments.describe_component(training_component.trial_component_name).model_dump(mode="json"),
                 indent=1, default=str))
"""),
    md("## 13. The model: download, load, and feature importance"),
    code("""
import xgboost as xgb
from sklearn.metrics import roc_auc_score
from strongroom.explain import Explainer

bucket, key = model_artifact[len("sr://"):].split("/", 1)
session.buckets.download(bucket, key, "/tmp/model.tar.gz")
# XGBoost's own format, from a checked archive: Strongroom never unpickles a model.
model = Explainer.from_model_tar("/tmp/model.tar.gz").booster
os.remove("/tmp/model.tar.gz")

features = job_train_headers.drop(columns="Label")              # the names come from train_headers
test = pd.read_csv(test_uri, header=None, names=job_train_headers.columns)
auc = roc_auc_score(test["Label"], model.predict(xgb.DMatrix(test.drop(columns="Label"))))
print(f"test AUC: {auc:.4f}")
"""),
    code("""
positions = {f"f{i}": name for i, name in enumerate(features.columns)}
weight = {positions.get(k, k): v for k, v in model.get_score(importance_type="weight").items()}
ax = xgb.plot_importance(weight)          # importance_type "weight", as plot_importance(model) shows
ax.figure.set_size_inches(7, 6)
print("importance (weight):", ", ".join(sorted(weight, key=weight.get, reverse=True)[:5]))
show(ax.figure)
""", tags=["plot:importance"]),
    md("## 14. SHAP over the full training set"),
    code("""
explainer = shap.TreeExplainer(model)
shap_values = explainer(features)
mean_abs = pd.Series(abs(shap_values.values).mean(axis=0), index=features.columns).sort_values(ascending=False)
print(f"SHAP values for {shap_values.values.shape[0]} training rows x {shap_values.values.shape[1]} features")
print("top SHAP features:", ", ".join(mean_abs.index[:5]))
shap.summary_plot(shap_values, features, plot_type="bar", show=False)
show(plt.gcf())
""", tags=["plot:shap-bar"]),
    code("""
shap.summary_plot(shap_values, features, show=False)
show(plt.gcf())
""", tags=["plot:shap-beeswarm"]),
    md("## 15. Commit and push this notebook to the team's git repository"),
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
import nbformat
notebook = nbformat.read("01_DataScientist-Workflow.ipynb", as_version=4)
for cell in notebook.cells:                      # commit the code, not the outputs (they hold data)
    if cell.cell_type == "code":
        cell.outputs, cell.execution_count = [], None
nbformat.write(notebook, f"{repo}/notebooks/01_DataScientist-Workflow.ipynb")
subprocess.run(["cp", "preprocessing.py", repo], check=True)
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
model_entity = next(e for e in session.lineage.list_entities(uri=model_artifact))
upstream = session.lineage.upstream(model_entity.srn, depth=10)
for node in sorted(upstream.nodes, key=lambda n: str(getattr(n, "type", ""))):
    print(f"{getattr(node, 'type', ''):12} {getattr(node, 'uri', '') or node.srn}")
"""),
    md("""
## 16. Hand-off to notebook 02

The workshop `%store`s the experiment, trial and training-job names for notebook 02. Here they go to a
small JSON object in the team's data bucket (encrypted, versioned, audited), which the MLOps engineer's
notebook reads.
"""),
    code("""
handoff = {
    "experiment_name": experiment.experiment_name,
    "trial_name": trial.trial_name,
    "training_job_name": training.name,
    "model_data": model_artifact,
    "train_headers": train_headers_uri,
    "test_data": test_uri,
    "commit": commit,
}
handoff_key = f"{prefix}/handoff/01_DataScientist-Workflow.json"
session.buckets.put_object(env.DATA_BUCKET, handoff_key, json.dumps(handoff, indent=1).encode(),
                           content_type="application/json")
print(f"stored for notebook 02: sr://{env.DATA_BUCKET}/{handoff_key}")
print(json.dumps(handoff, indent=1))
"""),
]

MLOPS = [
    md("""
# 02 · MLOps workflow: deploy, capture, monitor, and trace back to the commits

You are the MLOps engineer of team **risk**. This notebook runs in your own Strongroom notebook (a
sandbox with no network) and its kernels act with your **MLOpsEngineer** role: you may create models,
endpoints and monitoring schedules and read the team's data and captures, but not change the data
bucket. It is the workshop's notebook 02, step by step; where Strongroom differs the cell says so, and
`docs/workshop.md` lists every workshop cell next to this notebook's.
"""),
    md("## 1. Restore what notebook 01 handed over; load the trial"),
    code("""
import json, os, statistics, subprocess, time
import pandas as pd
import strongroom
import strongroom_environment as env
from strongroom.experiments import ExperimentAnalytics, Tracker, Trial

session = strongroom.Session()
me = session.whoami()
print("user:", me.user, "| acting as:", me.grants, "| token kind:", me.token_kind)

# The workshop %store-s these names; notebook 01 left them in the team bucket (encrypted, audited).
prefix = "secure-strongroom-demo"
handoff = json.loads(session.buckets.get_object(env.DATA_BUCKET, f"{prefix}/handoff/01_DataScientist-Workflow.json"))
print(json.dumps(handoff, indent=1))
trial = Trial.load(handoff["trial_name"])
print("trial:", trial.trial_name, "| components:", ", ".join(c.display_name for c in trial.list_trial_components()))
"""),
    md("## 2. The latest training job of the trial: its model artifact and training image"),
    code("""
trained = [j for j in session.jobs.list(env.TEAM) if j.kind == "training" and j.status == "Completed"
           and j.spec.experiment_config and j.spec.experiment_config.trial_name == trial.trial_name]
training_job = max(trained, key=lambda j: j.created_at)
model_data = next(o.uri for o in training_job.outputs_produced if o.uri.endswith("model.tar.gz"))
image = f"{training_job.spec.code.algorithm} (runtime {training_job.spec.runtime})"
print("training job:", training_job.name, "| the one notebook 01 handed over:", training_job.name == handoff["training_job_name"])
print("model artifact:", model_data)
print("training image:", image)
"""),
    md("""
## 3. Create the model (delete and recreate it if it exists)

The model pins the artifact's version and SHA-256; like jobs, it runs with network isolation and the
team key (the guardrails refuse a model without them).
"""),
    code("""
from strongroom.core.errors import NotFound

model_name = f"{training_job.name}-model"
try:
    session.models.describe(env.TEAM, model_name)
    session.models.delete(env.TEAM, model_name)
    print("deleted the existing model", model_name)
except NotFound:
    pass
model = session.models.create(env.TEAM, model_name, training_job=training_job.name, kms_key=env.KMS_KEY_ID)
print(model.name, "|", model.model_data, "| sha256", model.sha256[:16], "| runtime", model.runtime,
      "| network isolation", model.network_isolation, "| key", model.kms_key)
"""),
    md("## 4. Data capture: every request and response (100 %), CSV and JSON"),
    code("""
from strongroom.sdk.serving import DataCaptureConfig

capture_uri = f"sr://{env.DATA_BUCKET}/{prefix}/monitoring/datacapture"
data_capture_config = DataCaptureConfig(
    capture_uri,
    enable_capture=True,
    sampling_percentage=100,
    capture_options=["Input", "Output"],
    csv_content_types=["text/csv"],
    json_content_types=["application/json"],
)
print(json.dumps(data_capture_config, indent=1))
"""),
    md("## 5. The endpoint config (one variant `AllTraffic`) and the endpoint; wait for `InService`"),
    code("""
endpoint_name = f"{training_job.name}-endpoint"
endpoint_config_name = f"{endpoint_name}-config"
session.endpoint_configs.create(
    env.TEAM, endpoint_config_name,
    [{"VariantName": "AllTraffic", "ModelName": model_name, "InitialInstanceCount": 1, "InitialVariantWeight": 1.0}],
    data_capture_config, kms_key=env.KMS_KEY_ID,
)
endpoint = session.endpoints.create(env.TEAM, endpoint_name, endpoint_config_name)
print("Endpoint:", endpoint.srn)
print("Status:", endpoint.status)
while endpoint.status == "Creating":
    time.sleep(0.5)
    endpoint = session.endpoints.describe(env.TEAM, endpoint_name)
print("Status:", endpoint.status, endpoint.failure_reason)
assert endpoint.status == "InService", endpoint.failure_reason
"""),
    md("""
## 6. Invoke the endpoint: the first 10 rows of the test set, label stripped, 0.5 s apart

The predictor speaks CSV through the sandbox's socket to the platform, which authenticates the
notebook's execution role, checks the policy, and forwards to the model's sandboxed worker.
"""),
    code("""
from strongroom.sdk.serving import CSV, Predictor

predictor = Predictor(endpoint_name, serializer=CSV, session=session, team=env.TEAM)
test_bucket, test_key = handoff["test_data"][len("sr://"):].split("/", 1)
test_lines = session.buckets.get_object(test_bucket, test_key).decode().splitlines()   # headerless, Label first
sent, latencies = [], []

def invoke(row):
    started = time.perf_counter()
    score = predictor.predict(row)
    latencies.append(time.perf_counter() - started)
    sent.append(row)
    return score

print("Sending test traffic to the endpoint {}. \\nPlease wait...".format(endpoint_name))
for line in test_lines[:10]:
    label, row = line.split(",", 1)        # strip the label (the first field)
    print(f"label {label} -> score {invoke(row)}")
    time.sleep(0.5)
print("Done!")
"""),
    md("## 7. The captured requests: `<destination>/<endpoint>/AllTraffic/yyyy/mm/dd/hh/*.jsonl`"),
    code("""
capture_prefix = f"{prefix}/monitoring/datacapture/{endpoint_name}/AllTraffic/"

def captured_records(expected, timeout=60):
    \"\"\"Every captured record, once at least `expected` are uploaded (the endpoint uploads every few seconds).\"\"\"
    deadline = time.monotonic() + timeout
    while True:
        files = session.list_objects(env.DATA_BUCKET, capture_prefix)
        records = [json.loads(line) for key in files
                   for line in session.buckets.get_object(env.DATA_BUCKET, key).decode().splitlines()]
        if len(records) >= expected or time.monotonic() > deadline:
            return files, records
        time.sleep(0.5)

capture_files, records = captured_records(len(sent))
print("Found Capture Files:")
print("\\n".join(f"sr://{env.DATA_BUCKET}/{key}" for key in capture_files))
print(json.dumps(records[0], indent=2))
print(f"{len(records)} records captured for the {len(sent)} requests sent")
"""),
]

MLOPS_MONITORING = [
    md("""
## 8. Baseline: statistics and suggested constraints of the training set (`train_headers`)

A sandboxed model-monitor job with the team key reads the training set with its header row (the label
is excluded: requests carry only the 23 features) and writes `statistics.json` and `constraints.json`.
"""),
    code("""
from strongroom.sdk.monitor import CronExpressionGenerator, DatasetFormat, DefaultModelMonitor

baseline_data_uri = handoff["train_headers"]
baseline_results_uri = f"sr://{env.MODEL_BUCKET}/{prefix}/{model_name}/baselining/results"
my_default_monitor = DefaultModelMonitor(
    role="MLOpsEngineer",
    instance_count=1,
    volume_kms_key=env.KMS_KEY_ID,
    max_runtime_in_seconds=3600,
    session=session, team=env.TEAM,
)
baseline_job = my_default_monitor.suggest_baseline(
    baseline_dataset=baseline_data_uri,
    dataset_format=DatasetFormat.csv(header=True),
    output_s3_uri=baseline_results_uri,
    excluded_columns=["Label"],
    wait=True,
)
baseline_statistics = my_default_monitor.baseline_statistics()
suggested_constraints = my_default_monitor.suggested_constraints()
print("baseline job:", baseline_job.describe()["name"], baseline_job.describe()["status"])
print(f"baseline: {baseline_statistics.body_dict['dataset']['item_count']} rows x "
      f"{len(baseline_statistics.body_dict['features'])} features | "
      f"{len(suggested_constraints.body_dict['features'])} constraints | {baseline_results_uri}")
"""),
    code("""
schema_df = baseline_statistics.frame()
schema_df.head(10)
"""),
    code("""
constraints_df = suggested_constraints.frame()
constraints_df.head(10)
"""),
    md("""
## 9. An hourly monitoring schedule on the endpoint

The schedule checks each hour's captured requests against the baseline. The first hourly execution
would start at the top of the next hour (the workshop waits for it); so that the demo does not wait an
hour, the cells below also **run one execution now** over the capture since the last window
(`run_now`), the same job an hourly execution runs.
"""),
    code("""
mon_schedule_name = "xgb-credit-score-model-monitor-schedule-" + time.strftime("%Y-%m-%d-%H%M%S", time.gmtime())
s3_report_path = f"sr://{env.MODEL_BUCKET}/{prefix}/reports"
my_default_monitor.create_monitoring_schedule(
    monitor_schedule_name=mon_schedule_name,
    endpoint_input=endpoint_name,
    output_s3_uri=s3_report_path,
    statistics=my_default_monitor.baseline_statistics(),
    constraints=my_default_monitor.suggested_constraints(),
    schedule_cron_expression=CronExpressionGenerator.hourly(),
    enable_cloudwatch_metrics=True,
)
desc_schedule_result = my_default_monitor.describe_schedule()
print("Schedule status:", desc_schedule_result["MonitoringScheduleStatus"], "|", mon_schedule_name,
      "|", desc_schedule_result["schedule_expression"], "| next hourly run:", desc_schedule_result["next_run"])
"""),
    md("""
## 10. Traffic: clean rows, then the workshop's drifted rows

First 500 unchanged rows of the test set, checked at once (nothing should be flagged). Then the
workshop's drift on the test set read with the feature names: LIMIT_BAL divided by 1000 on a random
half of the rows, EDUCATION negated on a random three quarters; 500 of those rows are sent (the
workshop sends all 6,000, 0.1 s apart, from a background thread: ten minutes). Each row is one request,
four at a time.
"""),
    code("""
from concurrent.futures import ThreadPoolExecutor

def send_all(rows, workers=4):
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(invoke, rows))

clean_rows = [line.split(",", 1)[1] for line in test_lines[10:510]]
send_all(clean_rows)
clean_execution = my_default_monitor.run_now(wait=False)     # the capture since the schedule was created
print(f"sent {len(clean_rows)} clean rows; execution {clean_execution.id} over "
      f"{clean_execution.execution.window_start:%H:%M:%S}-{clean_execution.execution.window_end:%H:%M:%S}")
"""),
    code("""
columns = list(pd.read_csv(handoff["train_headers"], nrows=0).columns)   # Label, then the 23 features
test_df = pd.read_csv(handoff["test_data"], header=None, names=columns)
drift_df = test_df.drop(columns="Label")
drift_df["LIMIT_BAL"] = drift_df["LIMIT_BAL"].astype(float)
half = drift_df.sample(frac=0.5, random_state=0).index
drift_df.loc[half, "LIMIT_BAL"] = drift_df.loc[half, "LIMIT_BAL"] / 1000
three_quarters = drift_df.sample(frac=0.75, random_state=1).index
drift_df.loc[three_quarters, "EDUCATION"] = -drift_df.loc[three_quarters, "EDUCATION"]
drift_rows = drift_df.iloc[510:1010].to_csv(header=False, index=False).splitlines()
send_all(drift_rows)
drift_execution = my_default_monitor.run_now(wait=False)     # the capture since the clean window
print(f"sent {len(drift_rows)} drifted rows; execution {drift_execution.id} over "
      f"{drift_execution.execution.window_start:%H:%M:%S}-{drift_execution.execution.window_end:%H:%M:%S}")
"""),
    md("## 11. The schedule's executions; the latest one described; its report files"),
    code("""
for execution in (clean_execution, drift_execution):
    execution.wait(timeout=600)
executions = my_default_monitor.list_executions()
print("executions:", len(executions))
latest_execution = executions[-1]
desc = latest_execution.describe()
print("Latest execution status:", desc["MonitoringExecutionStatus"])
print("Latest execution result:", desc["ExitMessage"])
report_files = session.list_objects(env.MODEL_BUCKET, desc["output_uri"].split("/", 3)[3] + "/")
print("Report Uri:", desc["output_uri"])
print("Found Report Files:")
print("\\n".join(f"sr://{env.MODEL_BUCKET}/{key}" for key in report_files))
print("clean traffic report:", clean_execution.refresh().report_uri)
print("drift report:", desc["report_uri"])
"""),
    md("## 12. The violations, as a DataFrame"),
    code("""
violations = my_default_monitor.latest_monitoring_constraint_violations()
pd.set_option("display.max_colwidth", None)
violations_df = violations.frame()
print("violations on the drifted traffic:", ", ".join(sorted(set(violations_df["feature_name"]))))
clean_violations = clean_execution.constraint_violations().body_dict["violations"]
print("violations on the clean traffic:", ", ".join(sorted({v["feature_name"] for v in clean_violations})) or "none")
violations_df
"""),
    code("""
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
from IPython.display import Image, display
import io

threshold = suggested_constraints.body_dict["monitoring_config"]["distribution_constraints"]["comparison_threshold"]
fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
for ax, (title, execution) in zip(axes, (("clean traffic", clean_execution), ("drifted traffic", drift_execution))):
    distances = pd.Series(execution.refresh().distances).reindex(columns[1:]).fillna(0)
    ax.bar(distances.index, distances.values, color=["#c44e52" if d > threshold else "#4c72b0" for d in distances])
    ax.axhline(threshold, color="black", linestyle="--", linewidth=1, label=f"threshold {threshold}")
    ax.set_title(f"{title}: distance to the baseline per feature")
    ax.tick_params(axis="x", rotation=90, labelsize=7)
    ax.legend()
buffer = io.BytesIO()
fig.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
plt.close(fig)
display(Image(buffer.getvalue()))
""", tags=["plot:drift"]),
]

MLOPS_REPRODUCIBILITY = [
    md("""
## 13. Reproducibility: both notebooks in the team repository, both commits in the lineage

The data scientist committed notebook 01 from her notebook; here the MLOps engineer commits this one
(the workshop does both from a terminal). The remote is the team repository, through the sandbox's
socket, with this notebook's execution role as the credential.
"""),
    code("""
def git(*args, cwd):
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    print(done.stdout.strip() or done.stderr.strip())
    done.check_returncode()
    return done.stdout.strip()

import nbformat
repo = getattr(env, "GIT_REPOSITORY", "") or "repo"
if not os.path.isdir(os.path.join(repo, ".git")):
    git("clone", env.GIT_REMOTE, repo, cwd=".")
git("pull", "--ff-only", "origin", "main", cwd=repo)          # the data scientist's commit of notebook 01
os.makedirs(f"{repo}/notebooks", exist_ok=True)
notebook = nbformat.read("02_MLOps-Workflow.ipynb", as_version=4)
for cell in notebook.cells:                                     # the code, not the outputs (they hold data)
    if cell.cell_type == "code":
        cell.outputs, cell.execution_count = [], None
nbformat.write(notebook, f"{repo}/notebooks/02_MLOps-Workflow.ipynb")
git("add", "-A", cwd=repo)
git("-c", f"user.name={me.user}", "-c", f"user.email={me.user}@{env.TEAM}.example", "commit", "-m",
    "Workshop: deploy the credit-default model with data capture and drift monitoring", cwd=repo)
try:
    git("push", "origin", "HEAD:main", cwd=repo)
except subprocess.CalledProcessError:                          # a transient server error: push once more
    git("push", "origin", "HEAD:main", cwd=repo)
deployment_sha = git("rev-parse", "HEAD", cwd=repo)
"""),
    code("""
# Look both commits up in the team repository (the workshop's `codecommit get_commit`).
source_commit = session.repositories.get_commit(env.TEAM, repo, handoff["commit"])
deployment_commit = session.repositories.get_commit(env.TEAM, repo, deployment_sha)
for title, c in (("training code (notebook 01)", source_commit), ("deployment code (notebook 02)", deployment_commit)):
    print(f"{title}: {c.sha} | {c.author} <{c.email}> | {c.date.isoformat()} | {c.message.strip()}")
"""),
    code("""
def commit_parameters(c):
    return {"commit": c.sha, "author": f"{c.author} <{c.email}>", "date": c.date.isoformat(), "message": c.message.strip()}

with Tracker.create(display_name="source-control-lineage") as source_tracker:
    source_tracker.log_parameters(commit_parameters(source_commit))
trial.add_trial_component(source_tracker.trial_component)

with Tracker.create(display_name="prod-endpoint-lineage") as prod_tracker:
    prod_tracker.log_parameters(commit_parameters(deployment_commit))
    prod_tracker.log_input(name="endpoint-name", value=endpoint_name)
trial.add_trial_component(prod_tracker.trial_component)

# The lineage graph too: the deployment commit is associated with the endpoint it deployed (notebook 01
# associated the training commit with the training job), so the endpoint's lineage reaches both.
endpoint_context = next(e for e in session.lineage.list_entities(kind="context", type="Endpoint")
                        if e.name == endpoint_name)
deployment_artifact = session.lineage.log_commit(repo, deployment_sha, associate_with=[endpoint_context.srn])
print("deployment commit recorded:", deployment_artifact.uri, "-> associated with", endpoint_context.srn)
"""),
    code("""
lineage_table = ExperimentAnalytics(
    search_expression={"Filters": [{"Name": "Parents.TrialName", "Operator": "Equals", "Value": trial.trial_name}]},
    sort_by="CreationTime",
    sort_order="Ascending",
)
lineagedf = lineage_table.dataframe()
print("trial components:", ", ".join(lineagedf["DisplayName"]))
columns = [c for c in ("DisplayName", "commit", "author", "date", "message", "endpoint-name - Value",
                       "train_test_split_ratio", "max_depth") if c in lineagedf.columns]
with pd.option_context("display.max_colwidth", 60):
    display(lineagedf[columns])
"""),
    code("""
upstream = session.lineage.upstream(endpoint_context.srn, depth=10)
endpoint_lineage = sorted(f"{getattr(n, 'type', '')}: {getattr(n, 'uri', '') or n.srn}" for n in upstream.nodes)
print("lineage of the endpoint", endpoint_name)
print("\\n".join("  " + entry for entry in endpoint_lineage))
commits = {source_commit.sha, deployment_commit.sha}
print("reaches both commits:", all(any(sha in entry for entry in endpoint_lineage) for sha in commits))
"""),
    md("""
## 14. Clean up: the monitoring schedule, then the endpoint

Deleting the endpoint uploads what its capture still holds; the captured files stay in the team bucket.
"""),
    code("""
my_default_monitor.delete_monitoring_schedule()
print("monitoring schedule", mon_schedule_name, "deleted")
deleted = session.endpoints.delete(env.TEAM, endpoint_name)
print("endpoint", endpoint_name, deleted.status)

# What the endpoint captured, once its last records are uploaded: exactly what this notebook sent.
import hashlib
capture_files, records = captured_records(len(sent))
captured = sorted(r["captureData"]["endpointInput"]["data"] for r in records)
digest = hashlib.sha256("\\n".join(sorted(sent)).encode()).hexdigest()
print(f"sent {len(sent)} requests | sha256 of the sorted rows: {digest}")
print(f"capture holds exactly the {len(sent)} requests sent: {captured == sorted(sent)}")
print(f"endpoint latency p50: {statistics.median(latencies) * 1000:.1f} ms over {len(latencies)} requests"
      " (from this notebook, through the sandbox's socket)")
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
                        ("01_DataScientist-Workflow.ipynb", DATA_SCIENTIST),
                        ("02_MLOps-Workflow.ipynb", MLOPS + MLOPS_MONITORING + MLOPS_REPRODUCIBILITY)):
        (OUT / name).write_text(json.dumps(notebook(cells), indent=1) + "\n")
        print("wrote", OUT / name)


if __name__ == "__main__":
    main()
