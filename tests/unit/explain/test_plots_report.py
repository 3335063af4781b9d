"""PNG plots, the self-contained HTML report and analysis.json."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pandas as pd
import pytest
import xgboost as xgb
from PIL import Image

from strongroom.core.errors import InvalidInput
from strongroom.demo.data import FEATURES
from strongroom.explain import (
    Explainer,
    Explanation,
    beeswarm_png,
    build_report,
    dependence_png,
    explain,
    explain_stream,
    feature_attribution_drift,
    importance_png,
    summary_bar_png,
    write_analysis,
    xgboost_importance,
)


@pytest.fixture(scope="module")
def explanation(booster: xgb.Booster, rows: pd.DataFrame) -> Explanation:
    return explain(booster, rows.head(500))


def assert_png(data: bytes, min_width: int = 300) -> None:
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    image = Image.open(io.BytesIO(data))
    image.verify()
    image = Image.open(io.BytesIO(data)).convert("RGB")
    assert image.width >= min_width and image.height >= 200
    assert len(image.getcolors(maxcolors=1 << 16) or range(1 << 16)) > 10  # something was drawn


def test_plots_are_valid_pngs(booster: xgb.Booster, explanation: Explanation) -> None:
    import matplotlib.pyplot as plt

    assert_png(summary_bar_png(explanation))
    assert_png(summary_bar_png(explanation.to_global(), max_display=5))
    assert_png(beeswarm_png(explanation))
    assert_png(dependence_png(explanation, "PAY_0"))
    assert_png(dependence_png(explanation, "LIMIT_BAL", interaction=None))
    assert_png(dependence_png(explanation, "AGE", interaction="PAY_0"))
    assert_png(importance_png(xgboost_importance(booster), "gain"))
    assert_png(importance_png(explanation.global_importance(), "mean_abs_shap"))
    assert plt.get_fignums() == []  # nothing left in pyplot: no window could ever open


def test_plot_errors_say_what_is_missing(explanation: Explanation, booster: xgb.Booster) -> None:
    with pytest.raises(InvalidInput, match="unknown feature"):
        dependence_png(explanation, "INCOME")
    with pytest.raises(InvalidInput, match="no importance column"):
        importance_png(xgboost_importance(booster), "entropy")
    without_rows = explanation.to_global().__class__(**{**explanation.to_global().__dict__, "sample": None})
    with pytest.raises(InvalidInput, match="needs explained rows"):
        beeswarm_png(without_rows)


def test_the_report_is_one_self_contained_file(booster: xgb.Booster, explanation: Explanation) -> None:
    document = build_report(
        explanation.to_global(),
        title="Credit default <model>",
        importance=xgboost_importance(booster),
        details={"Dataset": "<script>alert(1)</script>"},
    )
    assert document.startswith("<!DOCTYPE html>")
    assert "<script" not in document.lower()  # nothing runs, even what a caller passed in
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in document
    assert "Credit default &lt;model&gt;" in document
    assert "Content-Security-Policy" in document
    sources = re.findall(r'(?:src|href)="([^"]*)"', document)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    text = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", document).replace("http-equiv", "")
    assert "http" not in text and "//" not in text  # no link to anything outside the file
    # 3 summaries + importance + 3 dependence plots, and one table row per feature
    assert document.count("<img ") == 6
    table = re.search(r'<table id="analysis-table">(.*?)</table>', document, re.S)
    assert table is not None and table.group(1).count("<tr>") == 1 + len(FEATURES)
    assert 'id="method-kind">exact<' in document


def test_approximate_reports_say_so(booster: xgb.Booster, rows: pd.DataFrame) -> None:
    approximate = explain(booster, rows.head(4), method="kernel", background=rows.tail(20), max_evals=100)
    document = build_report(approximate.to_global(), figures=[])
    assert 'id="method-kind">approximate<' in document
    assert "estimated by sampling" in document


def test_analysis_json_and_write_outputs(booster: xgb.Booster, rows: pd.DataFrame, tmp_path: Path) -> None:
    source = tmp_path / "rows.csv"
    rows.to_csv(source, index=False)
    explainer = Explainer(booster)
    overview = explainer.explain_file(source, sample_rows=200)
    paths = explainer.write_outputs(overview, tmp_path / "out", details={"Model": "credit-xgb"})
    analysis = json.loads(paths["analysis"].read_text())
    shap_values = analysis["explanations"]["tree_shap"]["label0"]["global_shap_values"]
    assert list(shap_values) == FEATURES
    assert shap_values["PAY_0"] == pytest.approx(overview.mean_abs["PAY_0"])
    assert analysis["explanations"]["tree_shap"]["label0"]["expected_value"] == pytest.approx(overview.base_value)
    assert analysis["row_count"] == len(rows)
    assert analysis["method"] == {"name": "tree_shap", "exact": True, "engine": "xgboost pred_contribs"}
    assert analysis["baseline"] == pytest.approx(overview.base_value)
    # The monitor reads it back: the same data is no drift.
    assert feature_attribution_drift(analysis, analysis).score == pytest.approx(1.0)
    html = paths["report"].read_text()
    assert "credit-xgb" in html and html.count("<img ") == 6
    buffer = io.BytesIO()
    write_analysis(explain_stream(booster, source, sample_rows=0), buffer)
    assert json.loads(buffer.getvalue())["row_count"] == len(rows)
