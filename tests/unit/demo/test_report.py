"""The demo's HTML summary: plots inline, notebooks linked, the commit at a platform URL, nothing cut."""

from __future__ import annotations

import base64

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
