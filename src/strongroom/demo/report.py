"""The demo's report: one self-contained HTML summary (its plots inline), and the executed notebooks
rendered as HTML beside it."""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

# The figures the summary shows, by the ``plot:<name>`` tag of the notebook cell that draws them.
PLOTS = {
    "label-balance": "Label balance",
    "correlations": "Correlations",
    "importance": "Feature importance (weight)",
    "shap-bar": "SHAP: mean |value| per feature (full training set)",
    "shap-beeswarm": "SHAP: every training row (beeswarm)",
    "drift": "Drift: distance to the baseline per feature, clean vs drifted traffic",
}
_SANDBOX_COMMIT = re.compile(
    r"^Commit: git\+\S*/git/(?P<team>[^/]+)/(?P<repo>[^/@]+?)(?:\.git)?@(?P<sha>[0-9a-f]{7,64})$"
)


def _e(value: Any) -> str:
    return html.escape(str(value))


def notebook_plots(notebook: dict[str, Any]) -> dict[str, str]:
    """The base64 PNG each ``plot:<name>`` tagged cell displayed last, by name."""
    plots: dict[str, str] = {}
    for cell in notebook.get("cells", []):
        names = [t.split(":", 1)[1] for t in cell.get("metadata", {}).get("tags", []) if t.startswith("plot:")]
        images = [o["data"]["image/png"] for o in cell.get("outputs", []) if "image/png" in o.get("data", {})]
        for name in names:
            if images:
                image = images[-1]
                plots[name] = "".join(image) if isinstance(image, list) else str(image).strip()
    return plots


def render_notebook_html(notebook_path: Path) -> Path:
    """Render an executed notebook as HTML next to it (nbconvert's lab template); return its path."""
    import nbformat
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import CoalesceStreamsPreprocessor

    exporter = HTMLExporter(template_name="lab")
    # A kernel flushes a cell's printed text on a timer: one line may arrive in two stream
    # outputs ("audit chain:" then " OK"), which would render as two boxes. Joined back here.
    exporter.register_preprocessor(CoalesceStreamsPreprocessor, enabled=True)
    body, _ = exporter.from_notebook_node(nbformat.read(str(notebook_path), as_version=4))
    target = notebook_path.with_suffix(".html")
    target.write_text(body)
    return target


def commit_link(entry: str, platform_url: str) -> dict[str, str] | None:
    """Where to open the commit a lineage ``Commit: git+<sandbox remote>@<sha>`` entry names: its
    platform URL and the CLI command (``sha``, ``url``, ``cli``); None for any other entry.

    Inside a notebook the remote is the sandbox's own forwarder (``http://127.0.0.1:8750``), which no
    one outside can open; the platform serves the same commit at its commit lookup API.
    """
    match = _SANDBOX_COMMIT.match(entry)
    if not match:
        return None
    team, repo, sha = match["team"], match["repo"], match["sha"]
    return {
        "sha": sha,
        "url": f"{platform_url.rstrip('/')}/api/v1/teams/{team}/repositories/{repo}/commits/{sha}",
        "cli": f"strongroom repos commit {team} {repo} {sha}",
    }


def build_summary_html(
    report: dict[str, Any], plots: dict[str, str] | None = None, notebooks: dict[str, str] | None = None
) -> str:
    """The summary page. ``plots``: base64 PNGs by :data:`PLOTS` name; ``notebooks``: title -> the
    relative link of its HTML rendering. Nothing is cut: long values wrap."""
    detective = report.get("detective", {})
    audit = report.get("audit", {})
    steps = "".join(
        f"<tr><td>{_e(s['step'])}</td><td class='{'ok' if s['outcome'] == 'ok' else 'bad'}'>{_e(s['outcome'])}</td>"
        f"<td>{_e(s['seconds'])}&nbsp;s</td></tr>"
        for s in report.get("steps", [])
    )
    lineage = "".join(f"<li>{_e(item)}</li>" for item in report.get("lineage", []))
    commit = report.get("commit") or {}
    commit_row = (
        f"<tr><th>Commit</th><td id='commit'><a href='{_e(commit['url'])}'>{_e(commit['url'])}</a><br>"
        f"(an authenticated API URL: open it with your token, or run "
        f"<code>{_e(commit['cli'])}</code>)</td></tr>"
        if commit.get("url")
        else ""
    )
    figures = "".join(
        f"<figure><figcaption>{_e(title)}</figcaption>"
        f"<img alt='{_e(title)}' src='data:image/png;base64,{(plots or {})[name]}'></figure>"
        for name, title in PLOTS.items()
        if name in (plots or {})
    )
    links = "".join(f"<li><a href='{_e(href)}'>{_e(title)}</a></li>" for title, href in (notebooks or {}).items())
    endpoint, capture = report.get("endpoint") or {}, report.get("capture") or {}
    monitoring = report.get("monitoring") or {}
    baseline = monitoring.get("baseline") or {}
    drifted, clean = monitoring.get("drifted") or {}, monitoring.get("clean") or {}
    if drifted.get("report_file"):
        links += f"<li><a href='{_e(drifted['report_file'])}'>Drift report (the drifted traffic's execution)</a></li>"
    violations = "".join(
        f"<tr><td>{_e(name)}</td><td>{_e(v.get('feature_name'))}</td><td>{_e(v.get('constraint_check_type'))}</td>"
        f"<td>{_e(v.get('description'))}</td></tr>"
        for name, check in (("clean", clean), ("drifted", drifted))
        for v in check.get("violations", [])
    )
    flagged = {
        name: ", ".join(sorted({v.get("feature_name", "") for v in check.get("violations", [])})) or "none"
        for name, check in (("clean", clean), ("drifted", drifted))
    }
    endpoint_lineage = "".join(f"<li>{_e(item)}</li>" for item in endpoint.get("lineage", []))
    hyperparameters = _e(", ".join(f"{k}={v}" for k, v in sorted(report.get("hyperparameters", {}).items())))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>Strongroom demo summary</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:80em}}td,th{{padding:.3em .6em;text-align:left;
vertical-align:top;overflow-wrap:anywhere}}tr:nth-child(even){{background:#f4f4f4}}.ok{{color:#176b17}}
.bad{{color:#b00020}}figure{{display:inline-block;margin:.5em;vertical-align:top}}
figure img{{max-width:38em;border:1px solid #ddd}}figcaption{{font-weight:600}}</style>
</head><body>
<h1>Strongroom demo: the secure data-science workshop</h1>
<table>
<tr><th>Test AUC</th><td id="auc">{_e(report.get("test_auc"))}</td></tr>
<tr><th>Top SHAP features</th><td id="top">{_e(", ".join(report.get("top_shap_features", [])))}</td></tr>
<tr><th>Model</th><td id="model">{_e(report.get("model"))} (job {_e(report.get("training_job"))})</td></tr>
<tr><th>Hyperparameters</th><td id="hyperparameters">{hyperparameters}</td></tr>
{commit_row}
<tr><th>Endpoint</th><td id="endpoint">{_e(endpoint.get("name"))}: p50 {_e(endpoint.get("p50_ms"))} ms over
{_e(endpoint.get("requests"))} requests (from the MLOps engineer's notebook)</td></tr>
<tr><th>Captured records</th><td id="capture">{_e(capture.get("records"))} records in {_e(capture.get("objects"))}
encrypted objects under {_e(capture.get("destination"))}; exactly the {_e(endpoint.get("sent"))} requests sent:
{_e(endpoint.get("capture_equals_sent"))}; refused to the platform admin: {_e(capture.get("admin_denied"))}</td></tr>
<tr><th>Baseline</th><td id="baseline">{_e(baseline.get("rows"))} rows x {_e(baseline.get("features"))} features,
{_e(baseline.get("constraints"))} constraints ({_e(baseline.get("uri"))})</td></tr>
<tr><th>Violations</th><td id="flagged">clean traffic: {_e(flagged["clean"])}; drifted traffic:
{_e(flagged["drifted"])}</td></tr>
<tr><th>Guardrail</th><td id="guardrail">{_e(report.get("guardrail"))}</td></tr>
<tr><th>Guardrail (endpoints)</th><td id="endpoint-guardrail">{_e(endpoint.get("guardrail"))}</td></tr>
<tr><th>Detective control</th><td id="detective">{_e(detective.get("status"))}: {_e(detective.get("reason"))}</td></tr>
<tr><th>Audit chain</th><td id="audit">{"OK" if audit.get("ok") else "FAILED " + _e(audit.get("problem"))}:
{_e(audit.get("events"))} events, {_e(audit.get("checkpoints"))} signed checkpoints</td></tr>
</table>
<h2>The executed notebooks</h2><ul id="notebooks">{links}</ul>
<h2>Plots</h2><div id="plots">{figures}</div>
<h2>Violations</h2>
<table id="violations"><tr><th>traffic</th><th>feature</th><th>check</th><th>description</th></tr>{violations}</table>
<h2>Lineage of the model (upstream)</h2><ul id="lineage">{lineage}</ul>
<h2>Lineage of the endpoint (upstream, down to both commits)</h2><ul id="endpoint-lineage">{endpoint_lineage}</ul>
<h2>Steps</h2><table id="steps"><tr><th>step</th><th>outcome</th><th>time</th></tr>{steps}</table>
</body></html>
"""
