"""The inference worker, run INSIDE an endpoint variant's sandbox (no network, non-root, no keys).

It listens on a Unix socket in a directory the platform bind-mounts and speaks ``wire`` frames
over persistent connections (one per platform event loop, answered in order). It receives the
model archive over that socket (the platform decrypted it; it is written only to this sandbox's tmpfs scratch),
loads it from XGBoost's own UBJSON/JSON format (never pickle) through the safe archive reader, and
answers each ``predict`` frame with one prediction per row (plain numeric CSV takes a dense
numpy fast path). Bad input is answered 400 with a JSON
problem naming the row and the column; the worker keeps serving. A model whose runtime is
``script`` is the user's own ``inference.py`` from the archive instead (``ScriptModel``), run in
this same sandbox.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import socketserver
import sys
import threading
from pathlib import Path
from typing import Any

from strongroom.serving.inside import wire

MODEL_MEMBER = "xgboost-model"
SCRATCH = Path("/opt/ml/scratch")


class BadInput(Exception):
    def __init__(self, detail: str, row: int | None = None, column: int | None = None) -> None:
        super().__init__(detail)
        self.detail, self.row, self.column = detail, row, column


def _cell(text: str, row: int, column: int) -> float:
    try:
        value = float(text)
    except ValueError:
        raise BadInput(f"row {row}, column {column}: {text[:40]!r} is not a number", row, column) from None
    if not math.isfinite(value):
        raise BadInput(f"row {row}, column {column}: {text[:40]!r} is not a finite number", row, column)
    return value


def _check_width(values: list[Any], row: int, width: int) -> None:
    if len(values) != width:
        raise BadInput(
            f"row {row} has {len(values)} columns; the model takes {width} features (no header, no label)",
            row,
            min(len(values), width) + 1,
        )


def parse_csv(body: bytes, width: int | None) -> list[list[float]]:
    """Headerless CSV rows in the model's feature order (``width`` None: as wide as the first row)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadInput(f"the body is not UTF-8 text (byte {exc.start})") from None
    rows: list[list[float]] = []
    reader = csv.reader(io.StringIO(text), strict=True)
    try:
        for number, record in enumerate(reader, start=1):
            if not record or (len(record) == 1 and not record[0].strip()):
                continue
            width = len(record) if width is None else width
            _check_width(record, number, width)
            rows.append([_cell(cell.strip(), number, col) for col, cell in enumerate(record, start=1)])
    except csv.Error as exc:
        row = max(reader.line_num, 1)
        raise BadInput(f"row {row}: malformed CSV ({exc}); send headerless rows of numbers", row) from None
    if not rows:
        raise BadInput("the body holds no rows")
    return rows


def dense_csv(body: bytes, width: int | None) -> Any:
    """The fast path for plain numeric CSV (no quotes, every row ``width`` finite numbers): the rows
    as a float32 matrix, parsed as :func:`parse_csv` parses them; None for anything else, which
    :func:`parse_csv` then refuses naming the row and column (or accepts, if merely unusual)."""
    if b'"' in body:
        return None
    try:
        lines = [line for line in body.decode("utf-8").splitlines() if line.strip()]
        rows = [[float(cell) for cell in line.split(",")] for line in lines]
    except (UnicodeDecodeError, ValueError):
        return None
    if not rows or any(len(row) != (width or len(rows[0])) for row in rows):
        return None
    import numpy as np

    matrix = np.array(rows, dtype=np.float64)
    if not np.isfinite(matrix).all():
        return None
    return matrix.astype(np.float32)


def parse_json(body: bytes, width: int | None) -> list[list[float]]:
    """``{"instances": [[...], ...]}``, ``[[...], ...]`` or one row ``[...]``."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadInput(f"the body is not valid JSON: {exc}") from None
    if isinstance(data, dict):
        data = data.get("instances")
    if not isinstance(data, list) or not data:
        raise BadInput('send {"instances": [[f1, f2, ...], ...]} or a list of rows')
    if not isinstance(data[0], list):
        data = [data]
    rows: list[list[float]] = []
    for number, record in enumerate(data, start=1):
        if not isinstance(record, list):
            raise BadInput(f"row {number} is not a list of numbers", number)
        width = len(record) if width is None else width
        _check_width(record, number, width)
        row = []
        for col, cell in enumerate(record, start=1):
            if isinstance(cell, bool) or not isinstance(cell, int | float):
                raise BadInput(f"row {number}, column {col}: {str(cell)[:40]!r} is not a number", number, col)
            row.append(_cell(repr(cell), number, col))
        rows.append(row)
    return rows


class Model:
    def __init__(self, archive: Path) -> None:
        import xgboost as xgb

        from strongroom.core.archive import ArchiveLimits, read_member

        raw = read_member(archive, MODEL_MEMBER, ArchiveLimits(max_members=16, max_total_bytes=1024**3))
        if not raw.startswith(b"{"):
            raise ValueError(f"{MODEL_MEMBER} is not an XGBoost UBJSON/JSON model (pickled models are refused)")
        self.booster = xgb.Booster()
        self.booster.load_model(bytearray(raw))
        # One worker process per core scales; OpenMP threads inside each would only spin against each other.
        self.booster.set_param({"nthread": 1})
        self.width = self.booster.num_features()
        self._xgb = xgb

    def _matrix(self, rows: list[list[float]]) -> Any:
        import numpy as np

        # A booster trained on named columns (a DataFrame, a CSV header) checks the names of what it
        # scores: the rows come in the model's feature order, so they carry the model's own names.
        return self._xgb.DMatrix(
            np.asarray(rows, dtype=np.float32),
            feature_names=self.booster.feature_names,
            feature_types=self.booster.feature_types,
        )

    def predict(self, rows: list[list[float]]) -> list[float]:
        import numpy as np

        # inplace_predict, not a DMatrix: building one starts an OpenMP team over every core, whose
        # spin-waits cost a single row ~20 ms instead of ~0.2 ms on a busy machine.
        matrix = np.ascontiguousarray(rows, dtype=np.float32)
        return [float(p) for p in self.booster.inplace_predict(matrix).reshape(len(rows), -1)[:, 0]]

    def explain(self, rows: list[list[float]]) -> dict[str, Any]:
        """Exact per-feature SHAP contributions (XGBoost's TreeSHAP, ``pred_contribs=True``), in the
        margin (log-odds for ``binary:logistic``): ``sum(contributions) + bias`` is the margin."""
        matrix = self._matrix(rows)
        scores = self.booster.predict(matrix).reshape(len(rows), -1)[:, 0]
        contribs = self.booster.predict(matrix, pred_contribs=True)
        if contribs.ndim == 3:  # one set per class: the first, as the score
            contribs = contribs[:, 0, :]
        names = self.booster.feature_names or [f"f{i}" for i in range(self.width)]
        return {
            "feature_names": list(names),
            "predictions": [
                {"score": float(s), "contributions": [float(c) for c in row[:-1]], "bias": float(row[-1])}
                for s, row in zip(scores, contribs, strict=True)
            ],
        }


class ScriptModel:
    """A user's own inference script, run here, in the same sandbox as the built-in runtime.

    The archive holds ``inference.py`` (at its top or under ``code/``) beside the model's files. It
    is extracted (with the safe archive reader) into this sandbox's tmpfs and imported; its contract:

    - ``model_fn(model_dir: str) -> object`` (optional): load the model from the extracted files;
    - ``predict_fn(rows: list[list[float]], model) -> sequence of numbers``: one score per row;
    - ``num_features: int`` (optional): the width every row must have (else the first row's).

    The platform itself never loads anything of it; the script runs with no network, as uid 1000.
    """

    def __init__(self, archive: Path) -> None:
        import importlib.util

        from strongroom.core.archive import ArchiveLimits, extract_archive

        model_dir = SCRATCH / "model"
        extract_archive(archive, model_dir, ArchiveLimits(max_members=1000, max_total_bytes=1024**3))
        script = next(
            (p for p in (model_dir / "inference.py", model_dir / "code" / "inference.py") if p.is_file()), None
        )
        if script is None:
            raise ValueError("the archive has no inference.py (at its top or under code/)")
        sys.path.insert(0, str(script.parent))
        spec = importlib.util.spec_from_file_location("inference", script)
        if spec is None or spec.loader is None:
            raise ValueError(f"{script.name} cannot be imported")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        predict_fn = getattr(module, "predict_fn", None)
        if not callable(predict_fn):
            raise ValueError("inference.py defines no predict_fn(rows, model)")
        model_fn = getattr(module, "model_fn", None)
        self.model = model_fn(str(model_dir)) if callable(model_fn) else None
        self.predict_fn = predict_fn
        width = getattr(module, "num_features", None)
        self.width: int | None = width if isinstance(width, int) and width > 0 else None

    def predict(self, rows: list[list[float]]) -> list[float]:
        scores = self.predict_fn(rows, self.model)
        values = [float(s) for s in (scores.tolist() if hasattr(scores, "tolist") else scores)]
        if len(values) != len(rows):
            raise ValueError(f"predict_fn returned {len(values)} scores for {len(rows)} rows")
        return values

    def explain(self, rows: list[list[float]]) -> dict[str, Any]:
        raise BadInput("explain=true is answered by the built-in xgboost runtime; this model runs its own inference.py")


class Handler(socketserver.StreamRequestHandler):
    """One connection from the platform: frames (``wire``) in, answers out, in order, until it closes."""

    server: Server

    def handle(self) -> None:
        while True:
            try:
                frame = wire.read_frame(self.rfile)
            except (wire.FrameError, OSError):
                return
            if frame is None:
                return
            _, meta, body = frame
            try:
                params = json.loads(meta)
            except ValueError:
                return
            status, content_type, answer = self.answer(params, body)
            self.wfile.write(wire.pack(status, content_type.encode(), answer))

    def answer(self, params: dict[str, str], body: bytes) -> tuple[int, str, bytes]:
        op = params.get("op")
        if op == "load":
            return self.load(params.get("runtime", "xgboost"), body)
        if op == "predict":
            return self.predict(params.get("kind", "csv"), params.get("explain", ""), body)
        return _problem(400, f"unknown operation {op!r}")

    def load(self, runtime: str, body: bytes) -> tuple[int, str, bytes]:
        with self.server.loading:
            if self.server.model is not None:
                return _problem(409, "the model is loaded once, when the worker starts")
            SCRATCH.mkdir(parents=True, exist_ok=True)
            path = SCRATCH / "model.tar.gz"  # tmpfs: the decrypted model never reaches a disk
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(body)
            try:
                self.server.model = ScriptModel(path) if runtime == "script" else Model(path)
            except Exception as exc:
                return _problem(422, f"the model could not be loaded: {exc}")
            finally:
                path.unlink()
            return 200, "application/json", json.dumps({"num_features": self.server.model.width}).encode()

    def predict(self, kind: str, explain: str, body: bytes) -> tuple[int, str, bytes]:
        model = self.server.model
        if model is None:
            return _problem(503, "the model is not loaded yet")
        try:
            rows: Any = None
            if kind == "csv" and isinstance(model, Model):
                rows = dense_csv(body, model.width)
            if rows is None:  # anything unusual: the careful parser names the row and column at fault
                rows = parse_json(body, model.width) if kind == "json" else parse_csv(body, model.width)
            if explain == "json":
                return 200, "application/json", json.dumps(model.explain(rows)).encode()
            if explain == "csv":  # one line per row: score, the contributions in feature order, bias
                lines = [
                    ",".join(repr(v) for v in (p["score"], *p["contributions"], p["bias"]))
                    for p in model.explain(rows)["predictions"]
                ]
                return 200, "text/csv; charset=utf-8", "\n".join(lines).encode()
            scores = model.predict(rows)
        except BadInput as bad:
            return _problem(400, bad.detail, bad.row, bad.column)
        except Exception as exc:  # the user's predict_fn failed: the worker keeps serving
            return _problem(500, f"the model failed on this request: {type(exc).__name__}: {str(exc)[:300]}")
        if kind == "json":
            return 200, "application/json", json.dumps({"predictions": [{"score": s} for s in scores]}).encode()
        return 200, "text/csv; charset=utf-8", "\n".join(repr(s) for s in scores).encode()


def _problem(status: int, detail: str, row: int | None = None, column: int | None = None) -> tuple[int, str, bytes]:
    return status, "application/json", json.dumps({"detail": detail, "row": row, "column": column}).encode()


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    model: Model | ScriptModel | None = None
    loading = threading.Lock()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--socket", required=True)
    args = parser.parse_args(argv)
    os.umask(0o077)
    with Server(args.socket, Handler) as server:
        print("worker listening", flush=True)
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
