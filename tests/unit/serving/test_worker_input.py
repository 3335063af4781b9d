"""The worker's input checks: every refusal names the row and the column."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from strongroom.serving.inside.worker import BadInput, dense_csv, parse_csv, parse_json


@pytest.mark.parametrize(
    ("body", "row", "column", "says"),
    [
        (b"1,2,3", 1, 4, "row 1 has 3 columns"),
        (b"1,2,3,4\n1,2,3,4,5", 2, 5, "row 2 has 5 columns"),
        (b"1,2,abc,4", 1, 3, "row 1, column 3"),
        (b"1,2,3,4\n1,NaN,3,4", 2, 2, "not a finite number"),
        (b"1,2,3,-inf", 1, 4, "not a finite number"),
        (b"", None, None, "no rows"),
        (b"\xff\xfe", None, None, "not UTF-8"),
    ],
)
def test_bad_csv_names_row_and_column(body: bytes, row: int | None, column: int | None, says: str) -> None:
    assert dense_csv(body, 4) is None  # the fast path steps aside, so the careful parser names the cell
    with pytest.raises(BadInput) as raised:
        parse_csv(body, 4)
    assert (raised.value.row, raised.value.column) == (row, column)
    assert says in raised.value.detail


def test_csv_rows_parse_in_feature_order() -> None:
    assert parse_csv(b"1,2,3,4\r\n5.5, 6 ,7,8\n", 4) == [[1, 2, 3, 4], [5.5, 6, 7, 8]]


def test_the_dense_fast_path_reads_exactly_what_the_careful_parser_reads() -> None:
    body = (
        b"20000,2,2,1,24,2,2,-1,-1,-2,-2,3913,3102,689,0,0,0,0,689,0,0,0,0\r\n"
        b"0.1, 1e-3 ,-0,7e30,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19\n\n"
    )
    dense = dense_csv(body, 23)
    assert dense is not None and dense.dtype == np.float32 and dense.shape == (2, 23)
    assert np.array_equal(dense, np.asarray(parse_csv(body, 23), dtype=np.float32))
    assert dense_csv(b'"1",2', 2) is None  # quoted cells: the csv module's business


def test_json_rows() -> None:
    assert parse_json(b'{"instances": [[1, 2], [3, 4]]}', 2) == [[1, 2], [3, 4]]
    assert parse_json(b"[1, 2]", 2) == [[1, 2]]
    with pytest.raises(BadInput, match="row 1, column 2"):
        parse_json(b"[[1, true]]", 2)


def test_a_model_trained_on_named_columns_scores_headerless_rows(tmp_path: Path) -> None:
    """A booster trained on a DataFrame (or a CSV with a header) carries feature names; the rows an
    endpoint receives have none. They are scored in the model's feature order, as the bare booster
    scores the same frame, and explained under the model's names."""
    import numpy as np
    import pandas as pd
    import xgboost as xgb

    from strongroom.algorithms.xgboost.archive import archive_bytes
    from strongroom.serving.inside.worker import Model

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(300, 3)), columns=["LIMIT_BAL", "AGE", "PAY_0"])
    booster = xgb.train(
        {"objective": "binary:logistic", "subsample": 0.8, "max_depth": 3},
        xgb.DMatrix(frame, label=frame["PAY_0"] > 0),
        10,
    )
    archive = tmp_path / "model.tar.gz"
    archive.write_bytes(archive_bytes(bytes(booster.save_raw("ubj"))))
    model = Model(archive)
    rows = frame.head(5).to_numpy(dtype=np.float32).tolist()
    expected = booster.predict(xgb.DMatrix(frame.head(5).astype(np.float32)))
    assert np.allclose(model.predict(rows), expected, rtol=0, atol=1e-7)
    assert model.explain(rows)["feature_names"] == ["LIMIT_BAL", "AGE", "PAY_0"]
