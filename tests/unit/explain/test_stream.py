"""Explaining a file in chunks, and across Dask workers, gives the in-memory answer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from strongroom.core.errors import InvalidInput
from strongroom.demo.data import FEATURES, LABEL, credit_default
from strongroom.explain import Explainer, explain, explain_stream
from strongroom.explain.model import booster_bytes, name_features
from strongroom.explain.stream import Partial, explain_part_task, split


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return credit_default(5000, seed=11)


@pytest.fixture(scope="module")
def files(table: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("data")
    paths = {"csv": folder / "rows.csv", "parquet": folder / "rows.parquet", "gz": folder / "rows.csv.gz"}
    table.to_csv(paths["csv"], index=False)
    table.to_csv(paths["gz"], index=False)
    table.to_parquet(paths["parquet"], row_group_size=700)
    return paths


def assert_same_global(streamed: object, expected: object) -> None:
    from strongroom.explain import GlobalExplanation

    assert isinstance(streamed, GlobalExplanation) and isinstance(expected, GlobalExplanation)
    assert streamed.row_count == expected.row_count
    np.testing.assert_allclose(streamed.mean_abs, expected.mean_abs, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(streamed.mean, expected.mean, rtol=1e-5, atol=1e-7)
    assert streamed.base_value == pytest.approx(expected.base_value)
    assert streamed.exact


@pytest.mark.parametrize("kind", ["csv", "parquet", "gz"])
def test_streaming_a_file_equals_explaining_it_in_memory(
    booster: xgb.Booster, table: pd.DataFrame, files: dict[str, Path], kind: str
) -> None:
    expected = explain(booster, table).to_global()
    streamed = explain_stream(booster, files[kind], chunk_rows=777, sample_rows=300)
    assert_same_global(streamed, expected)
    assert streamed.sample is not None and len(streamed.sample) == 300
    assert streamed.sample.data is not None and list(streamed.sample.data.columns) == FEATURES


def test_per_row_contributions_can_be_streamed_out(
    booster: xgb.Booster, table: pd.DataFrame, files: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "contributions.parquet"
    Explainer(booster).explain_file(files["csv"], chunk_rows=1000, contributions_to=out)
    written = pd.read_parquet(out)
    assert list(written.columns) == [*FEATURES, "bias"]
    exact = explain(booster, table).contributions()
    np.testing.assert_allclose(written.to_numpy(), exact.to_numpy(), atol=1e-5)


@pytest.mark.parametrize("header", [True, False], ids=["header", "headerless"])
def test_csv_parts_cover_every_line_exactly_once(
    booster: xgb.Booster, table: pd.DataFrame, tmp_path: Path, header: bool
) -> None:
    path = tmp_path / "small.csv"
    table.head(150)[FEATURES].to_csv(path, index=False, header=header)
    whole = explain_stream(booster, path, sample_rows=0)
    size = path.stat().st_size
    for parts in (1, 3, 7, size // 40):  # the last cuts the file into pieces shorter than a line
        pieces = split(str(path), parts)
        assert pieces[0].start == 0 and pieces[-1].end == size
        merged = Partial.empty(FEATURES)
        for piece in pieces:
            merged.merge(explain_part_task(piece, booster_bytes(booster), FEATURES, 50, 0, 0), 0)
        assert merged.count == 150
        np.testing.assert_allclose(merged.result().mean_abs, whole.mean_abs, rtol=1e-6)


def test_bad_sources_say_what_is_wrong(booster: xgb.Booster, table: pd.DataFrame, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="neither CSV"):
        explain_stream(booster, tmp_path / "rows.json")
    short = tmp_path / "short.csv"
    table.drop(columns=["PAY_0", "AGE"]).head(10).to_csv(short, index=False)
    with pytest.raises(InvalidInput, match="lacks the model feature") as err:
        explain_stream(booster, short)
    assert err.value.field == "source"
    with pytest.raises(InvalidInput, match="could not read"):
        explain_stream(booster, tmp_path / "missing.csv")
    empty = tmp_path / "empty.csv"
    table.head(0).to_csv(empty, index=False)
    with pytest.raises(InvalidInput, match="no rows"):
        explain_stream(booster, empty)


def _headerless(table: pd.DataFrame, folder: Path, with_label: bool) -> Path:
    path = folder / ("label-first.csv" if with_label else "features.csv")
    frame = table[[LABEL, *FEATURES]] if with_label else table[FEATURES]
    frame.to_csv(path, index=False, header=False)  # the workshop's train.csv / test.csv shape
    return path


@pytest.mark.parametrize("with_label", [True, False], ids=["label-first", "features-only"])
def test_a_headerless_csv_is_explained_by_position_with_names_from_the_model_or_the_user(
    booster: xgb.Booster, table: pd.DataFrame, tmp_path: Path, with_label: bool
) -> None:
    path = _headerless(table, tmp_path, with_label)
    expected = explain(booster, table).to_global()
    # The model names its features: columns are matched by position.
    assert_same_global(explain_stream(booster, path, chunk_rows=999), expected)
    # A model trained on headerless data names none: the user gives the names.
    nameless = xgb.Booster(model_file=bytearray(booster_bytes(booster)))
    nameless.feature_names = None
    with pytest.raises(InvalidInput, match="the model has no feature names") as err:
        explain_stream(nameless, path)
    assert err.value.field == "feature_names"
    named = explain_stream(name_features(nameless, ",".join(FEATURES)), path, chunk_rows=999)
    assert_same_global(named, expected)
    assert list(named.mean_abs.index) == FEATURES


def test_a_headerless_csv_with_the_wrong_width_or_names_of_the_wrong_count_are_refused(
    booster: xgb.Booster, table: pd.DataFrame, tmp_path: Path
) -> None:
    path = tmp_path / "narrow.csv"
    table[FEATURES[:5]].to_csv(path, index=False, header=False)
    with pytest.raises(InvalidInput, match=f"has no header and 5 columns; the model has {len(FEATURES)} features"):
        explain_stream(booster, path)
    nameless = xgb.Booster(model_file=bytearray(booster_bytes(booster)))
    nameless.feature_names = None
    with pytest.raises(InvalidInput, match=f"must be {len(FEATURES)} distinct names"):
        name_features(nameless, ["A", "B"])
    with pytest.raises(InvalidInput, match="already names its features"):
        name_features(booster, [f"x{i}" for i in range(len(FEATURES))])
