"""The workshop's data: a seeded synthetic "default of credit card clients" table, and a loader
for the real UCI file when the user has it.

The synthetic table has the UCI schema and semantics (Taiwan, April-September 2005, amounts in
NT dollars); its marginals and the way the label depends on the features are documented in
``docs/data.md``. Nothing here downloads anything.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pandas as pd

from strongroom.core.errors import InvalidInput

LABEL = "default payment next month"
PAY_STATUS = ["PAY_0", "PAY_2", "PAY_3", "PAY_4", "PAY_5", "PAY_6"]
BILL_AMOUNTS = [f"BILL_AMT{i}" for i in range(1, 7)]
PAY_AMOUNTS = [f"PAY_AMT{i}" for i in range(1, 7)]
FEATURES = ["LIMIT_BAL", "SEX", "EDUCATION", "MARRIAGE", "AGE", *PAY_STATUS, *BILL_AMOUNTS, *PAY_AMOUNTS]
COLUMNS = [*FEATURES, LABEL]

# Marginals close to the UCI file's (30,000 clients). Index = code, value = share.
_SEX_P = MappingProxyType({1: 0.396, 2: 0.604})
_EDUCATION_P = MappingProxyType({0: 0.0005, 1: 0.353, 2: 0.4675, 3: 0.164, 4: 0.004, 5: 0.0093, 6: 0.0017})
_MARRIAGE_P = MappingProxyType({0: 0.0018, 1: 0.455, 2: 0.532, 3: 0.0112})

# Repayment status codes: -2 no consumption, -1 paid in full, 0 revolving credit (minimum paid),
# 1..8 payment delayed by that many months.
# Label model: the log-odds of default rise with recent delinquency (PAY_0 most, then PAY_2),
# fall with the credit limit and with what was paid last month. The intercept is fixed (not fitted
# per sample) so that a row's distribution does not depend on n; it gives about 22% positives.
_DELAY_EFFECT = np.array([0.0, 0.8, 1.7, 1.95, 2.05, 2.1, 2.1, 2.1, 2.1])  # index = months delayed, 0..8
_DELAY_EFFECT.setflags(write=False)
_INTERCEPT = -2.12


def credit_default(n: int = 30000, seed: int = 0) -> pd.DataFrame:
    """A synthetic credit-card-default table with the UCI schema.

    Columns, in the UCI order: LIMIT_BAL, SEX (1 male, 2 female), EDUCATION (1 graduate school,
    2 university, 3 high school, 4 others; 0, 5 and 6 rare and undocumented, as in the real file),
    MARRIAGE (1 married, 2 single, 3 others; 0 rare), AGE (21-79), PAY_0 and PAY_2..PAY_6
    (repayment status from September back to April: -2 no consumption, -1 paid duly, 0 revolving,
    1..8 months of delay), BILL_AMT1..6 (statement balance, September back to April, correlated month
    to month, sometimes negative), PAY_AMT1..6 (amount paid, September back to April) and the label
    ``"default payment next month"`` (0/1, about 22% ones). The index is ``ID`` from 1, like the file.

    The label depends mostly on recent repayment status: an XGBoost model with the workshop's
    hyperparameters reaches a test AUC of about 0.79-0.80, and its most important feature is PAY_0.

    Args:
        n: number of rows (clients), at least 1.
        seed: seed of the numpy generator; the same (n, seed) always gives the same table.

    Raises:
        InvalidInput: if ``n`` is not a positive integer.
    """
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise InvalidInput(f"n must be a positive integer number of rows, got {n!r}", field="n")
    rng = np.random.default_rng(seed)
    n = int(n)

    sex = _categorical(rng, _SEX_P, n)
    education = _categorical(rng, _EDUCATION_P, n)
    marriage = _categorical(rng, _MARRIAGE_P, n)
    age = np.clip(np.rint(21.0 + rng.gamma(2.3, 6.2, n)), 21, 79).astype(np.int64)
    # Married clients are older; single ones younger.
    age = np.clip(age + np.where(marriage == 1, 4, np.where(marriage == 2, -2, 0)), 21, 79)

    # A hidden financial-stress factor drives delinquency; only its traces are observed.
    stress = rng.standard_normal(n)
    stress += 0.12 * (education == 3) - 0.10 * (education == 1) + 0.08 * (sex == 1)
    stress += 0.004 * np.abs(age - 38)

    # Credit limit in NT$10,000 steps: a log-normal mixture (a fifth of clients on small starter
    # limits), lower for stressed, younger and less educated clients.
    starter = rng.random(n) < 0.2
    log_limit = np.where(starter, np.log(40_000) + 0.45 * rng.standard_normal(n), np.log(170_000))
    log_limit += np.where(starter, 0.0, 0.62 * rng.standard_normal(n))
    log_limit += -0.22 * stress + 0.012 * (age - 35) + 0.18 * (education == 1) - 0.2 * (education == 3)
    limit_bal = np.clip(np.rint(np.exp(log_limit) / 10_000) * 10_000, 10_000, 1_000_000).astype(np.int64)

    status = _repayment_status(rng, stress, n)  # (n, 6), column 0 = September (PAY_0)
    bills = _bills(rng, limit_bal, stress, status, n)  # (n, 6), column 0 = September (BILL_AMT1)
    payments = _payments(rng, bills, status, n)  # (n, 6), column 0 = September (PAY_AMT1)

    delay = np.clip(status, 0, 8)
    logit = _INTERCEPT + _DELAY_EFFECT[delay[:, 0]] + 0.45 * _DELAY_EFFECT[delay[:, 1]]
    logit += 0.12 * _DELAY_EFFECT[delay[:, 2:]].sum(axis=1)
    logit += -0.28 * (np.log(limit_bal) - np.log(140_000))
    logit += -0.05 * (np.log1p(payments[:, 0]) - 7.0) - 0.03 * (np.log1p(payments[:, 1]) - 7.0)
    logit += 0.45 * stress + 0.06 * (sex == 1) - 0.08 * (status[:, 0] == -2)
    label = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int64)

    data: dict[str, np.ndarray] = {
        "LIMIT_BAL": limit_bal,
        "SEX": sex,
        "EDUCATION": education,
        "MARRIAGE": marriage,
        "AGE": age.astype(np.int64),
    }
    data.update({name: status[:, i] for i, name in enumerate(PAY_STATUS)})
    data.update({name: bills[:, i] for i, name in enumerate(BILL_AMOUNTS)})
    data.update({name: payments[:, i] for i, name in enumerate(PAY_AMOUNTS)})
    data[LABEL] = label
    return pd.DataFrame(data, index=pd.RangeIndex(1, n + 1, name="ID"))


def _categorical(rng: np.random.Generator, shares: Mapping[int, float], n: int) -> np.ndarray:
    codes = np.fromiter(shares, dtype=np.int64)
    p = np.fromiter(shares.values(), dtype=np.float64)
    return rng.choice(codes, size=n, p=p / p.sum())


def _repayment_status(rng: np.random.Generator, stress: np.ndarray, n: int) -> np.ndarray:
    """Status for six months as a persistent latent process, April first, then reversed."""
    months = 6
    persistent = 0.82
    latent = np.empty((n, months))
    level = stress * 0.75 + 0.66 * rng.standard_normal(n)
    for t in range(months):  # t = 0 is April (PAY_6)
        shock = rng.standard_normal(n)
        level = persistent * level + np.sqrt(1 - persistent**2) * shock if t else level
        latent[:, t] = level + 0.35 * stress
    # Each client has a habit: no use of the card, paying in full, or revolving. Thresholds put
    # about 12% at -2, 20% at -1, 53% at 0 and 15% delayed in the older months.
    habit = rng.random(n)
    status = np.where(habit[:, None] < 0.13, -2, np.where(habit[:, None] < 0.33, -1, 0)).astype(np.int64)
    status = np.broadcast_to(status, (n, months)).copy()
    delayed = latent > 1.32
    # A newly late client is reported two months behind (one missed payment plus the running month;
    # status 1 is rare except in September, as in the UCI data). While the client stays behind, the
    # delay usually holds (the minimum is paid late) and sometimes grows by a month.
    # Some clients were already behind before April.
    run = np.where(delayed[:, 0], rng.choice([0, 2, 3, 6], size=n, p=[0.9, 0.06, 0.03, 0.01]), 0)
    for t in range(months):
        grows = rng.random(n) < 0.12
        run = np.where(delayed[:, t], np.where(run > 0, np.minimum(run + grows, 8), 2), 0)
        status[:, t] = np.where(run > 0, run, status[:, t])
    # A month of "no consumption" can interrupt any habit, and a paid-in-full habit lapses at times.
    status = np.where((rng.random((n, months)) < 0.03) & (status <= 0), -2, status)
    status = np.where((rng.random((n, months)) < 0.05) & (status == -1), 0, status)
    status = status[:, ::-1].copy()  # column 0 = September
    # September (PAY_0) is reported with single-month delays, which the older months almost never are:
    # some revolving/paid clients slip one month, and some two-month delays are reported as one.
    sept = status[:, 0]
    slip = (rng.random(n) < 0.07 + 0.08 * (latent[:, -1] > 0.6)) & (sept <= 0)
    sept = np.where(slip, 1, sept)
    sept = np.where((sept == 2) & (rng.random(n) < 0.25), 1, sept)
    status[:, 0] = sept
    return status


def _bills(
    rng: np.random.Generator, limit_bal: np.ndarray, stress: np.ndarray, status: np.ndarray, n: int
) -> np.ndarray:
    """Statement balances: utilisation of the limit follows an AR(1) around a client's own mean."""
    months = 6
    mean_util = np.clip(0.33 + 0.16 * stress + 0.22 * rng.standard_normal(n), 0.03, 1.05)
    util = np.empty((n, months))
    level = mean_util + 0.08 * rng.standard_normal(n)
    for t in range(months - 1, -1, -1):  # April (column 5) first
        level = mean_util + 0.85 * (level - mean_util) + 0.05 * rng.standard_normal(n)
        util[:, t] = level
    # Clients who pay in full use little of their limit; late ones run it up.
    util = np.where(status == -1, util * 0.3, util)
    util = np.clip(util + 0.05 * np.maximum(status, 0), 0.0, 1.3)
    bills = util * limit_bal[:, None]
    # No consumption: the balance is zero or a small leftover, now and then a credit (negative).
    leftover = np.abs(rng.normal(0.0, 900.0, (n, months))) * (rng.random((n, months)) < 0.55)
    bills = np.where(status == -2, leftover, bills)
    # Overpayments leave a small negative balance now and then.
    credit = rng.random((n, months)) < 0.018
    bills = np.where(credit, -rng.exponential(1500.0, (n, months)), bills)
    return np.rint(bills).astype(np.int64)


def _payments(rng: np.random.Generator, bills: np.ndarray, status: np.ndarray, n: int) -> np.ndarray:
    """Amount paid in a month, against the previous month's statement."""
    months = 6
    previous = np.empty_like(bills, dtype=np.float64)
    previous[:, :-1] = bills[:, 1:]
    previous[:, -1] = bills[:, -1] * rng.uniform(0.8, 1.2, n)  # March's statement is not in the table
    previous = np.maximum(previous, 0.0)
    noise = rng.lognormal(0.0, 0.35, (n, months))
    revolving = previous * rng.uniform(0.03, 0.12, (n, months)) + rng.exponential(1200.0, (n, months))
    paid = np.where(status == -1, previous * noise, revolving * noise)
    paid = np.where(status == -2, rng.exponential(600.0, (n, months)) * (rng.random((n, months)) < 0.65), paid)
    late = status >= 1
    paid = np.where(late, paid * (rng.random((n, months)) < 0.5) * 0.6, paid)
    # A minority of clients pays nothing in a given month, as in the real data (about 17% zeros).
    paid = np.where(rng.random((n, months)) < 0.04, 0.0, paid)
    return np.rint(paid).astype(np.int64)


def load_uci(path: str | Path) -> pd.DataFrame:
    """Read the real UCI "default of credit card clients" file into the generator's schema.

    Accepts the original ``.xls`` (with its extra ``X1..X23, Y`` header row) or a ``.csv`` export,
    with or without that extra row. Column names are normalised (``PAY_1`` -> ``PAY_0``,
    ``default.payment.next.month`` -> ``"default payment next month"``); the ``ID`` column becomes the
    index. Nothing is downloaded.

    Raises:
        InvalidInput: the file is missing, of another type, unreadable, or lacks a UCI column.
    """
    file = Path(path)
    if not file.is_file():
        raise InvalidInput(f"no file at {str(file)!r}: give the path of the UCI .xls or .csv file", field="path")
    suffix = file.suffix.lower()
    try:
        if suffix == ".xls":
            raw = pd.read_excel(file, header=None, engine="calamine", dtype=object)
        elif suffix == ".csv":
            raw = pd.read_csv(file, header=None, dtype=str, keep_default_na=False)
        else:
            raise InvalidInput(
                f"{file.name!r} is neither .xls nor .csv: give the UCI file as downloaded (.xls) or exported as CSV",
                field="path",
            )
    except InvalidInput:
        raise
    except Exception as exc:  # xlrd and the CSV parser raise many types; all mean "not this file"
        raise InvalidInput(f"could not read {file.name!r} as {suffix[1:]}: {exc}", field="path") from exc
    return _normalise(raw, file.name)


def _canonical(name: object) -> str:
    text = re.sub(r"[\s._]+", " ", str(name)).strip().upper()
    aliases = {
        "DEFAULT PAYMENT NEXT MONTH": LABEL,
        "DEFAULT": LABEL,
        "Y": LABEL,
        "PAY 1": "PAY_0",
    }
    if text in aliases:
        return aliases[text]
    return text.replace(" ", "_")


def _normalise(raw: pd.DataFrame, name: str) -> pd.DataFrame:
    # Find the header row: the first of the first three rows that names LIMIT_BAL.
    header_row = next(
        (i for i in range(min(3, len(raw))) if "LIMIT_BAL" in {_canonical(v) for v in raw.iloc[i]}),
        None,
    )
    if header_row is None:
        raise InvalidInput(
            f"{name!r} has no header row naming LIMIT_BAL in its first lines: is it the UCI credit-default file?",
            field="path",
        )
    columns = [_canonical(v) for v in raw.iloc[header_row]]
    if "PAY_0" in columns and columns.count("PAY_0") > 1:
        raise InvalidInput(f"{name!r} names both PAY_0 and PAY_1", field="path")
    body = raw.iloc[header_row + 1 :].copy()
    body.columns = columns
    missing = [c for c in COLUMNS if c not in columns]
    if missing:
        raise InvalidInput(f"{name!r} lacks the UCI column(s) {', '.join(missing)}", field="path")
    try:
        table = body[COLUMNS].apply(pd.to_numeric, errors="raise")
    except (ValueError, TypeError) as exc:
        raise InvalidInput(f"{name!r} has a non-numeric value in a UCI column: {exc}", field="path") from exc
    empty = [c for c in COLUMNS if table[c].isna().any()]
    if empty:
        raise InvalidInput(f"{name!r} has an empty value in the UCI column(s) {', '.join(empty)}", field="path")
    # Integer columns become int64; a column already scaled (the workshop's PAY_AMT1/BILL_AMT1) stays float.
    integral = [c for c in COLUMNS if (table[c] == table[c].round()).all()]
    table = table.astype({c: np.int64 for c in integral})
    if "ID" in columns:
        table.index = pd.Index(pd.to_numeric(body["ID"]).astype(np.int64), name="ID")
    else:
        table.index = pd.RangeIndex(1, len(table) + 1, name="ID")
    return table


# The workshop's preprocessed files: headerless, the label first, then the two scaled columns,
# then the other 21 features in the UCI order (what its ColumnTransformer outputs).
WORKSHOP_COLUMNS = [LABEL, "PAY_AMT1", "BILL_AMT1", *(f for f in FEATURES if f not in ("PAY_AMT1", "BILL_AMT1"))]
_PAIR_NAMES = (("train_data.csv", "test_data.csv"), ("train.csv", "test.csv"))


def load_workshop_split(train: str | Path, test: str | Path) -> pd.DataFrame:
    """Read the workshop's preprocessed, headerless ``train_data.csv`` and ``test_data.csv`` back into
    the UCI schema (the training rows first, then the test rows; ``ID`` numbered from 1).

    PAY_AMT1 and BILL_AMT1 stay as the workshop scaled them (floats); every other column is an integer.

    Raises:
        InvalidInput: a file is missing, has a header row, or does not have the workshop's 24 columns.
    """
    parts = []
    for role, path in (("train", Path(train)), ("test", Path(test))):
        if not path.is_file():
            raise InvalidInput(f"no {role} file at {str(path)!r}", field=role)
        try:
            part = pd.read_csv(path, header=None, dtype=float)
        except (ValueError, pd.errors.ParserError) as exc:
            raise InvalidInput(
                f"{path.name!r} is not the workshop's headerless numeric CSV (a header row or text?): {exc}",
                field=role,
            ) from exc
        if part.shape[1] != len(WORKSHOP_COLUMNS):
            raise InvalidInput(
                f"{path.name!r} has {part.shape[1]} columns; the workshop's preprocessed files have "
                f"{len(WORKSHOP_COLUMNS)} (Label, PAY_AMT1, BILL_AMT1, then the other 21 features)",
                field=role,
            )
        part.columns = WORKSHOP_COLUMNS
        if not part[LABEL].isin((0.0, 1.0)).all():
            raise InvalidInput(f"{path.name!r}: the first column (Label) holds values other than 0 and 1", field=role)
        parts.append(part)
    table = pd.concat(parts, ignore_index=True)[COLUMNS]
    scaled = ("PAY_AMT1", "BILL_AMT1")
    table = table.astype({c: np.int64 for c in COLUMNS if c not in scaled})
    table.index = pd.RangeIndex(1, len(table) + 1, name="ID")
    return table


def load_data(path: str | Path, test: str | Path | None = None) -> pd.DataFrame:
    """Read the workshop's data as a user may have it, into the UCI schema.

    ``path`` is the UCI ``.xls``, a CSV export with a header row, the workshop's headerless
    ``train_data.csv`` (then ``test`` is its ``test_data.csv``), or a folder holding either that pair
    (``train_data.csv``/``test_data.csv`` or ``train.csv``/``test.csv``) or one UCI file.

    Raises:
        InvalidInput: nothing usable at ``path``, or the file is not one of these.
    """
    where = Path(path)
    if test is not None:
        return load_workshop_split(where, test)
    if where.is_dir():
        for train_name, test_name in _PAIR_NAMES:
            if (where / train_name).is_file() and (where / test_name).is_file():
                return load_workshop_split(where / train_name, where / test_name)
        files = sorted(p for p in where.iterdir() if p.suffix.lower() in (".xls", ".csv"))
        if len(files) != 1:
            raise InvalidInput(
                f"{str(where)!r} holds {len(files)} .xls/.csv files: put in it either train_data.csv and "
                "test_data.csv, or exactly one UCI file",
                field="path",
            )
        where = files[0]
    try:
        return load_uci(where)
    except InvalidInput as exc:
        if where.suffix.lower() == ".csv" and "no header row" in exc.detail:
            raise InvalidInput(
                f"{where.name!r} has no header row: if it is the workshop's preprocessed train_data.csv, "
                "give its test_data.csv too (--test) or the folder holding both",
                field="path",
            ) from exc
        raise
