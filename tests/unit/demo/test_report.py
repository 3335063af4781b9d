"""The demo's HTML summary: plots inline, notebooks linked, the commit at a platform URL, nothing cut."""

from __future__ import annotations

import base64
from pathlib import Path

from strongroom.demo.report import PLOTS, build_summary_html, commit_link, notebook_plots

SHA = "edc5a7de0734be8ebe29533a4c28f0063521157c"


def test_the_sandbox_remote_of_a_commit_becomes_the_platforms_url() -> None:
    entry = f"Commit: git+http://127.0.0.1:8750/git/risk/risk.git@{SHA}"
    link = commit_link(entry, "https://strongroom.example:8443/")
    assert link == {
        "sha": SHA,
        "url": f"https://strongroom.example:8443/api/v1/teams/risk/repositories/risk/commits/{SHA}",
        "cli": f"strongroom repos commit risk risk {SHA}",
    }
    assert "127.0.0.1:8750" not in link["url"]
    assert commit_link("DataSet: sr://risk-data/raw/rawdata.csv", "https://x") is None


def test_tagged_cells_give_their_figures() -> None:
    png = base64.b64encode(b"\x89PNG fake").decode()
    notebook = {
        "cells": [
            {
                "cell_type": "code",
                "metadata": {"tags": ["plot:shap-bar"]},
                "outputs": [{"output_type": "stream", "text": "top"}, {"data": {"image/png": png + "\n"}}],
            },
            {"cell_type": "code", "metadata": {}, "outputs": [{"data": {"image/png": "other"}}]},
            {"cell_type": "code", "metadata": {"tags": ["plot:importance"]}, "outputs": []},
        ]
    }
    assert notebook_plots(notebook) == {"shap-bar": png}


def test_the_summary_shows_every_plot_and_cuts_no_text() -> None:
    long_reason = "stopped by detective control enforce-network-isolation: " + "x" * 600 + " END"
    report = {
        "test_auc": "0.7973",
        "top_shap_features": ["PAY_0", "PAY_2"],
        "model": "sr://risk-models/secure-strongroom-demo/output/job/output/model.tar.gz",
        "hyperparameters": {"subsample": 0.8, "max_depth": 5},
        "commit": commit_link(f"Commit: git+http://127.0.0.1:8750/git/risk/risk.git@{SHA}", "https://h:1"),
        "guardrail": "jobs and models must run with network isolation <script>",
        "detective": {"status": "Stopped", "reason": long_reason},
        "audit": {"ok": True, "events": 300, "checkpoints": 1},
        "steps": [{"step": "a step " + "y" * 400 + " END", "outcome": "ok", "seconds": 1.0}],
    }
    plots = {name: base64.b64encode(name.encode()).decode() for name in PLOTS}
    page = build_summary_html(report, plots, {"01_DataScientist-Workflow": "01_DataScientist-Workflow.html"})
    assert all(f"data:image/png;base64,{value}" in page for value in plots.values())
    assert "href='01_DataScientist-Workflow.html'" in page
    assert f"https://h:1/api/v1/teams/risk/repositories/risk/commits/{SHA}" in page
    assert "x" * 600 + " END" in page and "y" * 400 + " END" in page
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "max_depth=5, subsample=0.8" in page


def test_the_summary_shows_the_endpoint_its_capture_the_violations_and_the_endpoint_lineage() -> None:
    other = "b" * 40
    report = {
        "endpoint": {
            "name": "cc-xgboost-1-endpoint",
            "p50_ms": 14.2,
            "requests": 1010,
            "sent": 1010,
            "capture_equals_sent": True,
            "guardrail": "alice CreateEndpoint: denied by guardrail-no-endpoint-by-data-scientist",
            "lineage": [
                "DataSet: sr://risk-data/secure-strongroom-demo/raw/rawdata.csv",
                f"Commit: https://h:1/api/v1/teams/risk/repositories/risk/commits/{SHA}",
                f"Commit: https://h:1/api/v1/teams/risk/repositories/risk/commits/{other}",
            ],
        },
        "capture": {"records": 1010, "objects": 7, "destination": "sr://risk-data/capture/", "admin_denied": "no"},
        "monitoring": {
            "baseline": {"rows": 24000, "features": 23, "constraints": 23, "uri": "sr://risk-models/b"},
            "clean": {"violations": []},
            "drifted": {
                "report_file": "drift-report.html",
                "violations": [
                    {"feature_name": "LIMIT_BAL", "constraint_check_type": "baseline_drift_check", "description": "d"},
                    {"feature_name": "<EDUCATION>", "constraint_check_type": "non_negative_check", "description": "n"},
                ],
            },
        },
    }
    page = build_summary_html(report)
    assert "cc-xgboost-1-endpoint: p50 14.2 ms over\n1010 requests" in page
    assert "clean traffic: none; drifted traffic:\n&lt;EDUCATION&gt;, LIMIT_BAL" in page  # escaped, sorted
    assert "<td>drifted</td><td>LIMIT_BAL</td><td>baseline_drift_check</td>" in page
    assert "href='drift-report.html'" in page
    assert f"commits/{SHA}</li>" in page and f"commits/{other}</li>" in page
    assert "24000 rows x 23 features" in page and "denied by guardrail-no-endpoint-by-data-scientist" in page


def test_a_line_the_kernel_flushed_in_two_parts_renders_as_one(tmp_path: Path) -> None:
    """ipykernel flushes stdout on a timer; a print may reach the notebook as two stream outputs."""
    import nbformat

    from strongroom.demo.report import render_notebook_html

    cell = nbformat.v4.new_code_cell('print("audit chain:", "OK")')
    cell.outputs = [
        nbformat.v4.new_output("stream", name="stdout", text="audit chain:"),
        nbformat.v4.new_output("stream", name="stdout", text=" OK\n381 events\n"),
    ]
    notebook = tmp_path / "00_PlatformAdmin-Workflow.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[cell]), str(notebook))

    html = render_notebook_html(notebook).read_text()

    assert "<pre>audit chain: OK\n381 events\n</pre>" in html
