"""`strongroom demo`: the workshop, for real.

On a fresh home: initialise the platform and start it; provision the Team Environment `risk`
(key, encrypted buckets, git repository, portfolio) and its people; show a preventive guardrail
and a detective control at work (team `sandbox-lab` is exempted from network isolation); launch
the Notebook product for the data scientist and one for the platform admin; upload the
workshop notebooks into them and execute them cell by cell in the sandboxed Jupyter kernels,
through the platform's proxy, as those users; then save the executed notebooks (also rendered as
HTML) and an HTML summary (AUC, top SHAP features, the notebooks' plots, the model's lineage and
commit URL, guardrail and detective events, audit verification) to the team bucket and to
./strongroom-demo-report/.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from strongroom.catalog.models import ProvisionedProduct
from strongroom.core import launcher
from strongroom.core.config import Config, default_home
from strongroom.core.errors import Forbidden, StrongroomError
from strongroom.demo.data import load_data
from strongroom.demo.report import build_summary_html, commit_link, notebook_plots, render_notebook_html
from strongroom.platform import initialize
from strongroom.sdk.session import Session

console = Console()
TEAM, LAB = "risk", "sandbox-lab"
NOTEBOOKS = {
    "admin": "00_PlatformAdmin-Workflow.ipynb",
    "alice": "01_DataScientist-Workflow.ipynb",
    "omar": "02_MLOps-Workflow.ipynb",
}
PEOPLE = [
    # name, role, team ("" = platform-wide)
    ("dana", "DataScienceAdmin", TEAM),
    ("alice", "DataScientist", TEAM),
    ("omar", "MLOpsEngineer", TEAM),
    ("ava", "Auditor", ""),
    ("sam", "DataScientist", LAB),
]


@dataclass
class DemoRun:
    home: Path
    report_dir: Path
    sessions: dict[str, Session] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)
    steps: list[tuple[str, str, float]] = field(default_factory=list)

    def step(self, title: str, seconds: float, outcome: str = "ok") -> None:
        self.steps.append((title, outcome, seconds))
        colour = "green" if outcome == "ok" else "red"
        console.print(f"[{colour}]{'✓' if outcome == 'ok' else '✗'}[/{colour}] {title} [dim]({seconds:.1f} s)[/dim]")


def _notebook_source(name: str) -> dict[str, Any]:
    return dict(json.loads(resources.files("strongroom.demo.notebooks").joinpath(name).read_text()))


def _timed(run: DemoRun, title: str, action: Any) -> Any:
    started = time.monotonic()
    result = action()
    run.step(title, time.monotonic() - started)
    return result


def _setup(run: DemoRun, server: launcher.ServerProcess, admin_token: str) -> None:
    admin = Session(url=server.url, token=admin_token, ca=server.ca)
    run.sessions["admin"] = admin
    _timed(
        run,
        f"Team Environment '{TEAM}': team, customer-managed key, encrypted buckets, git repository, portfolio",
        lambda: admin.catalog.launch("team-environment", {"TeamName": TEAM}, wait=True),
    )
    _timed(
        run,
        f"Team Environment '{LAB}' (a team the admin exempts from network isolation)",
        lambda: admin.catalog.launch("team-environment", {"TeamName": LAB}, wait=True),
    )
    _timed(
        run,
        "Team Environment 'platform' for the administrator's own notebook",
        lambda: admin.catalog.launch("team-environment", {"TeamName": "platform"}, wait=True),
    )
    for name, role, team in PEOPLE:
        admin.users.create(name)
        if team:
            admin.teams.add_member(team, name, role)
        else:
            admin.users.grant_role(name, role)
        run.sessions[name] = Session(url=server.url, token=admin.tokens.create("demo", user=name).secret, ca=server.ca)
    admin.teams.set_guardrail_exemptions(LAB, ["network-isolation"])
    run.step("people: " + ", ".join(f"{n} ({r}{'@' + t if t else ''})" for n, r, t in PEOPLE), 0.0)
    # The team's portfolio grants notebooks to data scientists; its admin grants them to the MLOps role too.
    run.sessions["dana"].catalog.grant(TEAM, "notebooks", "MLOpsEngineer")
    run.step(f"dana (DataScienceAdmin) grants team {TEAM}'s Notebook portfolio to MLOpsEngineer", 0.0)


def _guardrail_and_detective(run: DemoRun) -> None:
    alice, sam = run.sessions["alice"], run.sessions["sam"]
    key = alice.keys.list(TEAM)[0].id
    spec = {
        "name": "no-isolation",
        "team": TEAM,
        "kind": "training",
        "code": {"algorithm": "xgboost"},
        "hyperparameters": {"num_round": 10},
        "inputs": [{"name": "train", "source": f"sr://{TEAM}-data/x"}],
        "outputs": [{"name": "model", "destination": f"sr://{TEAM}-models/x"}],
        "security": {"network_isolation": False, "volume_kms_key": key},
    }
    started = time.monotonic()
    try:
        alice.jobs.create(spec)
        run.step("guardrail: a training job without network isolation was ACCEPTED", 0.0, "failed")
    except Forbidden as exc:
        run.facts["guardrail"] = exc.detail
        run.step(
            f"guardrail: alice's job without network isolation denied — {exc.detail.split(': ', 1)[-1]}",
            time.monotonic() - started,
        )
    lab_key = sam.keys.list(LAB)[0].id
    sam.buckets.put_object(
        f"{LAB}-data", "code/phone_home.py", b"import time\nprint('running', flush=True)\ntime.sleep(600)\n"
    )
    started = time.monotonic()
    sam.jobs.create(
        {
            "name": "phone-home",
            "team": LAB,
            "kind": "training",  # as the workshop's: a training job launched without network isolation
            "code": {"source": f"sr://{LAB}-data/code/phone_home.py"},
            "outputs": [{"name": "model", "destination": f"sr://{LAB}-models/phone-home"}],
            "resources": {"scratch_mb": 64},
            "security": {"network_isolation": False, "volume_kms_key": lab_key},
        }
    )
    deadline = time.monotonic() + 60
    job = sam.jobs.describe(LAB, "phone-home")
    while job.status not in ("Stopped", "Failed", "Completed") and time.monotonic() < deadline:
        time.sleep(0.5)
        job = sam.jobs.describe(LAB, "phone-home")
    seconds = (job.ended_at - job.started_at).total_seconds() if job.ended_at and job.started_at else None
    run.facts["detective"] = {"status": job.status, "reason": job.failure_reason, "seconds": seconds}
    # alice's notebook shows this stop beside her own denial; she may not read another team's jobs,
    # so sam publishes the platform's record of it as a shared object (readable by every team).
    record = {
        "team": LAB,
        "job": job.name,
        "network_isolation": False,
        "status": job.status,
        "reason": job.failure_reason,
        "stopped_after_seconds": round(seconds, 1) if seconds is not None else None,
    }
    sam.buckets.put_object(
        f"{LAB}-data",
        "shared/detective-control.json",
        json.dumps(record).encode(),
        tags={"shared": "true"},
        content_type="application/json",
    )
    outcome = "ok" if job.status == "Stopped" and "detective" in job.failure_reason else "failed"
    run.step(
        f"detective control: sam's exempted job without network isolation {job.status.lower()} — {job.failure_reason}",
        time.monotonic() - started,
        outcome,
    )


def _launch_notebooks(run: DemoRun) -> dict[str, ProvisionedProduct]:
    """Launch the three Notebook products; return omar's and the admin's launches, which settle while
    alice's notebook runs."""
    alice, admin, omar = run.sessions["alice"], run.sessions["admin"], run.sessions["omar"]
    launches = {
        "omar": omar.catalog.launch(
            "notebook",
            {"TeamName": TEAM, "NotebookName": "omar-ops", "ExecutionRole": "MLOpsEngineer", "InstanceSize": "medium"},
        ),
        "admin": admin.catalog.launch(
            "notebook", {"TeamName": "platform", "NotebookName": "ops", "ExecutionRole": "PlatformAdmin"}
        ),
    }
    _timed(
        run,
        "Notebook product for alice (JupyterLab in a network-less sandbox, her DataScientist role)",
        lambda: alice.catalog.launch(
            "notebook", {"TeamName": TEAM, "NotebookName": "alice-lab", "InstanceSize": "large"}, wait=True
        ),
    )
    return launches


def _execute(run: DemoRun, who: str, team: str, notebook: str) -> dict[str, Any]:
    session = run.sessions[who]
    name = NOTEBOOKS[who]
    source = _notebook_source(name)
    session.notebooks.upload(team, notebook, name, source)
    cells = [c for c in source["cells"] if c["cell_type"] == "code"]
    started = time.monotonic()
    with Progress(
        TextColumn(f"[bold]{name}[/bold] as {who}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("", total=len(cells))

        timings: list[dict[str, Any]] = []
        run.facts.setdefault("cell_seconds", {})[name] = timings
        last = [time.monotonic()]

        def on_cell(index: int, cell: Any, result: Any) -> None:
            first = (cell.source.strip().splitlines() or [""])[0]
            now = time.monotonic()
            timings.append({"cell": index, "first_line": first, "seconds": round(now - last[0], 2)})
            last[0] = now
            bar.update(task, advance=1, description=first[:60])

        try:
            executed = session.notebooks.execute_notebook(team, notebook, name, timeout_per_cell=600, on_cell=on_cell)
        except StrongroomError as exc:
            failed = getattr(exc, "notebook", None)
            if failed is not None:
                _save(run, name, failed)
            run.step(f"{name} FAILED in a cell: {exc.detail}", time.monotonic() - started, "failed")
            raise
    run.step(
        f"{name} executed in the sandboxed kernel as {who}: {len(cells)} cells, no errors", time.monotonic() - started
    )
    _save(run, name, executed)
    return dict(executed)


CAPTURE_PREFIX = "secure-strongroom-demo/monitoring/datacapture/"


def _capture_access(run: DemoRun) -> None:
    """The endpoint's capture, read back as the team (alice) and refused to the platform admin."""
    alice, admin = run.sessions["alice"], run.sessions["admin"]
    started = time.monotonic()
    keys = alice.list_objects(f"{TEAM}-data", CAPTURE_PREFIX)
    inputs = [
        json.loads(line)["captureData"]["endpointInput"]["data"]
        for key in keys
        for line in alice.buckets.get_object(f"{TEAM}-data", key).decode().splitlines()
    ]
    denial = ""
    if keys:
        try:
            admin.buckets.get_object(f"{TEAM}-data", keys[0])
        except Forbidden as exc:
            denial = exc.detail
    run.facts["capture"] = {
        "destination": f"sr://{TEAM}-data/{CAPTURE_PREFIX}",
        "objects": len(keys),
        "records": len(inputs),
        "inputs_sha256": hashlib.sha256("\n".join(sorted(inputs)).encode()).hexdigest(),
        "team_reads": bool(inputs),
        "admin_denied": denial,
    }
    outcome = "ok" if inputs and denial else "failed"
    run.step(
        f"capture: {len(inputs)} records in {len(keys)} objects, read by the team (alice); the platform admin "
        f"is refused — {denial.split(': ', 1)[-1] or 'NOT refused'}",
        time.monotonic() - started,
        outcome,
    )


def _save(run: DemoRun, name: str, notebook: Any) -> None:
    import nbformat

    run.report_dir.mkdir(parents=True, exist_ok=True)
    nbformat.write(nbformat.from_dict(dict(notebook)), str(run.report_dir / name))


def _outputs_text(notebook: dict[str, Any]) -> str:
    texts = []
    for cell in notebook["cells"]:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                texts.append(output.get("text", ""))
            elif "data" in output and "text/plain" in output["data"]:
                texts.append(output["data"]["text/plain"])
    return "\n".join(texts)


def run_demo(
    home: Path | None = None,
    keep_running: bool = False,
    data: Path | None = None,
    report_dir: Path | None = None,
    test: Path | None = None,
) -> int:
    """Run the demo; returns the process exit code (0 when every step behaved as expected).

    ``home``: a new or empty directory for the demo's platform (default ``$STRONGROOM_HOME``, else a
    new temporary directory). ``data``/``test``: the user's data, as :func:`load_data` reads it.

    Raises:
        InvalidInput: the data is not the workshop's.
        ConfigurationError: ``home`` already holds a platform or is not empty.
    """
    dataset = load_data(data, test) if data is not None else None  # a bad file fails before anything starts
    if home is None and os.environ.get("STRONGROOM_HOME"):
        home = default_home()
    home = home or Path(tempfile.mkdtemp(prefix="strongroom-demo-"))
    run = DemoRun(home=home, report_dir=report_dir or Path.cwd() / "strongroom-demo-report")
    config = Config(home=home, port=0)
    console.rule("[bold]Strongroom demo: the secure data-science workshop")
    started = time.monotonic()
    init = initialize(config)
    server = launcher.start(config)
    run.step(f"platform initialised in {home} and serving at {server.url}", time.monotonic() - started)
    run.facts["url"] = server.url
    code = 1
    try:
        _setup(run, server, init.token.secret)
        _guardrail_and_detective(run)
        launches = _launch_notebooks(run)
        if dataset is not None:
            # One canonical headed CSV (UCI schema), built in memory: the notebook reads any input the same way.
            run.sessions["alice"].buckets.put_object(
                f"{TEAM}-data", "incoming/credit_default.csv", dataset.to_csv().encode(), content_type="text/csv"
            )
            given = f"{data} and {test}" if test is not None else str(data)
            run.step(
                f"your data ({given}: {len(dataset)} rows) uploaded (encrypted) to "
                f"sr://{TEAM}-data/incoming/credit_default.csv",
                0.0,
            )
        executed_01 = _execute(run, "alice", TEAM, "alice-lab")
        _timed(
            run,
            "Notebook product for omar (his MLOpsEngineer role), launched alongside alice's",
            lambda: run.sessions["omar"].catalog.wait(launches["omar"].team, launches["omar"].name),
        )
        executed_02 = _execute(run, "omar", TEAM, "omar-ops")
        _capture_access(run)
        _timed(
            run,
            "Notebook product for the platform admin (kernels act as PlatformAdmin), launched alongside alice's",
            lambda: run.sessions["admin"].catalog.wait(launches["admin"].team, launches["admin"].name),
        )
        _execute(run, "admin", "platform", "ops")
        summary = _summarise(run, executed_01, executed_02)
        _print_summary(run, summary)
        code = 0 if all(outcome == "ok" for _, outcome, _ in run.steps) else 1
    except StrongroomError as exc:
        console.print(f"[red]The demo stopped:[/red] {exc.detail}")
        console.print(f"Server log: {server.log_path}; executed notebooks so far: {run.report_dir}")
    finally:
        if keep_running:
            console.print(f"\nPlatform left running at {server.url}. Home: {home}")
            console.print(f"  export STRONGROOM_HOME={home}\n  export STRONGROOM_TOKEN={init.token.secret}")
            console.print("  strongroom notebooks open alice-lab --team risk   # as alice: use her token")
        else:
            for session in run.sessions.values():
                session.close()
            server.stop()
    console.print(f"Total: {time.monotonic() - started:.0f} s")
    return code


def _value(text: str, prefix: str) -> str:
    """What follows ``prefix`` on the first output line starting with it ("" if none)."""
    return next((line[len(prefix) :].strip() for line in text.splitlines() if line.startswith(prefix)), "")


def _lineage(session: Session, srn: str, platform_url: str) -> tuple[list[str], list[dict[str, str]]]:
    """The upstream lineage of ``srn`` as sorted ``type: uri`` entries (commits as platform links), and
    the commits' links."""
    upstream = session.lineage.upstream(srn, depth=10)
    entries = sorted({f"{getattr(n, 'type', '')}: {getattr(n, 'uri', '') or n.srn}" for n in upstream.nodes})
    lineage: list[str] = []
    commits: list[dict[str, str]] = []
    for entry in entries:
        # The lineage names a commit by the sandbox's own remote; the report gives the platform's URL.
        link = commit_link(entry, platform_url)
        if link:
            commits.append(link)
            entry = f"Commit: {link['url']}"
        lineage.append(entry)
    return lineage, commits


def _endpoint_report(run: DemoRun, text: str) -> dict[str, Any]:
    """Notebook 02's endpoint, as the notebook measured it and the platform recorded it."""
    omar, ava = run.sessions["omar"], run.sessions["ava"]
    srn = _value(text, "Endpoint:")
    name = srn.rsplit("/", 1)[-1]
    latency = re.match(r"([0-9.]+) ms over ([0-9]+) requests", _value(text, "endpoint latency p50:"))
    context = next((e for e in omar.lineage.list_entities(kind="context", type="Endpoint") if e.name == name), None)
    lineage, commits = _lineage(omar, context.srn, str(run.facts.get("url", ""))) if context else ([], [])
    sent = re.search(r"^sent ([0-9]+) requests \| sha256 of the sorted rows: ([0-9a-f]{64})$", text, re.MULTILINE)
    denied = [
        e
        for e in ava.audit.query(action="CreateEndpoint", decision="Deny", principal="alice", limit=10)
        if "guardrail-no-endpoint-by-data-scientist" in e.policies
    ]
    return {
        "name": name,
        "srn": srn,
        "p50_ms": float(latency[1]) if latency else None,
        "requests": int(latency[2]) if latency else 0,
        "sent": int(sent[1]) if sent else 0,
        "sent_sha256": sent[2] if sent else "",
        "capture_equals_sent": _value(text, f"capture holds exactly the {sent[1] if sent else '?'} requests sent:")
        == "True",
        "lineage": lineage,
        "commits": commits,
        "guardrail": (
            f"{denied[0].principal} {denied[0].action}: denied by {', '.join(denied[0].policies)}" if denied else ""
        ),
    }


def _monitoring_report(run: DemoRun, text: str) -> dict[str, Any]:
    """Notebook 02's baseline and its two checks (clean and drifted traffic), read back from the model
    bucket as the team (omar); the drift report is copied next to the summary."""
    omar = run.sessions["omar"]
    baseline = re.match(r"(\d+) rows x (\d+) features \| (\d+) constraints \| (\S+)", _value(text, "baseline:"))
    checks: dict[str, Any] = {}
    for name, prefix in (("clean", "clean traffic report:"), ("drifted", "drift report:")):
        report_uri = _value(text, prefix)
        if not report_uri:
            continue
        bucket, key = report_uri[len("sr://") :].split("/", 1)
        folder = key.rsplit("/", 1)[0]
        violations = json.loads(omar.buckets.get_object(bucket, f"{folder}/constraint_violations.json"))["violations"]
        checks[name] = {"report": report_uri, "violations": violations}
        if name == "drifted":
            run.report_dir.mkdir(parents=True, exist_ok=True)
            (run.report_dir / "drift-report.html").write_bytes(omar.buckets.get_object(bucket, key))
            checks[name]["report_file"] = "drift-report.html"
    return {
        "baseline": {
            "rows": int(baseline[1]),
            "features": int(baseline[2]),
            "constraints": int(baseline[3]),
            "uri": baseline[4],
        }
        if baseline
        else {},
        "schedule": _value(text, "Schedule status:"),
        "clean": checks.get("clean", {}),
        "drifted": checks.get("drifted", {}),
    }


def _summarise(run: DemoRun, executed_01: dict[str, Any], executed_02: dict[str, Any]) -> dict[str, Any]:
    alice, ava = run.sessions["alice"], run.sessions["ava"]
    text = _outputs_text(executed_01)
    auc = _value(text, "test AUC:") or "?"
    jobs = alice.jobs.list(TEAM)
    training = next(j for j in jobs if j.kind == "training" and j.status == "Completed")
    model_uri = next(o.uri for o in training.outputs_produced if o.uri.endswith("model.tar.gz"))
    model = next(e for e in alice.lineage.list_entities(uri=model_uri))
    lineage, commits = _lineage(alice, model.srn, str(run.facts.get("url", "")))
    top = _value(text, "top SHAP features:").split(", ")
    text_02 = _outputs_text(executed_02)
    endpoint = _endpoint_report(run, text_02)
    monitoring = _monitoring_report(run, text_02)
    verify = ava.audit.verify()
    report = {
        "test_auc": auc,
        "top_shap_features": [t for t in top if t],
        "model": model_uri,
        "training_job": training.name,
        "hyperparameters": dict(training.spec.hyperparameters),
        "channels": [c.name for c in training.spec.inputs],
        "commit": commits[0] if commits else {},
        "lineage": lineage,
        "endpoint": endpoint,
        "capture": run.facts.get("capture", {}),
        "monitoring": monitoring,
        "guardrail": run.facts.get("guardrail", ""),
        "detective": run.facts.get("detective", {}),
        "audit": {
            "ok": verify.ok,
            "events": verify.events,
            "checkpoints": verify.checkpoints,
            "problem": verify.problem,
        },
        "steps": [{"step": s, "outcome": o, "seconds": round(t, 1)} for s, o, t in run.steps],
        "cell_seconds": run.facts.get("cell_seconds", {}),
    }
    run.report_dir.mkdir(parents=True, exist_ok=True)
    rendered = {name: render_notebook_html(run.report_dir / name).name for name in NOTEBOOKS.values()}
    plots = {**notebook_plots(executed_01), **notebook_plots(executed_02)}
    html = build_summary_html(report, plots, {Path(n).stem: href for n, href in rendered.items()})
    (run.report_dir / "summary.html").write_text(html)
    (run.report_dir / "summary.json").write_text(json.dumps(report, indent=2, default=str))
    extra = ["drift-report.html"] if (run.report_dir / "drift-report.html").exists() else []
    for name in ("summary.html", *NOTEBOOKS.values(), *rendered.values(), *extra):
        alice.buckets.put_object(f"{TEAM}-data", f"demo-report/{name}", run.report_dir / name)
    run.step(f"report saved to {run.report_dir} and sr://{TEAM}-data/demo-report/", 0.0)
    return report


def _print_summary(run: DemoRun, summary: dict[str, Any]) -> None:
    table = Table(title="What the demo did", header_style="bold", show_lines=False)
    table.add_column("")
    table.add_column("result", overflow="fold")
    detective = summary["detective"]
    table.add_row("test AUC (XGBoost, spot training job)", str(summary["test_auc"]))
    table.add_row("top SHAP features", ", ".join(summary["top_shap_features"]))
    table.add_row("model", summary["model"])
    table.add_row(
        "model lineage (upstream)", f"{len(summary['lineage'])} entities, down to the raw data and the commit"
    )
    endpoint, capture = summary["endpoint"], summary["capture"]
    table.add_row(
        "endpoint (omar, MLOpsEngineer)",
        f"{endpoint['name']}: p50 {endpoint['p50_ms']} ms over {endpoint['requests']} requests from his notebook",
    )
    table.add_row(
        "data capture",
        f"{capture.get('records')} records ({'exactly' if endpoint['capture_equals_sent'] else 'NOT'} the "
        f"{endpoint['sent']} requests sent) in {capture.get('objects')} encrypted objects; readable by the team, "
        f"refused to the platform admin",
    )
    commits = ", ".join(c["sha"][:10] for c in endpoint["commits"])
    table.add_row(
        "endpoint lineage (upstream)",
        f"{len(endpoint['lineage'])} entities, down to the raw data and commits {commits}",
    )
    monitoring = summary["monitoring"]
    baseline = monitoring.get("baseline") or {}
    table.add_row(
        "baseline (train_headers)",
        f"{baseline.get('rows')} rows x {baseline.get('features')} features, {baseline.get('constraints')} constraints",
    )
    for name in ("clean", "drifted"):
        found = monitoring.get(name) or {}
        flagged = sorted({v["feature_name"] for v in found.get("violations", [])})
        table.add_row(f"violations ({name} traffic)", ", ".join(flagged) or "none")
    drifted = monitoring.get("drifted") or {}
    for violation in drifted.get("violations", []):
        table.add_row(
            f"  {violation['feature_name']}", f"{violation['constraint_check_type']}: {violation['description']}"
        )
    if drifted.get("report_file"):
        table.add_row("drift report", str(run.report_dir / drifted["report_file"]))
    table.add_row("guardrail", summary["guardrail"])
    table.add_row("guardrail (endpoints)", endpoint["guardrail"])
    table.add_row("detective control", f"{detective.get('status')} after {detective.get('seconds') or 0:.1f} s")
    audit = summary["audit"]
    table.add_row(
        "audit chain",
        f"{'OK' if audit['ok'] else 'FAILED ' + audit['problem']} — {audit['events']} events, "
        f"{audit['checkpoints']} signed checkpoints",
    )
    console.print(table)
