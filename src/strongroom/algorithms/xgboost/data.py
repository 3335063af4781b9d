"""Read a channel directory into an XGBoost DMatrix: CSV (label first), LIBSVM, Parquet.

Feature names, when the data has them, go into the DMatrix and so into the model: a CSV's header
row (detected: a first line that is not all numbers) or Parquet column names, the label's name
(first column) dropped. Headerless CSV and LIBSVM have none; the ``feature_names``
hyperparameter names them (see :func:`load_dmatrix`).

The content type comes from the channel's ``ContentType`` in ``inputdataconfig.json`` (or
``SM_CHANNEL_<NAME>_CONTENT_TYPE``), else from the files' extension, else CSV, as the
managed container does. Files are read in name order so a run is reproducible. Hidden files
and ``_SUCCESS``-style markers are skipped.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import xgboost as xgb

from strongroom.core.errors import InvalidInput

if TYPE_CHECKING:
    import scipy.sparse as sp

# Parquet and LIBSVM readers are imported when a channel needs them: a training job's entry point
# imports while its inputs download, and what it imports first is on the job's critical path.

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


def is_header_line(line: bytes) -> bool:
    """Whether a CSV line is a header rather than data: some field in it is not a number."""
    for field in line.decode("utf-8", errors="replace").strip().split(","):
        try:
            float(field.strip().strip('"') or "nan")
        except ValueError:
            return True
    return False


def has_header(path: Path) -> bool:
    """Whether a CSV file's first line is a header (see :func:`is_header_line`)."""
    with path.open("rb") as handle:
        return is_header_line(handle.readline())


Loaded = tuple[np.ndarray, np.ndarray, list[str] | None]


def _read_csv(files: list[Path]) -> Loaded:
    tables = []
    headers = set()
    for path in files:
        header = has_header(path)
        headers.add(header)
        options = pacsv.ReadOptions(autogenerate_column_names=not header, use_threads=True)
        tables.append(pacsv.read_csv(path, read_options=options))
    if len(headers) > 1:
        raise InvalidInput("some CSV files of the channel have a header row and others not", field="inputs")
    if len({t.num_columns for t in tables}) > 1:
        raise InvalidInput("CSV files of one channel have different numbers of columns", field="inputs")
    if headers == {True}:
        if len({tuple(t.column_names) for t in tables}) > 1:
            raise InvalidInput("CSV files of one channel have different header rows", field="inputs")
        tables = [t.rename_columns(tables[0].column_names) for t in tables]
    table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
    return _split_label(table, named=headers == {True})


def _split_label(table: pa.Table, *, named: bool) -> Loaded:
    if table.num_columns < 2:
        raise InvalidInput("data needs the label in the first column and at least one feature", field="inputs")
    columns = []
    for name, column in zip(table.column_names, table.columns, strict=True):
        if not (pa.types.is_integer(column.type) or pa.types.is_floating(column.type) or pa.types.is_null(column.type)):
            raise InvalidInput(
                f"column {name!r} of type {column.type} is not numeric: every value after the header row (if any) "
                "must be a number",
                field="inputs",
            )
        columns.append(column.to_numpy(zero_copy_only=False).astype(np.float32, copy=False))
    matrix = np.column_stack(columns[1:]) if len(columns) > 2 else columns[1].reshape(-1, 1)
    return matrix, columns[0], [str(n) for n in table.column_names[1:]] if named else None


def _read_parquet(files: list[Path]) -> Loaded:
    import pyarrow.parquet as pq

    tables = [pq.read_table(path) for path in files]
    table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
    return _split_label(table, named=True)


def _read_libsvm(files: list[Path]) -> tuple[sp.csr_matrix, np.ndarray, None]:
    import scipy.sparse as sp
    from sklearn.datasets import load_svmlight_files

    loaded = load_svmlight_files([str(p) for p in files], dtype=np.float32, zero_based=True)
    matrices = loaded[0::2]
    labels = loaded[1::2]
    matrix = sp.vstack(matrices, format="csr") if len(matrices) > 1 else matrices[0]
    return matrix, np.concatenate(labels).astype(np.float32), None


def load_features(
    directory: Path, content_type: str | None, channel: str
) -> tuple[np.ndarray | sp.csr_matrix, np.ndarray, list[str] | None]:
    """``(features, labels, feature names or None)`` of a channel directory.

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


def load_dmatrix(
    directory: Path,
    content_type: str | None,
    channel: str,
    nthread: int | None = None,
    feature_names: list[str] | None = None,
) -> xgb.DMatrix:
    """A DMatrix of the channel (labels from the first column / the LIBSVM label), its features named
    by the data (header row, Parquet columns) or by ``feature_names``.

    Raises:
        InvalidInput: see :func:`load_features`; ``feature_names`` of the wrong length, or different
            from the names the data itself carries.
    """
    features, labels, names = load_features(directory, content_type, channel)
    field = "hyperparameters.feature_names"
    if feature_names is not None:
        if len(feature_names) != features.shape[1]:
            raise InvalidInput(
                f"feature_names has {len(feature_names)} names but channel {channel!r} has {features.shape[1]} "
                "features (the label is the first column and is not named)",
                field=field,
            )
        if names is not None and names != feature_names:
            raise InvalidInput(
                f"feature_names differs from the names in channel {channel!r}'s data ({', '.join(names[:5])}...); "
                "give one or the other",
                field=field,
            )
        names = feature_names
    threads = nthread or len(os.sched_getaffinity(0))
    try:
        return xgb.DMatrix(features, label=labels, nthread=threads, feature_names=names)
    except ValueError as exc:  # XGBoost refuses duplicate names or names with [, ] or <
        raise InvalidInput(f"channel {channel!r}: invalid feature names: {exc}", field=field) from exc
