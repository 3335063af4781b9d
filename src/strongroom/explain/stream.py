"""Explaining datasets larger than memory: in chunks, and split across Dask workers.

A dataset (CSV or Parquet, any path ``fsspec`` opens) is read a chunk of rows at a time; each
chunk's exact SHAP values are folded into running sums (for mean |SHAP| and mean SHAP) and a
bottom-k random sample of rows kept for plots, then dropped. Memory is bounded by the chunk size,
not the dataset size. Per-row contributions can be streamed out to a Parquet file as they come.

For a cluster, the file is cut into byte ranges (CSV, on line boundaries) or row groups
(Parquet); each Dask task streams its own part with the same code and returns its partial sums,
which merge exactly (sums add, bottom-k samples merge), so the result does not depend on the
number of workers.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO

import fsspec
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import xgboost as xgb

from strongroom.algorithms.xgboost.data import is_header_line
from strongroom.core.errors import InvalidInput
from strongroom.explain.compute import MARGIN, explain_booster
from strongroom.explain.model import booster_bytes, load_booster
from strongroom.explain.models import TREE_SHAP_XGBOOST, Explanation, GlobalExplanation

DEFAULT_CHUNK_ROWS = 50_000
DEFAULT_SAMPLE_ROWS = 1000

_PARQUET_SUFFIXES = (".parquet", ".pq")
_CSV_SUFFIXES = (".csv", ".csv.gz")


@dataclass(frozen=True)
class Part:
    """A piece of a dataset one task reads: a CSV byte range or a set of Parquet row groups."""

    path: str
    index: int
    start: int = 0
    end: int | None = None
    row_groups: tuple[int, ...] | None = None


@dataclass
class Partial:
    """Mergeable running state: sums, counts, the base value and a bottom-k row sample."""

    sum_abs: np.ndarray
    total: np.ndarray
    count: int
    base_value: float | None
    sample_keys: np.ndarray
    sample_values: pd.DataFrame
    sample_data: pd.DataFrame

    @classmethod
    def empty(cls, names: Sequence[str]) -> Partial:
        """A state that has seen no rows."""
        columns = list(names)
        return cls(
            sum_abs=np.zeros(len(columns)),
            total=np.zeros(len(columns)),
            count=0,
            base_value=None,
            sample_keys=np.empty(0),
            sample_values=pd.DataFrame(columns=columns, dtype=np.float32),
            sample_data=pd.DataFrame(columns=columns),
        )

    def add(self, explanation: Explanation, keys: np.ndarray, sample_rows: int) -> None:
        """Fold one chunk's explanation in; ``keys`` are the chunk rows' random sampling keys."""
        values = explanation.values.to_numpy(dtype=np.float64)
        self.sum_abs += np.abs(values).sum(axis=0)
        self.total += values.sum(axis=0)
        self.count += len(values)
        self.base_value = explanation.base_value
        data = explanation.data if explanation.data is not None else explanation.values.iloc[:, :0]
        self._keep(keys, explanation.values, data, sample_rows)

    def merge(self, other: Partial, sample_rows: int) -> None:
        """Fold another part's state in (the order of merges does not change the result)."""
        self.sum_abs += other.sum_abs
        self.total += other.total
        self.count += other.count
        if other.base_value is not None:
            self.base_value = other.base_value
        self._keep(other.sample_keys, other.sample_values, other.sample_data, sample_rows)

    def _keep(self, keys: np.ndarray, values: pd.DataFrame, data: pd.DataFrame, sample_rows: int) -> None:
        if sample_rows <= 0 or len(keys) == 0:
            return
        if len(keys) > sample_rows:  # only the chunk's own smallest keys can make the cut
            best = np.sort(np.argpartition(keys, sample_rows - 1)[:sample_rows])
            keys, values, data = keys[best], values.iloc[best], data.iloc[best]
        all_keys = np.concatenate([self.sample_keys, keys])
        if len(all_keys) <= sample_rows:
            chosen = np.arange(len(all_keys))
        else:
            chosen = np.sort(np.argpartition(all_keys, sample_rows - 1)[:sample_rows])
        frames = [f for f in (self.sample_values, values) if len(f)]
        datas = [f for f in (self.sample_data, data) if len(f)]
        self.sample_keys = all_keys[chosen]
        self.sample_values = pd.concat(frames).iloc[chosen]
        self.sample_data = pd.concat(datas).iloc[chosen] if datas else self.sample_data

    def result(self) -> GlobalExplanation:
        """The global explanation of everything folded in so far."""
        if self.count == 0 or self.base_value is None:
            raise InvalidInput("the dataset has no rows to explain", field="source")
        names = [str(c) for c in self.sample_values.columns]
        order = np.argsort(self.sample_keys, kind="stable")
        sample = Explanation(
            values=self.sample_values.iloc[order],
            base_value=self.base_value,
            method=TREE_SHAP_XGBOOST,
            output=MARGIN,
            data=self.sample_data.iloc[order] if len(self.sample_data.columns) else None,
        )
        return GlobalExplanation(
            mean_abs=pd.Series(self.sum_abs / self.count, index=names, name="mean_abs_shap"),
            mean=pd.Series(self.total / self.count, index=names, name="mean_shap"),
            row_count=self.count,
            base_value=self.base_value,
            method=TREE_SHAP_XGBOOST,
            output=MARGIN,
            sample=sample if len(order) else None,
        )


def explain_stream(
    booster: xgb.Booster,
    source: str | Path | pd.DataFrame,
    *,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    sample_rows: int = DEFAULT_SAMPLE_ROWS,
    seed: int = 0,
    n_threads: int | None = None,
    contributions_to: str | Path | BinaryIO | None = None,
) -> GlobalExplanation:
    """Exact global SHAP for a whole dataset, read ``chunk_rows`` rows at a time.

    Args:
        booster: the XGBoost model; its feature names pick the columns (a label column is ignored).
        source: a CSV or Parquet path (local or any ``fsspec`` URL), or a DataFrame.
        chunk_rows: rows per chunk; memory grows with it, not with the dataset.
        sample_rows: size of the uniform random row sample kept for plots.
        seed: seed of that sample.
        n_threads: XGBoost threads (default: all cores).
        contributions_to: if given, every row's contributions (and ``bias``) are written to this
            Parquet path or binary file object as they are computed.

    Raises:
        InvalidInput: unreadable source, unknown format, missing feature columns, no rows.
    """
    names = _names(booster)
    part = source if isinstance(source, pd.DataFrame) else Part(path=str(source), index=0)
    writer: _ContributionWriter | None = None
    if contributions_to is not None:
        writer = _ContributionWriter(contributions_to)
    try:
        partial = _explain_part(booster, part, names, chunk_rows, sample_rows, seed, n_threads, writer)
    finally:
        if writer is not None:
            writer.close()
    return partial.result()


def _explain_part(
    booster: xgb.Booster,
    part: Part | pd.DataFrame,
    names: list[str],
    chunk_rows: int,
    sample_rows: int,
    seed: int,
    n_threads: int | None,
    writer: _ContributionWriter | None = None,
) -> Partial:
    if chunk_rows < 1:
        raise InvalidInput("chunk_rows must be at least 1", field="chunk_rows")
    rng = np.random.default_rng([seed, part.index if isinstance(part, Part) else 0])
    partial = Partial.empty(names)
    for chunk in _chunks(part, names, chunk_rows):
        if chunk.empty:
            continue
        explanation = explain_booster(booster, chunk, n_threads=n_threads)
        partial.add(explanation, rng.random(len(chunk)), sample_rows)
        if writer is not None:
            writer.write(explanation)
    return partial


def explain_part_task(
    part: Part, model: bytes, names: list[str], chunk_rows: int, sample_rows: int, seed: int
) -> Partial:
    """One Dask task: load the model from its UBJSON bytes and stream one part, single-threaded."""
    booster = load_booster(model, "model")
    return _explain_part(booster, part, names, chunk_rows, sample_rows, seed, n_threads=1)


def explain_distributed(
    booster: xgb.Booster,
    source: str | Path,
    client: Any,
    *,
    parts: int | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    sample_rows: int = DEFAULT_SAMPLE_ROWS,
    seed: int = 0,
) -> GlobalExplanation:
    """Exact global SHAP for a dataset, its rows split across the workers of a Dask cluster.

    The dataset must be readable from every worker at the same path or URL. Each task streams
    its part single-threaded, so a worker with N threads runs N tasks at once. The result equals
    :func:`explain_stream`'s up to floating-point summation order.

    Args:
        booster: the XGBoost model; shipped to the workers once as UBJSON bytes.
        source: CSV or Parquet path or ``fsspec`` URL.
        client: a ``distributed.Client`` (the caller decides the cluster, its security and size).
        parts: number of tasks; by default four per worker thread, so faster workers take more.

    Raises:
        InvalidInput: as :func:`explain_stream`.
    """
    from distributed import as_completed

    names = _names(booster)
    threads = sum(client.nthreads().values()) or 1
    pieces = split(str(source), parts or 4 * threads)
    # hash=False: a unique key per call, so a concurrent or just-finished call's release cannot take it away.
    model = client.scatter(booster_bytes(booster), broadcast=True, hash=False)
    futures = client.map(
        explain_part_task,
        pieces,
        model=model,
        names=names,
        chunk_rows=chunk_rows,
        sample_rows=sample_rows,
        seed=seed,
        pure=False,
    )
    merged = Partial.empty(names)
    try:
        for future in as_completed(futures):
            merged.merge(future.result(), sample_rows)
            future.release()
    except BaseException:
        client.cancel(futures)
        raise
    finally:
        model.release()
    return merged.result()


def local_cluster(n_workers: int = 2, threads_per_worker: int = 1, memory_limit: str = "2GiB") -> Any:
    """A local Dask cluster and client for :func:`explain_distributed` (close the client when done).

    The scheduler, the workers and the scheduler's HTTP endpoints listen on loopback only.
    """
    from distributed import Client, LocalCluster

    cluster = LocalCluster(
        n_workers=n_workers,
        threads_per_worker=threads_per_worker,
        processes=True,
        host="127.0.0.1",
        # The scheduler's HTTP endpoints (health, metrics; the dashboard only if bokeh is installed)
        # on loopback and a free port, so several clusters never fight over :8787.
        dashboard_address="127.0.0.1:0",
        memory_limit=memory_limit,
    )
    return Client(cluster)


def split(path: str, parts: int) -> list[Part]:
    """Cut a CSV into byte ranges or a Parquet file into row-group sets, about ``parts`` of them."""
    kind = _kind(path)
    if kind == "parquet":
        with fsspec.open(path, "rb") as handle:
            groups = pq.ParquetFile(handle).num_row_groups
        per = max(1, -(-groups // max(parts, 1)))
        return [
            Part(path=path, index=i, row_groups=tuple(range(g, min(g + per, groups))))
            for i, g in enumerate(range(0, groups, per))
        ] or [Part(path=path, index=0, row_groups=())]
    if path.endswith(".gz"):
        return [Part(path=path, index=0)]  # a gzip stream cannot be entered mid-way
    fs, location = fsspec.core.url_to_fs(path)
    size = int(fs.size(location))
    step = max(1, -(-size // max(parts, 1)))
    return [Part(path=path, index=i, start=s, end=min(s + step, size)) for i, s in enumerate(range(0, size, step))]


def _names(booster: xgb.Booster) -> list[str]:
    if not booster.feature_names:
        raise InvalidInput(
            "the model has no feature names, so the explanation could not name its columns: give them "
            "(the explainability job's feature_names hyperparameter, `strongroom explain --feature-names`, or "
            "strongroom.explain.name_features in a notebook), or train with a header row, Parquet or the "
            "feature_names hyperparameter",
            field="feature_names",
        )
    return list(booster.feature_names)


def _kind(path: str) -> str:
    lowered = path.lower()
    if lowered.endswith(_PARQUET_SUFFIXES):
        return "parquet"
    if lowered.endswith(_CSV_SUFFIXES):
        return "csv"
    raise InvalidInput(f"{path!r} is neither CSV (.csv, .csv.gz) nor Parquet (.parquet, .pq)", field="source")


def _chunks(part: Part | pd.DataFrame, names: list[str], chunk_rows: int) -> Iterator[pd.DataFrame]:
    if isinstance(part, pd.DataFrame):
        missing = [n for n in names if n not in part.columns]
        if missing:
            raise InvalidInput(f"the data lacks the model feature(s) {', '.join(missing[:10])}", field="source")
        for start in range(0, len(part), chunk_rows):
            yield part.iloc[start : start + chunk_rows]
        return
    try:
        if _kind(part.path) == "parquet":
            yield from _parquet_chunks(part, names, chunk_rows)
        else:
            yield from _csv_chunks(part, names, chunk_rows)
    except InvalidInput:
        raise
    except (OSError, ValueError, pa.ArrowException, pd.errors.ParserError) as exc:
        raise InvalidInput(f"could not read {part.path!r}: {exc}", field="source") from exc


def _parquet_chunks(part: Part, names: list[str], chunk_rows: int) -> Iterator[pd.DataFrame]:
    with fsspec.open(part.path, "rb") as handle:
        parquet = pq.ParquetFile(handle)
        present = set(parquet.schema_arrow.names)
        missing = [n for n in names if n not in present]
        if missing:
            raise InvalidInput(f"{part.path!r} lacks the model feature(s) {', '.join(missing[:10])}", field="source")
        groups = list(part.row_groups) if part.row_groups is not None else None
        offset = sum(parquet.metadata.row_group(g).num_rows for g in range(groups[0])) if groups else 0
        if groups == []:
            return
        for batch in parquet.iter_batches(batch_size=chunk_rows, row_groups=groups, columns=names):
            frame = batch.to_pandas()
            frame.index = pd.RangeIndex(offset, offset + len(frame))
            offset += len(frame)
            yield frame


def _csv_chunks(part: Part, names: list[str], chunk_rows: int) -> Iterator[pd.DataFrame]:
    compression = "gzip" if part.path.endswith(".gz") else None
    with fsspec.open(part.path, "rb", compression=compression) as handle:
        header = handle.readline()
        if is_header_line(header):
            columns = list(pd.read_csv(io.BytesIO(header), nrows=0).columns)
            missing = [n for n in names if n not in columns]
            if missing:
                raise InvalidInput(
                    f"{part.path!r} lacks the model feature(s) {', '.join(missing[:10])}", field="source"
                )
        else:
            columns = _positional_columns(part.path, header, names)
            header = b""
            handle.seek(0)
        body: IO[bytes] = handle
        if part.end is not None:
            first, stop = _line_bounds(handle, max(part.start, len(header)), part.end)
            if stop <= first:
                return  # a part shorter than a line can hold no line's first byte
            body = io.BufferedReader(_LineRange(handle, first, stop))
        reader = pd.read_csv(
            body,
            header=None,
            names=list(columns),
            usecols=names,
            chunksize=chunk_rows,
            dtype=dict.fromkeys(names, np.float32),  # what XGBoost computes in anyway
        )
        with reader:
            for frame in reader:
                yield frame.loc[:, names]


def _positional_columns(path: str, first_line: bytes, names: list[str]) -> list[str]:
    """Column names for a headerless CSV: the model's features in order, after the label when the
    file has one more column (the training contract: label first)."""
    width = len(first_line.decode("utf-8", errors="replace").strip().split(","))
    if width == len(names):
        return list(names)
    if width == len(names) + 1:
        return ["\0label", *names]
    raise InvalidInput(
        f"{path!r} has no header and {width} columns; the model has {len(names)} features, so a headerless file "
        f"must hold {len(names)} feature columns, or the label first and then them ({len(names) + 1})",
        field="source",
    )


class _LineRange(io.RawIOBase):
    """The lines of a file that begin in ``[start, end)``: a CSV part for one task."""

    def __init__(self, handle: IO[bytes], start: int, stop: int) -> None:
        super().__init__()
        self._handle = handle
        self._remaining = stop - start
        handle.seek(start)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if self._remaining <= 0:
            return 0
        view = memoryview(buffer)
        data = self._handle.read(min(len(view), self._remaining))
        view[: len(data)] = data
        self._remaining -= len(data)
        return len(data)


def _line_bounds(handle: IO[bytes], start: int, end: int) -> tuple[int, int]:
    """Byte offsets of the lines whose first byte falls in ``[start, end)``."""

    def line_start_at_or_after(offset: int) -> int:
        handle.seek(offset - 1)
        handle.readline()  # finishes the line that straddles offset (or is just the newline before it)
        return handle.tell()

    first = line_start_at_or_after(start) if start > 0 else 0
    stop = line_start_at_or_after(end) if end > 0 else 0
    return first, stop


class _ContributionWriter:
    """Writes each chunk's contributions (plus ``bias``) to Parquet as it comes."""

    def __init__(self, target: str | Path | BinaryIO) -> None:
        self._target = str(target) if isinstance(target, Path) else target
        self._writer: pq.ParquetWriter | None = None

    def write(self, explanation: Explanation) -> None:
        frame = explanation.values.astype(np.float32)
        frame["bias"] = np.float32(explanation.base_value)
        table = pa.Table.from_pandas(frame, preserve_index=False)
        if self._writer is None:
            self._writer = pq.ParquetWriter(self._target, table.schema)
        self._writer.write_table(table)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
