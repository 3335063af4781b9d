"""Read a channel directory into an XGBoost DMatrix: CSV (label first, no header), LIBSVM, Parquet.

The content type comes from the channel's ``ContentType`` in ``inputdataconfig.json`` (or
``SM_CHANNEL_<NAME>_CONTENT_TYPE``), else from the files' extension, else CSV, as the
managed container does. Files are read in name order so a run is reproducible. Hidden files
and ``_SUCCESS``-style markers are skipped.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import scipy.sparse as sp
import xgboost as xgb
from sklearn.datasets import load_svmlight_files

from strongroom.core.errors import InvalidInput

CSV = "text/csv"
LIBSVM = "text/libsvm"
PARQUET = "application/x-parquet"
_ALIASES = {
    "text/csv": CSV,
    "csv": CSV,
    "text/libsvm": LIBSVM,
    "text/x-libsvm": LIBSVM,
    "libsvm": LIBSVM,
    "application/x-parquet": PARQUET,
    "application/parquet": PARQUET,
    "parquet": PARQUET,
}
_EXTENSIONS = {".csv": CSV, ".libsvm": LIBSVM, ".svm": LIBSVM, ".parquet": PARQUET, ".pq": PARQUET}


def normalize_content_type(value: str, channel: str) -> str:
    """Map a content type (with optional ``;label_size=1``-style parameters) to one we read."""
    base = value.split(";")[0].strip().lower()
    if base not in _ALIASES:
        raise InvalidInput(
            f"channel {channel!r}: content type {value!r} is not supported; use text/csv, text/libsvm or "
            "application/x-parquet",
            field=f"inputs.{channel}.content_type",
        )
    return _ALIASES[base]


def channel_files(directory: Path) -> list[Path]:
    """The data files of a channel, in name order (recursing into subdirectories)."""
    files = [
        p
        for p in sorted(directory.rglob("*"))
        if p.is_file() and not any(part.startswith((".", "_")) for part in p.relative_to(directory).parts)
    ]
    return files


def detect_content_type(files: list[Path], declared: str | None, channel: str) -> str:
    if declared:
        return normalize_content_type(declared, channel)
    kinds = {_EXTENSIONS[p.suffix.lower()] for p in files if p.suffix.lower() in _EXTENSIONS}
    if len(kinds) > 1:
        raise InvalidInput(
            f"channel {channel!r} mixes file types {sorted(kinds)}; declare one content type",
            field=f"inputs.{channel}.content_type",
        )
    return kinds.pop() if kinds else CSV


def _read_csv(files: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    tables = []
    options = pacsv.ReadOptions(autogenerate_column_names=True, use_threads=True)
    for path in files:
        table = pacsv.read_csv(path, read_options=options)
        tables.append(table)
    if len({t.num_columns for t in tables}) > 1:
        raise InvalidInput("CSV files of one channel have different numbers of columns", field="inputs")
    table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
    return _split_label(table)


def _split_label(table: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    if table.num_columns < 2:
        raise InvalidInput("data needs the label in the first column and at least one feature", field="inputs")
    columns = []
    for column in table.columns:
        if not (pa.types.is_integer(column.type) or pa.types.is_floating(column.type) or pa.types.is_null(column.type)):
            raise InvalidInput(
                f"column of type {column.type} is not numeric: the CSV must have no header and numeric values only",
                field="inputs",
            )
        columns.append(column.to_numpy(zero_copy_only=False).astype(np.float32, copy=False))
    matrix = np.column_stack(columns[1:]) if len(columns) > 2 else columns[1].reshape(-1, 1)
    return matrix, columns[0]


def _read_parquet(files: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    tables = [pq.read_table(path) for path in files]
    table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
    return _split_label(table)


def _read_libsvm(files: list[Path]) -> tuple[sp.csr_matrix, np.ndarray]:
    loaded = load_svmlight_files([str(p) for p in files], dtype=np.float32, zero_based=True)
    matrices = loaded[0::2]
    labels = loaded[1::2]
    matrix = sp.vstack(matrices, format="csr") if len(matrices) > 1 else matrices[0]
    return matrix, np.concatenate(labels).astype(np.float32)


def load_features(
    directory: Path, content_type: str | None, channel: str
) -> tuple[np.ndarray | sp.csr_matrix, np.ndarray]:
    """``(features, labels)`` of a channel directory.

    Raises:
        InvalidInput: the directory is missing or empty, the content type unsupported, the data malformed.
    """
    if not directory.is_dir():
        raise InvalidInput(f"channel {channel!r}: directory {directory} does not exist", field=f"inputs.{channel}")
    files = channel_files(directory)
    if not files:
        raise InvalidInput(f"channel {channel!r}: no data files in {directory}", field=f"inputs.{channel}")
    kind = detect_content_type(files, content_type, channel)
    try:
        if kind == CSV:
            return _read_csv(files)
        if kind == PARQUET:
            return _read_parquet(files)
        return _read_libsvm(files)
    except (pa.ArrowInvalid, ValueError) as exc:
        raise InvalidInput(f"channel {channel!r}: cannot read {kind} data: {exc}", field=f"inputs.{channel}") from exc


def load_dmatrix(directory: Path, content_type: str | None, channel: str, nthread: int | None = None) -> xgb.DMatrix:
    """A DMatrix of the channel (labels from the first column / the LIBSVM label)."""
    features, labels = load_features(directory, content_type, channel)
    threads = nthread or len(os.sched_getaffinity(0))
    return xgb.DMatrix(features, label=labels, nthread=threads)
