"""Load a ``model.tar.gz`` safely and predict from CSV rows (for batch transform and endpoints).

Rows are features only (no label), comma-separated, no header, as the managed container's
``text/csv`` inference input.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import xgboost as xgb

from strongroom.algorithms.xgboost.archive import MAX_MODEL_BYTES, read_model
from strongroom.core.errors import IntegrityError, InvalidInput


def load_booster(archive: Path | bytes, *, max_bytes: int = MAX_MODEL_BYTES) -> xgb.Booster:
    """The booster from a model archive (see :func:`archive.read_model` for the checks).

    Raises:
        IntegrityError: the archive or the model inside it is unsafe or unreadable.
    """
    model = read_model(archive, max_bytes=max_bytes)
    booster = xgb.Booster()
    try:
        booster.load_model(bytearray(model))
    except xgb.core.XGBoostError as exc:
        raise IntegrityError(f"xgboost-model is not a valid XGBoost model: {exc}") from exc
    return booster


def parse_csv_rows(rows: str | bytes | Iterable[str], num_features: int | None = None) -> np.ndarray:
    """A float32 matrix from CSV rows (features only).

    Raises:
        InvalidInput: a non-numeric value, ragged rows, or the wrong number of features.
    """
    if isinstance(rows, str):
        payload = rows.encode()
    elif isinstance(rows, bytes):
        payload = rows
    else:
        payload = "\n".join(r.rstrip("\r\n") for r in rows).encode()
    if not payload.strip():
        raise InvalidInput("no rows to predict", field="body")
    if not payload.endswith(b"\n"):
        payload += b"\n"
    try:
        table = pacsv.read_csv(io.BytesIO(payload), read_options=pacsv.ReadOptions(autogenerate_column_names=True))
    except pa.ArrowInvalid as exc:
        raise InvalidInput(f"rows are not valid CSV: {exc}", field="body") from exc
    columns = []
    for column in table.columns:
        if not (pa.types.is_integer(column.type) or pa.types.is_floating(column.type) or pa.types.is_null(column.type)):
            raise InvalidInput(f"a column holds non-numeric values ({column.type})", field="body")
        columns.append(column.to_numpy(zero_copy_only=False).astype(np.float32, copy=False))
    matrix = np.column_stack(columns)
    if num_features is not None and matrix.shape[1] != num_features:
        raise InvalidInput(f"each row needs {num_features} features, got {matrix.shape[1]}", field="body")
    return matrix


class Predictor:
    """A loaded model that answers CSV rows with predictions (one float per row, or per class)."""

    def __init__(self, booster: xgb.Booster) -> None:
        self.booster = booster
        self.num_features = booster.num_features()

    @classmethod
    def from_archive(cls, archive: Path | bytes) -> Predictor:
        return cls(load_booster(archive))

    def predict_csv(self, rows: str | bytes | Iterable[str]) -> np.ndarray:
        """Predictions for headerless feature rows; the columns are the model's features in order
        (named or not)."""
        matrix = parse_csv_rows(rows, self.num_features)
        return self.booster.predict(xgb.DMatrix(matrix, feature_names=self.booster.feature_names))

    def predict_to_csv(self, rows: str | bytes | Iterable[str]) -> str:
        """Predictions as CSV text, one line per row (the managed container's ``text/csv`` answer)."""
        predictions = self.predict_csv(rows)
        if predictions.ndim == 1:
            return "\n".join(repr(float(p)) for p in predictions) + "\n"
        return "\n".join(",".join(repr(float(v)) for v in row) for row in predictions) + "\n"
