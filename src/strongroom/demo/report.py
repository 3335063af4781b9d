"""The demo's HTML summary: one self-contained page."""

from __future__ import annotations

import html
from typing import Any


def _e(value: Any) -> str:
    return html.escape(str(value))


def build_summary_html(report: dict[str, Any]) -> str:
    detective = report.get("detective", {})
    audit = report.get("audit", {})
    steps = "".join(
        f"<tr><td>{_e(s['step'])}</td><td class='{'ok' if s['outcome'] == 'ok' else 'bad'}'>{_e(s['outcome'])}</td>"
        f"<td>{_e(s['seconds'])} s</td></tr>"
        for s in report.get("steps", [])
    )
    lineage = "".join(f"<li>{_e(item)}</li>" for item in report.get("lineage", []))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>Strongroom demo summary</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:70em}}td,th{{padding:.3em .6em;text-align:left;
vertical-align:top}}tr:nth-child(even){{background:#f4f4f4}}.ok{{color:#176b17}}.bad{{color:#b00020}}</style>
</head><body>
<h1>Strongroom demo: the secure data-science workshop</h1>
<table>
<tr><th>Test AUC</th><td id="auc">{_e(report.get("test_auc"))}</td></tr>
<tr><th>Top SHAP features</th><td id="top">{_e(", ".join(report.get("top_shap_features", [])))}</td></tr>
<tr><th>Model</th><td>{_e(report.get("model"))} (job {_e(report.get("training_job"))})</td></tr>
<tr><th>Guardrail</th><td>{_e(report.get("guardrail"))}</td></tr>
<tr><th>Detective control</th><td>{_e(detective.get("status"))}: {_e(detective.get("reason"))}</td></tr>
<tr><th>Audit chain</th><td id="audit">{"OK" if audit.get("ok") else "FAILED " + _e(audit.get("problem"))}:
{_e(audit.get("events"))} events, {_e(audit.get("checkpoints"))} signed checkpoints</td></tr>
</table>
<h2>Lineage of the model (upstream)</h2><ul>{lineage}</ul>
<h2>Steps</h2><table><tr><th>step</th><th>outcome</th><th>time</th></tr>{steps}</table>
</body></html>
"""
