"""The workshop's monitoring data on the synthetic credit-default table: ``train_headers`` (header
row, Label first) as the baseline, and the held-out rows without the label as captured requests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from strongroom.demo.data import FEATURES, LABEL, credit_default
from strongroom.monitor import ColumnRule, Constraints, DatasetStatistics, read_csv_statistics, suggest_constraints

# Notebook 01's column order after preprocessing: Label, PAY_AMT1, BILL_AMT1, then the other 21.
MODEL_FEATURES = ["PAY_AMT1", "BILL_AMT1", *[f for f in FEATURES if f not in ("PAY_AMT1", "BILL_AMT1")]]


def workshop_split(rows: int = 30_000, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Notebook 01's preprocessing: split 80/20 (random_state=0), StandardScaler on PAY_AMT1 and
    MinMaxScaler on BILL_AMT1 fitted on the training rows, columns Label, PAY_AMT1, BILL_AMT1, ..."""
    data = credit_default(rows, seed=seed).rename(columns={LABEL: "Label"})
    train, test = train_test_split(data, test_size=0.2, random_state=0)
    standard = StandardScaler().fit(train[["PAY_AMT1"]])
    minmax = MinMaxScaler().fit(train[["BILL_AMT1"]])
    out = []
    for part in (train, test):
        part = part[["Label", *MODEL_FEATURES]].copy()
        part["PAY_AMT1"] = standard.transform(part[["PAY_AMT1"]])[:, 0]
        part["BILL_AMT1"] = minmax.transform(part[["BILL_AMT1"]])[:, 0]
        out.append(part.reset_index(drop=True))
    return out[0], out[1]


def capture_csv(frame: pd.DataFrame) -> bytes:
    """Rows as the endpoint captures them: headerless CSV of the model's features, no label."""
    return frame[MODEL_FEATURES].to_csv(header=False, index=False).encode()


def drift(test: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Notebook 02 step 10: LIMIT_BAL / 1000 on a random half of the rows, EDUCATION negated on a
    random three quarters."""
    rng = np.random.default_rng(seed)
    drifted = test.copy()
    half = rng.random(len(drifted)) < 0.5
    drifted["LIMIT_BAL"] = drifted["LIMIT_BAL"].astype(float)
    drifted.loc[half, "LIMIT_BAL"] = drifted.loc[half, "LIMIT_BAL"] / 1000
    three_quarters = rng.random(len(drifted)) < 0.75
    drifted.loc[three_quarters, "EDUCATION"] = -drifted.loc[three_quarters, "EDUCATION"]
    return drifted


@pytest.fixture(scope="session")
def split() -> tuple[pd.DataFrame, pd.DataFrame]:
    return workshop_split()


@pytest.fixture(scope="session")
def baseline(split: tuple[pd.DataFrame, pd.DataFrame]) -> DatasetStatistics:
    """``suggest_baseline``'s statistics of ``train_headers`` (CSV with a header row)."""
    return read_csv_statistics(split[0].to_csv(index=False).encode())


@pytest.fixture(scope="session")
def constraints(baseline: DatasetStatistics) -> Constraints:
    return suggest_constraints(baseline)


@pytest.fixture(scope="session")
def rule(baseline: DatasetStatistics) -> ColumnRule:
    return ColumnRule.from_baseline(baseline, excluded=("Label",))
