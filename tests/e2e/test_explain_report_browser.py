"""The explainability report renders in a real browser: headless Chromium, no network."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb
from PIL import Image

from strongroom.demo.data import FEATURES, LABEL, credit_default
from strongroom.explain import Explainer
from tests.e2e.browser import chromium, needs_chromium

pytestmark = needs_chromium


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("report")
    train = credit_default(4000, seed=1)
    params = {"objective": "binary:logistic", "max_depth": 4, "eta": 0.2, "nthread": 2}
    booster = xgb.train(params, xgb.DMatrix(train[FEATURES], label=train[LABEL]), num_boost_round=30)
    explainer = Explainer(booster)
    paths = explainer.write_outputs(explainer.explain(credit_default(800, seed=2)), folder)
    return paths["report"]


@pytest.mark.slow
def test_the_report_shows_its_table_and_plots(report: Path, tmp_path: Path) -> None:
    dom = chromium(tmp_path, "--dump-dom", report.as_uri()).stdout.decode()
    table = re.search(r'<table id="analysis-table">(.*?)</table>', dom, re.S)
    assert table is not None
    assert table.group(1).count("<tr>") == 1 + len(FEATURES)
    assert ">PAY_0<" in table.group(1)
    assert len(re.findall(r'<img alt="[^"]+" src="data:image/png;base64,', dom)) == 6

    shot = tmp_path / "shot.png"
    chromium(tmp_path, "--window-size=1100,2600", "--hide-scrollbars", f"--screenshot={shot}", report.as_uri())
    image = Image.open(io.BytesIO(shot.read_bytes())).convert("RGB")
    assert image.size == (1100, 2600)
    # shap's bar and beeswarm plots draw in its red (#ff0051); only rendered images put it on screen.
    pixels = np.asarray(image).astype(int)
    r, g, b = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    assert int(((r > 230) & (g < 40) & (b > 40) & (b < 120)).sum()) > 5000
