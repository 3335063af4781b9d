"""The synthetic credit-default generator and the UCI loader."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

from strongroom.core.errors import InvalidInput
from strongroom.demo.data import (
    BILL_AMOUNTS,
    COLUMNS,
    FEATURES,
    LABEL,
    PAY_AMOUNTS,
    PAY_STATUS,
    credit_default,
    load_uci,
)


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return credit_default()


def test_schema_is_the_uci_schema(table: pd.DataFrame) -> None:
    assert list(table.columns) == COLUMNS
    assert len(FEATURES) == 23
    assert table.shape == (30000, 24)
    assert all(dtype == np.int64 for dtype in table.dtypes)
    assert table.index.name == "ID"
    assert table.index[0] == 1 and table.index[-1] == 30000


def test_values_stay_in_the_documented_ranges(table: pd.DataFrame) -> None:
    assert set(table["SEX"].unique()) == {1, 2}
    assert set(table["EDUCATION"].unique()) <= set(range(7))
    assert table["EDUCATION"].isin([0, 5, 6]).mean() < 0.03  # rare codes, as in the real file
    assert table["EDUCATION"].isin([1, 2, 3]).mean() > 0.95
    assert set(table["MARRIAGE"].unique()) <= {0, 1, 2, 3}
    assert table["MARRIAGE"].isin([1, 2]).mean() > 0.95
    assert table["AGE"].between(21, 79).all()
    assert table["LIMIT_BAL"].between(10_000, 1_000_000).all()
    assert (table["LIMIT_BAL"] % 10_000 == 0).all()
    for column in PAY_STATUS:
        assert table[column].between(-2, 8).all()
        assert set(table[column].unique()) >= {-2, -1, 0, 2}
    assert (table[PAY_AMOUNTS] >= 0).all().all()
    assert (table[BILL_AMOUNTS] < 0).any().any()  # overpayments, like the real data
    assert set(table[LABEL].unique()) == {0, 1}


def test_bills_are_correlated_month_to_month(table: pd.DataFrame) -> None:
    for recent, older in itertools.pairwise(BILL_AMOUNTS):
        assert table[recent].corr(table[older]) > 0.75


def test_about_22_percent_default(table: pd.DataFrame) -> None:
    assert 0.20 <= table[LABEL].mean() <= 0.245


def test_recent_delay_raises_the_default_rate(table: pd.DataFrame) -> None:
    rates = table.groupby("PAY_0")[LABEL].mean()
    assert rates[2] > 2 * rates[0]
    assert rates[1] > rates[0]


def test_xgboost_learns_a_realistic_signal(table: pd.DataFrame) -> None:
    X, y = table[FEATURES], table[LABEL]
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=0, stratify=y)
    params = {"objective": "binary:logistic", "max_depth": 5, "eta": 0.2, "gamma": 4, "min_child_weight": 6}
    booster = xgb.train(params, xgb.DMatrix(X_train, label=y_train), num_boost_round=60)
    auc = roc_auc_score(y_test, booster.predict(xgb.DMatrix(X_test)))
    assert 0.75 < auc < 0.85


def test_same_seed_same_table_other_seed_other_table() -> None:
    pd.testing.assert_frame_equal(credit_default(2000, seed=7), credit_default(2000, seed=7))
    assert not credit_default(2000, seed=7).equals(credit_default(2000, seed=8))


@pytest.mark.parametrize("n", [0, -1, 2.5, "10", True])
def test_bad_row_count_is_refused(n: object) -> None:
    with pytest.raises(InvalidInput) as err:
        credit_default(n)  # type: ignore[arg-type]
    assert err.value.field == "n"


def _uci_rows(table: pd.DataFrame) -> list[list[object]]:
    """The real file's layout: an X1..X23/Y row, then ID + names, then the rows."""
    first = ["", *[f"X{i}" for i in range(1, 24)], "Y"]
    second = ["ID", *COLUMNS]
    rows = [[int(i), *map(int, row)] for i, row in zip(table.index, table.to_numpy(), strict=True)]
    return [first, second, *rows]


def test_load_uci_reads_the_original_xls_layout(tmp_path: Path) -> None:
    import xlwt

    table = credit_default(40, seed=3)
    book = xlwt.Workbook()
    sheet = book.add_sheet("Data")
    for r, row in enumerate(_uci_rows(table)):
        for c, value in enumerate(row):
            sheet.write(r, c, value)
    path = tmp_path / "default of credit card clients.xls"
    book.save(str(path))
    pd.testing.assert_frame_equal(load_uci(path), table)


def test_load_uci_reads_csv_with_or_without_the_extra_header(tmp_path: Path) -> None:
    table = credit_default(30, seed=4)
    rows = _uci_rows(table)
    with_extra = tmp_path / "with.csv"
    with_extra.write_text("\n".join(",".join(map(str, r)) for r in rows) + "\n")
    pd.testing.assert_frame_equal(load_uci(with_extra), table)

    # A common export: no extra row, PAY_1 instead of PAY_0, dotted label name.
    renamed = ["ID", *COLUMNS]
    renamed[renamed.index("PAY_0")] = "PAY_1"
    renamed[-1] = "default.payment.next.month"
    plain = tmp_path / "plain.csv"
    plain.write_text("\n".join(",".join(map(str, r)) for r in [renamed, *rows[2:]]) + "\n")
    pd.testing.assert_frame_equal(load_uci(plain), table)


def test_load_uci_says_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="no file"):
        load_uci(tmp_path / "missing.xls")
    other = tmp_path / "data.json"
    other.write_text("{}")
    with pytest.raises(InvalidInput, match=r"neither \.xls nor \.csv"):
        load_uci(other)
    short = tmp_path / "short.csv"
    short.write_text("ID,LIMIT_BAL,SEX\n1,20000,2\n")
    with pytest.raises(InvalidInput, match="lacks the UCI column") as err:
        load_uci(short)
    assert err.value.field == "path"
    unrelated = tmp_path / "unrelated.csv"
    unrelated.write_text("a,b\n1,2\n")
    with pytest.raises(InvalidInput, match="LIMIT_BAL"):
        load_uci(unrelated)
