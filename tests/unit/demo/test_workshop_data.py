"""`strongroom demo --data` reads the workshop's data as users have it: the UCI file, a headed CSV
export, or the workshop's preprocessed headerless train_data.csv/test_data.csv pair."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import make_column_transformer
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from strongroom.core.errors import InvalidInput
from strongroom.demo.data import COLUMNS, LABEL, WORKSHOP_COLUMNS, credit_default, load_data, load_uci

SCALED = ["PAY_AMT1", "BILL_AMT1"]


def _workshop_pair(folder: Path, table: pd.DataFrame) -> tuple[Path, Path, pd.DataFrame, pd.DataFrame]:
    """What the workshop's notebook 01 writes: headerless, Label first, the two scaled columns next."""
    df = table.reset_index(drop=True).rename(columns={LABEL: "Label"})
    X, y = df.drop(columns="Label"), df["Label"]
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=0)
    preprocess = make_column_transformer(
        (StandardScaler(), ["PAY_AMT1"]), (MinMaxScaler(), ["BILL_AMT1"]), remainder="passthrough"
    )
    columns = ["Label", *WORKSHOP_COLUMNS[1:]]
    train = pd.concat(
        [y_train.reset_index(drop=True), pd.DataFrame(preprocess.fit_transform(X_train), columns=columns[1:])], axis=1
    )
    test = pd.concat(
        [y_test.reset_index(drop=True), pd.DataFrame(preprocess.transform(X_test), columns=columns[1:])], axis=1
    )
    folder.mkdir(parents=True, exist_ok=True)
    train.to_csv(folder / "train_data.csv", header=False, index=False)
    test.to_csv(folder / "test_data.csv", header=False, index=False)
    return folder / "train_data.csv", folder / "test_data.csv", train, test


def test_the_preprocessed_pair_comes_back_in_the_uci_schema(tmp_path: Path) -> None:
    table = credit_default(500, seed=7)
    train_csv, test_csv, train, test = _workshop_pair(tmp_path, table)
    assert not train_csv.read_text().startswith("Label")  # really headerless, as the workshop writes it

    loaded = load_data(train_csv, test_csv)
    assert list(loaded.columns) == COLUMNS and len(loaded) == 500 == len(train) + len(test)
    assert loaded.index.name == "ID" and loaded.index[0] == 1
    both = pd.concat([train, test], ignore_index=True)
    assert (loaded[LABEL].to_numpy() == both["Label"].to_numpy()).all()
    for column in COLUMNS[:-1]:
        np.testing.assert_allclose(loaded[column].to_numpy(), both[column].to_numpy(), err_msg=column)
    unscaled = [c for c in COLUMNS if c not in SCALED]
    assert all(loaded[c].dtype == np.int64 for c in unscaled)
    assert all(loaded[c].dtype == np.float64 for c in SCALED)  # scaled values are kept, not cut to integers
    # The rows are the user's rows: every unscaled row of the original table is there.
    original = {tuple(r) for r in table.reset_index(drop=True)[unscaled].to_numpy()}
    assert {tuple(r) for r in loaded[unscaled].to_numpy()} == original


def test_a_folder_holding_the_pair_reads_the_same(tmp_path: Path) -> None:
    train_csv, test_csv, _, _ = _workshop_pair(tmp_path / "workshop", credit_default(200, seed=8))
    pd.testing.assert_frame_equal(load_data(tmp_path / "workshop"), load_data(train_csv, test_csv))


def test_what_the_demo_uploads_reads_back_unchanged(tmp_path: Path) -> None:
    # The demo uploads one headed CSV (to_csv of what load_data gave); the notebook reads it with load_uci.
    train_csv, test_csv, _, _ = _workshop_pair(tmp_path, credit_default(300, seed=9))
    pair = load_data(train_csv, test_csv)
    canonical = tmp_path / "credit_default.csv"
    canonical.write_text(pair.to_csv())
    pd.testing.assert_frame_equal(load_uci(canonical), pair)

    table = credit_default(50, seed=10)
    headed = tmp_path / "export.csv"
    headed.write_text(table.to_csv())
    pd.testing.assert_frame_equal(load_data(headed), table)
    folder = tmp_path / "one-file"
    folder.mkdir()
    (folder / "export.csv").write_text(table.to_csv())
    pd.testing.assert_frame_equal(load_data(folder), table)


def test_wrong_inputs_say_what_to_give(tmp_path: Path) -> None:
    train_csv, test_csv, _, _ = _workshop_pair(tmp_path, credit_default(100, seed=11))
    with pytest.raises(InvalidInput, match=r"give its test_data\.csv too"):
        load_data(train_csv)  # the headerless training file alone
    headed = tmp_path / "headed.csv"
    headed.write_text(credit_default(20, seed=1).to_csv())
    with pytest.raises(InvalidInput, match="headerless numeric CSV") as err:
        load_data(headed, test_csv)
    assert err.value.field == "train"
    narrow = tmp_path / "narrow.csv"
    narrow.write_text("0,1.5,2\n1,0.5,3\n")
    with pytest.raises(InvalidInput, match="has 3 columns"):
        load_data(train_csv, narrow)
    with pytest.raises(InvalidInput, match="no test file"):
        load_data(train_csv, tmp_path / "missing.csv")
    empty = tmp_path / "empty-folder"
    empty.mkdir()
    with pytest.raises(InvalidInput, match="holds 0"):
        load_data(empty)
    labels = tmp_path / "labels.csv"
    labels.write_text("\n".join(",".join(["2"] + ["0"] * 23) for _ in range(3)) + "\n")
    with pytest.raises(InvalidInput, match="other than 0 and 1"):
        load_data(labels, test_csv)
